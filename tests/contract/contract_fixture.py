"""The Acronis task list fixture (a copy of ../shared/fixtures), read by both sides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "acronis-tasks-in-progress.json"
)  # a copy of the shared fixture


def fixture_item() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())["items"][0]
