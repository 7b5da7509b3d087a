"""What both sides of the contract checks share: the Acronis task list fixture (a copy of
../shared/fixtures) and the ids and constants the contract and the tests name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "acronis-tasks-in-progress.json"
)  # a copy of the shared fixture


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NS_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
ACRONIS_ERROR_KEYS = {"domain", "code", "reason", "context", "kbLink", "debug"}

T_OK = "02115928-16fe-4493-949b-d77d302a88ee"
T_FAIL = "5d0c3a9e-1b2f-4c6d-8e7f-9a0b1c2d3e4f"
T_ODD = "7e57a11e-0d0d-4a4a-9b9b-c0ffee000001"
A_FIXED_ID = 944455285181775872  # > 2**53, from the fixture
A_FIXED_UUID = "38045860-8901-426e-b51f-fc6d24d1cbe0"
POLICY = "6b1f0c2e-0000-4000-8000-000000000001"
RES_1 = "6b1f0c2e-0000-4000-8000-0000000000a1"
RES_2 = "6b1f0c2e-0000-4000-8000-0000000000a2"


def fixture_item() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())["items"][0]
