"""Independent contract checks, written from ../shared/docs/api-contracts.md only.

Why this file exists: our client (mftrun.http, mftrun.providers) and our emulator
(mftrun.emulator) were written by the same team, so they can agree with each
other and still disagree with the documentation. Here:

(a) a tiny client written from the contract alone (plain requests + PyJWT +
    cryptography, no mftrun.http / mftrun.providers) drives the in-package
    emulator through every documented call and asserts exactly what the
    contract says;
(b) a tiny, strict server written from the contract alone (http.server on
    127.0.0.1) is driven by our real providers through `mftrun apply` and
    `mftrun check`.

Nothing here reads the emulator's internals beyond its public API
(Emulator, Scenario, journal).
"""

from __future__ import annotations

import base64
import calendar
import email.utils
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mftrun.emulator import Emulator, Scenario

dataclass_frozen = dataclass(frozen=True)

FIXTURE = (
    Path(__file__).resolve().parent / "fixtures" / "acronis-tasks-in-progress.json"
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


def _json(resp: requests.Response) -> Any:
    assert resp.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", (
        resp.status_code,
        resp.headers.get("Content-Type"),
        resp.text[:200],
    )
    return resp.json()


# =========================================================================== (a) client vs emulator

SCENARIO = {
    "seed": 7,
    "speed": 1,
    "automate_mft": {
        "token_lifetime": "5m",
        "tasks": [
            {
                "id": T_OK,
                "name": "Pull partner orders",
                "queue": 0.15,
                "duration": 0.2,
                "files": {"transferred": 3},
            },
            {
                "id": T_FAIL,
                "name": "Broken export",
                "queue": 0.1,
                "duration": 0.2,
                "outcome": "failed",
                "message": "disk full",
            },
        ],
    },
    "acronis": {
        "token_lifetime": "2h",
        "tenant": {"id": "1496265", "name": "johndoe@mysite.com", "locator": "/1/1496262/1496265/"},
        "tasks": [
            {
                "id": A_FIXED_ID,
                "uuid": A_FIXED_UUID,
                "type": "backup",
                "queue": "backup",
                "enqueued": "-70m",
                "started": "-65m",
                "completed": "-1h",
                "result": "ok",
                "policy": {
                    "id": POLICY,
                    "name": "Nightly servers",
                    "type": "policy.protection.total",
                },
                "resource": {"id": RES_1, "name": "db-01", "type": "machine"},
                "started_by": "scheduler",
                "tags": ["prod"],
            },
            {
                "type": "backup",
                "queue": "backup",
                "enqueued": "-20m",
                "started": "-10m",
                "policy": {
                    "id": POLICY,
                    "name": "Nightly servers",
                    "type": "policy.protection.total",
                },
                "resource": {"id": RES_2, "name": "app-01", "type": "machine"},
                "started_by": "scheduler",
            },
            {"type": "replication", "queue": "replication", "enqueued": "-5m"},
            {
                "type": "backup",
                "queue": "backup",
                "enqueued": "-3h",
                "completed": "-2h",
                "result": "error",
            },
            {
                "type": "backup",
                "queue": "backup",
                "enqueued": "-40m",
                "completed": "-30m",
                "result": "warning",
                "priority": "high",
            },
            {
                "type": "bulk",
                "queue": "bulk",
                "enqueued": "-4h",
                "completed": "-3h",
                "result": "ok",
                "count": 5,
            },
        ],
    },
}


@pytest.fixture(scope="module")
def emu():
    with Emulator(Scenario.from_dict(SCENARIO)) as server:
        server.started_at = time.time()  # type: ignore[attr-defined]
        yield server


def assertion(emu: Emulator, **override: Any) -> str:
    """An RFC 7523 client assertion exactly as the contract's section 1 describes it."""
    creds = emu.credentials
    now = int(time.time())
    claims = {
        "aud": f"{emu.url}/v1/oauth/token",
        "iss": creds.tenant_id,
        "sub": creds.tenant_id,
        "exp": now + 240,
        "iat": now,
        "nbf": now,
        "jti": str(uuid.uuid4()),
    }
    headers = {"kid": override.pop("kid", creds.key_id)}
    key = override.pop("key", creds.private_key_pem)
    for name, value in override.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def token_fields(jwt_text: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt_text,
    }


def mft_token(emu: Emulator) -> str:
    resp = requests.post(f"{emu.url}/v1/oauth/token", json=token_fields(assertion(emu)), timeout=5)
    assert resp.status_code == 200, resp.text
    return _json(resp)["access_token"]


@pytest.fixture(scope="module")
def mft(emu):
    return {"Authorization": f"bearer {mft_token(emu)}"}


def acronis_token(emu: Emulator) -> dict[str, Any]:
    creds = emu.credentials
    resp = requests.post(
        f"{emu.url}/api/2/idp/token",
        auth=(creds.client_id, creds.client_secret),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    return _json(resp)


@pytest.fixture(scope="module")
def acr(emu):
    return {"Authorization": f"Bearer {acronis_token(emu)['access_token']}"}


# ---------------------------------------------------------------------------- Automate MFT: token


def test_mft_token_json_body_gives_access_token(emu):
    resp = requests.post(f"{emu.url}/v1/oauth/token", json=token_fields(assertion(emu)), timeout=5)
    assert resp.status_code == 200
    body = _json(resp)
    assert isinstance(body["access_token"], str) and body["access_token"]
    if "expires_in" in body:  # [assumed]: when present it is a number of seconds
        assert isinstance(body["expires_in"], (int, float)) and 0 < body["expires_in"] <= 3600
    if "token_type" in body:
        assert body["token_type"].lower() == "bearer"


def test_mft_token_form_body_is_accepted_too(emu):
    resp = requests.post(f"{emu.url}/v1/oauth/token", data=token_fields(assertion(emu)), timeout=5)
    assert resp.status_code == 200, resp.text
    assert _json(resp)["access_token"]


def test_mft_token_exp_at_the_documented_ten_minute_limit_is_accepted(emu):
    resp = requests.post(
        f"{emu.url}/v1/oauth/token",
        json=token_fields(assertion(emu, exp=int(time.time()) + 595)),
        timeout=5,
    )
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "override",
    [
        {"aud": "https://api.us.mft.progress.com/v1/oauth/token"},
        {"iss": "someone-else"},
        {"sub": "someone-else"},
        {"exp": None},
        {"exp": 1_000_000},  # long past
        {"exp": "far"},  # replaced below: 11 minutes ahead
        {"jti": None},
        {"iat": None},
        {"nbf": None},
        {"kid": "no-such-key"},
        {"exp": "just-over"},  # replaced below: 10 minutes 15 seconds ahead
    ],
    ids=[
        "aud",
        "iss",
        "sub",
        "no-exp",
        "expired",
        "exp-over-10min",
        "no-jti",
        "no-iat",
        "no-nbf",
        "kid",
        "exp-10min-15s",
    ],
)
def test_mft_token_bad_assertion_gets_oauth_invalid_client(emu, override):
    override = dict(override)
    if override.get("exp") == "far":
        override["exp"] = int(time.time()) + 660
    if override.get("exp") == "just-over":
        override["exp"] = int(time.time()) + 615
    resp = requests.post(
        f"{emu.url}/v1/oauth/token", json=token_fields(assertion(emu, **override)), timeout=5
    )
    assert resp.status_code in (400, 401), resp.text
    body = _json(resp)
    assert body["error"] == "invalid_client"
    assert isinstance(body["error_description"], str) and body["error_description"]


def test_mft_token_wrong_key_is_rejected(emu):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    resp = requests.post(
        f"{emu.url}/v1/oauth/token", json=token_fields(assertion(emu, key=other)), timeout=5
    )
    assert resp.status_code in (400, 401)
    assert _json(resp)["error"] == "invalid_client"


def test_mft_token_replayed_jti_is_rejected(emu):
    jwt_text = assertion(emu)
    first = requests.post(f"{emu.url}/v1/oauth/token", json=token_fields(jwt_text), timeout=5)
    again = requests.post(f"{emu.url}/v1/oauth/token", data=token_fields(jwt_text), timeout=5)
    assert first.status_code == 200
    assert again.status_code in (400, 401)
    assert _json(again)["error"] == "invalid_client"


@pytest.mark.parametrize(
    "fields",
    [
        {"grant_type": "password"},
        {"client_assertion_type": "urn:something:else"},
        {"client_assertion": None},
    ],
    ids=["grant_type", "assertion_type", "no-assertion"],
)
def test_mft_token_malformed_request_gets_an_oauth_error(emu, fields):
    body = token_fields(assertion(emu))
    for name, value in fields.items():
        if value is None:
            body.pop(name)
        else:
            body[name] = value
    resp = requests.post(f"{emu.url}/v1/oauth/token", json=body, timeout=5)
    assert resp.status_code in (400, 401), resp.text
    err = _json(resp)
    assert isinstance(err.get("error"), str) and err["error"]
    assert "error_description" in err


# ---------------------------------------------------------------------------- Automate MFT: calls


def test_mft_licenses_with_bearer_in_either_case(emu, mft):
    token = mft["Authorization"].split(" ", 1)[1]
    for scheme in ("bearer", "Bearer", "BEARER"):
        resp = requests.get(
            f"{emu.url}/v1/licenses/current",
            headers={"Authorization": f"{scheme} {token}"},
            timeout=5,
        )
        assert resp.status_code == 200, (scheme, resp.text)
        assert isinstance(_json(resp), dict) and _json(resp)


def poll_run(
    emu: Emulator, headers: dict[str, str], run_id: str, seen: list[str]
) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        resp = requests.get(f"{emu.url}/v1/task-runs/{run_id}", headers=headers, timeout=5)
        assert resp.status_code == 200, resp.text
        run = _json(resp)
        assert run["id"] == run_id
        status = run["status"]["taskRunStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("success", "failed"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never ended: {seen}")


def test_mft_start_by_id_runs_queued_running_success(emu, mft):
    resp = requests.post(f"{emu.url}/v1/tasks/{T_OK}/start", json={}, headers=mft, timeout=5)
    assert resp.status_code == 200, resp.text
    run_id = _json(resp)["id"]
    assert isinstance(run_id, str) and run_id
    seen: list[str] = []
    poll_run(emu, mft, run_id, seen)
    assert seen == ["queued", "running", "success"]


def test_mft_start_by_name_with_parameters_is_recorded_and_fails_as_scripted(emu, mft):
    resp = requests.post(
        f"{emu.url}/v1/tasks/start",
        params={"name": "Broken export"},
        json={"FileMask": "*.csv"},
        headers=mft,
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    run_id = _json(resp)["id"]
    seen: list[str] = []
    run = poll_run(emu, mft, run_id, seen)
    assert seen[-1] == "failed"
    record = next(r for r in emu.journal.runs if r.run_id == run_id)
    assert record.task_id == T_FAIL
    assert record.parameters == {"FileMask": "*.csv"}
    assert "disk full" in json.dumps(run)


def test_mft_start_with_no_body_at_all(emu, mft):
    """The contract says `{}` for none; a bare POST with no body is the same request to a server."""
    resp = requests.post(f"{emu.url}/v1/tasks/{T_OK}/start", headers=mft, timeout=5)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "call",
    [
        ("POST", f"/v1/tasks/{uuid.UUID(int=1)}/start"),
        ("POST", "/v1/tasks/start?name=No%20such%20task"),
        ("GET", f"/v1/task-runs/{uuid.UUID(int=2)}"),
        ("GET", "/v1/tasks"),
        ("GET", "/v1/task-runs"),
        ("GET", f"/v1/tasks/{T_OK}"),
        ("POST", "/v1/task-runs/RUN/cancel"),
        ("POST", "/v1/task-runs/RUN/stop"),
        ("DELETE", "/v1/task-runs/RUN"),
        ("POST", f"/v1/tasks/{T_OK}/stop"),
    ],
    ids=[
        "start-unknown-id",
        "start-unknown-name",
        "unknown-run",
        "list-tasks",
        "list-runs",
        "get-task",
        "cancel-run",
        "stop-run",
        "delete-run",
        "stop-task",
    ],
)
def test_mft_unknown_and_undocumented_paths_are_404(emu, mft, call):
    method, path = call
    if "RUN" in path:
        start = requests.post(f"{emu.url}/v1/tasks/{T_OK}/start", json={}, headers=mft, timeout=5)
        path = path.replace("RUN", start.json()["id"])
    resp = requests.request(
        method, f"{emu.url}{path}", json={} if method == "POST" else None, headers=mft, timeout=5
    )
    assert resp.status_code == 404, (path, resp.status_code, resp.text)


@pytest.mark.parametrize(
    "header",
    [None, "bearer not-a-token", "Basic dXNlcjpwYXNz", "bearer"],
    ids=["missing", "unknown", "basic", "empty"],
)
def test_mft_missing_or_unknown_token_is_401(emu, header):
    headers = {} if header is None else {"Authorization": header}
    for method, path in (
        ("GET", "/v1/licenses/current"),
        ("POST", f"/v1/tasks/{T_OK}/start"),
        ("GET", f"/v1/task-runs/{uuid.UUID(int=3)}"),
    ):
        resp = requests.request(
            method,
            f"{emu.url}{path}",
            headers=headers,
            json={} if method == "POST" else None,
            timeout=5,
        )
        assert resp.status_code == 401, (header, path, resp.status_code)


def test_mft_token_from_another_emulator_run_is_401_not_403():
    """Unknown tokens are 401; 403 is for a token this server issued and that has expired."""
    with Emulator(Scenario.from_dict({"seed": 3})) as other:
        foreign = mft_token(other)
    with Emulator(Scenario.from_dict({"seed": 3})) as fresh:
        resp = requests.get(
            f"{fresh.url}/v1/licenses/current",
            headers={"Authorization": f"bearer {foreign}"},
            timeout=5,
        )
        assert resp.status_code == 401


@pytest.fixture(scope="module")
def short_lived():
    # Tokens live 0.6 real seconds (6 simulated at speed 10): long enough to be used at once
    # on a busy machine, short enough to wait out.
    data = {
        "seed": 11,
        "speed": 10,
        "automate_mft": {"token_lifetime": "6s"},
        "acronis": {"token_lifetime": "6s"},
    }
    with Emulator(Scenario.from_dict(data)) as server:
        yield server


# ---------------------------------------------------------------------------- Acronis: token


def test_acronis_token_basic_auth_form_grant_and_expires_on_in_unix_seconds(emu):
    before = time.time()
    body = acronis_token(emu)
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"].lower() == "bearer"
    assert "id_token" in body
    assert isinstance(body["expires_on"], int)
    # Unix seconds (not ms, not a duration): two hours from now at speed 1.
    assert before + 7200 - 5 <= body["expires_on"] <= time.time() + 7200 + 5


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-client", "no-basic"])
def test_acronis_rejected_client_is_401_invalid_client(emu, case):
    creds = emu.credentials
    auth = {
        "wrong-secret": (creds.client_id, "nope"),
        "unknown-client": ("nobody", creds.client_secret),
        "no-basic": None,
    }[case]
    resp = requests.post(
        f"{emu.url}/api/2/idp/token",
        auth=auth,
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert resp.status_code == 401
    body = _json(resp)
    assert body["error"] == "invalid_client"
    assert body["error_description"]


def test_acronis_token_wrong_grant_is_an_oauth_400(emu):
    creds = emu.credentials
    resp = requests.post(
        f"{emu.url}/api/2/idp/token",
        auth=(creds.client_id, creds.client_secret),
        data={"grant_type": "password"},
        timeout=5,
    )
    assert resp.status_code == 400
    assert _json(resp)["error"] == "unsupported_grant_type"


# ---------------------------------------------------------------------------- Acronis: tasks


def tasks(emu: Emulator, acr: dict[str, str], params: Any, status: int = 200) -> Any:
    resp = requests.get(
        f"{emu.url}/api/task_manager/v2/tasks", params=params, headers=acr, timeout=5
    )
    assert resp.status_code == status, (params, resp.status_code, resp.text)
    return _json(resp)


def fixture_item() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())["items"][0]


def check_shape(item: dict[str, Any], raw_text: str) -> None:
    ref = fixture_item()
    for key, value in ref.items():
        if key in ("completedAt", "result") and item["state"] != "completed":
            continue  # the fixture's started task carries them; an open task need not
        if key == "startedAt" and item["state"] in ("enqueued", "assigned"):
            continue
        assert key in item, f"{key} missing from {sorted(item)}"
        assert type(item[key]) is type(value), (key, item[key], value)
        if isinstance(value, dict) and key in ("issuer", "tenant"):
            assert set(value) <= set(item[key]), (key, item[key])
    for required in (
        "id",
        "state",
        "tenant",
        "queue",
        "issuer",
        "cancelRequested",
        "enqueuedAt",
        "updatedAt",
        "type",
        "assignCount",
        "priority",
    ):
        assert required in item, f"required field {required} missing"
    assert isinstance(item["assignCount"], int) and not isinstance(item["assignCount"], bool)
    assert isinstance(item["id"], int) and item["id"] > 2**53
    assert item["idString"] == str(item["id"])
    assert f'"id":{item["id"]}' in raw_text.replace(
        " ", ""
    )  # an integer literal, not a float or string
    for key in ("enqueuedAt", "updatedAt", "startedAt", "assignedAt", "completedAt"):
        if item.get(key) is not None:
            assert NS_TIMESTAMP.match(item[key]), (key, item[key])
    assert item["state"] in ("enqueued", "assigned", "started", "paused", "completed")
    assert item["priority"] in ("low", "belowNormal", "normal", "aboveNormal", "high")
    if item["state"] == "completed":
        assert item["result"]["code"] in (
            "ok",
            "error",
            "warning",
            "cancelled",
            "abandoned",
            "timedout",
        )


def test_acronis_list_shape_matches_the_fixture(emu, acr):
    resp = requests.get(f"{emu.url}/api/task_manager/v2/tasks", headers=acr, timeout=5)
    assert resp.status_code == 200
    body = _json(resp)
    assert isinstance(body["items"], list) and body["items"]
    assert isinstance(body["paging"]["cursors"], dict)
    for item in body["items"]:
        check_shape(item, resp.text)
    fixed = next(i for i in body["items"] if i["id"] == A_FIXED_ID)
    assert fixed["uuid"] == A_FIXED_UUID and fixed["state"] == "completed"
    assert fixed["result"]["code"] == "ok"
    assert fixed["tenant"] == {
        "id": "1496265",
        "locator": "/1/1496262/1496265/",
        "name": "johndoe@mysite.com",
    }
    assert fixed["policy"]["id"] == POLICY and fixed["resource"]["id"] == RES_1


def test_acronis_get_by_id_is_the_task_object(emu, acr):
    resp = requests.get(f"{emu.url}/api/task_manager/v2/tasks/{A_FIXED_ID}", headers=acr, timeout=5)
    assert resp.status_code == 200
    item = _json(resp)
    check_shape(item, resp.text)
    assert item["id"] == A_FIXED_ID and item["uuid"] == A_FIXED_UUID


def test_acronis_unknown_task_is_404_with_the_documented_error_body(emu, acr):
    resp = requests.get(
        f"{emu.url}/api/task_manager/v2/tasks/{2**60 + 12345}", headers=acr, timeout=5
    )
    assert resp.status_code == 404
    body = _json(resp)
    assert set(body) >= ACRONIS_ERROR_KEYS, sorted(body)
    assert isinstance(body["kbLink"], dict)


@pytest.mark.parametrize(
    "params",
    [
        {"state": "bogus"},
        {"completedAt": "gt(not a date)"},
        {"resultCode": "fine"},
        {"limit": "many"},
        {"completedAt": "2020-04-22T11:00:00Z"},
        [("completedAt", "gt(2020-04-22T11:00:00Z)"), ("completedAt", "lt(2030-04-22T11:00:00Z)")],
        {"limit": "1", "after": base64.b64encode(b'{"q":[],"k":["x",1,2]}').decode()},
    ],
    ids=[
        "state",
        "time",
        "resultCode",
        "limit",
        "time-without-operator",
        "time-twice",
        "forged-cursor",
    ],
)
def test_acronis_bad_filter_is_400_with_the_documented_error_body(emu, acr, params):
    body = tasks(emu, acr, params, status=400)
    assert set(body) >= ACRONIS_ERROR_KEYS, sorted(body)


def test_acronis_missing_or_unknown_token_is_401(emu):
    url = f"{emu.url}/api/task_manager/v2/tasks"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
    assert requests.get(f"{url}/{A_FIXED_ID}", timeout=5).status_code == 401


def ids_of(body: dict[str, Any]) -> set[int]:
    return {item["id"] for item in body["items"]}


def test_acronis_repeated_multi_value_filters(emu, acr):
    open_ = tasks(emu, acr, [("state", "enqueued"), ("state", "started")])["items"]
    assert {i["state"] for i in open_} == {"enqueued", "started"}
    assert {i["type"] for i in open_} == {"backup", "replication"}
    both_types = tasks(emu, acr, [("type", "replication"), ("type", "bulk")])["items"]
    assert {i["type"] for i in both_types} == {"replication", "bulk"} and len(both_types) == 6
    assert ids_of(tasks(emu, acr, {"uuid": A_FIXED_UUID})) == {A_FIXED_ID}
    assert ids_of(tasks(emu, acr, {"id": str(A_FIXED_ID)})) == {A_FIXED_ID}
    assert {i["queue"] for i in tasks(emu, acr, {"queue": "replication"})["items"]} == {
        "replication"
    }
    codes = tasks(emu, acr, [("resultCode", "error"), ("resultCode", "warning")])["items"]
    assert sorted(i["result"]["code"] for i in codes) == ["error", "warning"]
    by_policy = tasks(emu, acr, {"policyId": POLICY})["items"]
    assert len(by_policy) == 2 and all(i["policy"]["id"] == POLICY for i in by_policy)
    assert ids_of(tasks(emu, acr, [("resourceId", RES_1)])) == {A_FIXED_ID}
    assert len(tasks(emu, acr, [("resourceId", RES_1), ("resourceId", RES_2)])["items"]) == 2
    assert {i["priority"] for i in tasks(emu, acr, {"priority": "high"})["items"]} == {"high"}
    assert len(tasks(emu, acr, {"policyName": "like(Nightly)"})["items"]) == 2
    assert len(tasks(emu, acr, {"resourceName": "like(db)"})["items"]) == 1
    # Filters combine with AND across names.
    assert tasks(emu, acr, [("state", "completed"), ("type", "replication")])["items"] == []


def _dt(emu: Emulator, offset: timedelta) -> datetime:
    return datetime.fromtimestamp(emu.started_at, timezone.utc) + offset


@pytest.mark.parametrize("form", ["rfc3339", "rfc1123", "rfc850", "ansic", "unix", "unix-ns"])
def test_acronis_time_filters_in_every_documented_date_form(emu, acr, form):
    when = _dt(emu, timedelta(minutes=-90)).replace(microsecond=0)
    text = {
        "rfc3339": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rfc1123": email.utils.format_datetime(when, usegmt=True),
        "rfc850": when.strftime("%A, %d-%b-%y %H:%M:%S GMT"),
        "ansic": when.strftime("%a %b ") + f"{when.day:>2}" + when.strftime(" %H:%M:%S %Y"),
        "unix": str(calendar.timegm(when.utctimetuple())),
        "unix-ns": f"{calendar.timegm(when.utctimetuple()) * 10**9}ns",
    }[form]
    items = tasks(emu, acr, {"completedAt": f"gt({text})"})["items"]
    assert sorted(i["result"]["code"] for i in items) == ["ok", "warning"], (form, text)


def test_acronis_time_filter_operators(emu, acr):
    cut = _dt(emu, timedelta(minutes=-90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(tasks(emu, acr, {"completedAt": f"lt({cut})"})["items"]) == 6  # error + 5 bulk
    assert len(tasks(emu, acr, {"completedAt": f"ge({cut})"})["items"]) == 2
    assert len(tasks(emu, acr, {"completedAt": f"le({cut})"})["items"]) == 6
    fixed = tasks(emu, acr, {"id": str(A_FIXED_ID)})["items"][0]
    assert ids_of(tasks(emu, acr, {"completedAt": f"eq({fixed['completedAt']})"})) == {A_FIXED_ID}
    started = tasks(emu, acr, {"startedAt": f"gt({_dt(emu, timedelta(minutes=-15)).isoformat()})"})
    assert {i["state"] for i in started["items"]} == {"started"}


def test_acronis_paging_follows_after_with_only_limit_after_lod(emu, acr):
    first = tasks(emu, acr, [("type", "bulk"), ("limit", "2")])
    assert len(first["items"]) == 2
    after = first["paging"]["cursors"]["after"]
    assert isinstance(after, str) and after
    pages = [first]
    while "after" in pages[-1]["paging"]["cursors"]:
        cursor = pages[-1]["paging"]["cursors"]["after"]
        pages.append(tasks(emu, acr, {"limit": "2", "after": cursor, "lod": "full"}))
        assert len(pages) < 10
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    seen = [i["id"] for p in pages for i in p["items"]]
    assert len(set(seen)) == 5
    assert all(i["type"] == "bulk" for p in pages for i in p["items"])  # the cursor kept the filter
    # `before` on a later page leads back to the page before it.
    before = pages[1]["paging"]["cursors"]["before"]
    back = tasks(emu, acr, {"limit": "2", "before": before})
    assert ids_of(back) == ids_of(pages[0])


def test_acronis_cursor_survives_url_encoding_roundtrip(emu, acr):
    first = tasks(emu, acr, [("type", "bulk"), ("limit", "1")])
    cursor = first["paging"]["cursors"]["after"]
    resp = requests.get(
        f"{emu.url}/api/task_manager/v2/tasks?limit=1&after="
        + requests.utils.quote(cursor, safe=""),
        headers=acr,
        timeout=5,
    )
    assert resp.status_code == 200
    assert ids_of(_json(resp)).isdisjoint(ids_of(first))


@pytest.mark.parametrize(
    "override",
    [
        {"nbf": "future"},
        {"iat": "future"},
    ],
    ids=["nbf-future", "iat-future"],
)
def test_mft_token_not_yet_valid_assertion_is_rejected(emu, override):
    claims = {name: int(time.time()) + 300 for name in override}
    resp = requests.post(
        f"{emu.url}/v1/oauth/token", json=token_fields(assertion(emu, **claims)), timeout=5
    )
    assert resp.status_code in (400, 401)
    assert _json(resp)["error"] == "invalid_client"


def test_mft_token_unsigned_or_hmac_assertion_is_rejected(emu):
    creds = emu.credentials
    now = int(time.time())
    claims = {
        "aud": f"{emu.url}/v1/oauth/token",
        "iss": creds.tenant_id,
        "sub": creds.tenant_id,
        "exp": now + 240,
        "iat": now,
        "nbf": now,
        "jti": str(uuid.uuid4()),
    }
    for text in (
        jwt.encode(claims, None, algorithm="none", headers={"kid": creds.key_id}),
        jwt.encode(
            dict(claims, jti=str(uuid.uuid4())),
            "secret-secret-secret-secret-32b!",
            algorithm="HS256",
            headers={"kid": creds.key_id},
        ),
    ):
        resp = requests.post(f"{emu.url}/v1/oauth/token", json=token_fields(text), timeout=5)
        assert resp.status_code in (400, 401)
        assert _json(resp)["error"] == "invalid_client"


def test_mft_caller_outside_the_key_allow_list_gets_403():
    data = {"seed": 5, "automate_mft": {"tenants": [{"keys": [{"allow_ips": ["10.1.0.0/16"]}]}]}}
    with Emulator(Scenario.from_dict(data)) as server:
        resp = requests.post(
            f"{server.url}/v1/oauth/token", json=token_fields(assertion(server)), timeout=5
        )
        if resp.status_code == 200:  # the token may be issued; the calls are then refused
            token = resp.json()["access_token"]
            resp = requests.get(
                f"{server.url}/v1/licenses/current",
                headers={"Authorization": f"bearer {token}"},
                timeout=5,
            )
        assert resp.status_code == 403


def test_acronis_client_without_task_manager_scope_gets_403():
    data = {"seed": 6, "acronis": {"clients": [{"id": "c1", "secret": "s1", "scopes": []}]}}
    with Emulator(Scenario.from_dict(data)) as server:
        resp = requests.post(
            f"{server.url}/api/2/idp/token",
            auth=("c1", "s1"),
            data={"grant_type": "client_credentials"},
            timeout=5,
        )
        token = _json(resp)["access_token"]
        listing = requests.get(
            f"{server.url}/api/task_manager/v2/tasks",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert listing.status_code == 403


def test_expired_tokens_mft_403_on_every_documented_call_acronis_401_and_renewal_works(short_lived):
    """Both platforms' expiry in one wait.

    MFT answers 403, Acronis 401 (expires_on in Unix seconds).
    """
    creds = short_lived.credentials
    acr_body = _json(
        requests.post(
            f"{short_lived.url}/api/2/idp/token",
            auth=(creds.client_id, creds.client_secret),
            data={"grant_type": "client_credentials"},
            timeout=5,
        )
    )
    # 6 simulated seconds at speed 10: the token is good for 0.6 real seconds.
    assert isinstance(acr_body["expires_on"], int) and acr_body["expires_on"] <= time.time() + 2
    acr_headers = {"Authorization": f"Bearer {acr_body['access_token']}"}
    acr_url = f"{short_lived.url}/api/task_manager/v2/tasks"
    assert requests.get(acr_url, headers=acr_headers, timeout=5).status_code == 200
    short_lived.ensure_mft_task(T_OK)
    resp = requests.post(
        f"{short_lived.url}/v1/oauth/token", json=token_fields(assertion(short_lived)), timeout=5
    )
    body = _json(resp)
    if "expires_in" in body:  # a lifetime in real seconds, for a real client
        assert body["expires_in"] <= 1
    headers = {"Authorization": f"bearer {body['access_token']}"}
    assert (
        requests.get(
            f"{short_lived.url}/v1/licenses/current", headers=headers, timeout=5
        ).status_code
        == 200
    )
    run_id = requests.post(
        f"{short_lived.url}/v1/tasks/{T_OK}/start", json={}, headers=headers, timeout=5
    ).json()["id"]
    time.sleep(0.8)
    for method, path in (
        ("GET", "/v1/licenses/current"),
        ("POST", f"/v1/tasks/{T_OK}/start"),
        ("GET", f"/v1/task-runs/{run_id}"),
    ):
        resp = requests.request(
            method,
            f"{short_lived.url}{path}",
            headers=headers,
            json={} if method == "POST" else None,
            timeout=5,
        )
        assert resp.status_code == 403, (path, resp.status_code)
    assert requests.get(acr_url, headers=acr_headers, timeout=5).status_code == 401
    renewed = {"Authorization": f"bearer {mft_token(short_lived)}"}
    assert (
        requests.get(
            f"{short_lived.url}/v1/task-runs/{run_id}", headers=renewed, timeout=5
        ).status_code
        == 200
    )


# ================================================================ (b) our client vs a strict server


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass_frozen
class RawAnswer:
    content_type: str
    text: str


DROP = object()  # a route's answer: processed, then the connection is closed without a response


class StrictPlatform:
    """Both platforms, written from api-contracts.md only, strict where the contract is.

    Every deviation from the contract is answered as the platform would (an error
    status) and also recorded in `violations`, so a test can say what was wrong.
    """

    TENANT = "5f4dcc3b-5aa7-4c8e-9d2b-0a1b2c3d4e5f"
    KID = "b1946ac9-2492-4c1f-8d7e-6a5b4c3d2e1f"
    CLIENT_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
    CLIENT_SECRET = "s3cr3t-7c9e6679"
    FILTERS = frozenset(
        {
            "id",
            "uuid",
            "type",
            "queue",
            "priority",
            "startedBy",
            "policyId",
            "policyName",
            "policyType",
            "resourceId",
            "resourceName",
            "resourceType",
            "workflowId",
            "tag",
            "state",
            "resultCode",
        }
    )
    TIME_FILTERS = frozenset({"enqueuedAt", "assignedAt", "startedAt", "updatedAt", "completedAt"})
    OTHER = frozenset({"lod", "order", "executorId", "allow_deleted", "limit", "after", "before"})

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.log: list[dict[str, Any]] = []
        self.jtis: set[str] = set()
        self.assertions: list[dict[str, Any]] = []
        self.tokens: dict[str, dict[str, Any]] = {}
        self.tasks = {
            T_OK: ("Pull partner orders", ["success"]),
            T_FAIL: ("Broken export", ["failed"]),
            T_ODD: ("Orders & invoices + 50% #1/2?", ["success"]),
        }
        self.runs: dict[str, dict[str, Any]] = {}
        self.acronis: list[dict[str, Any]] = []
        # platform -> (N, status): the platform's first token dies after N API calls, answering
        # `status` from then on (401 revoked/unknown; 403 for an MFT token that expired early).
        self.kill_first_token: dict[str, tuple[int, int]] = {}
        self.forbid: set[str] = set()  # platforms whose API answers 403 to every call
        self.api_calls = {"mft": 0, "acronis": 0}
        self.expires_in: int | None = 300
        self.expiry_grace = 0.0  # seconds a token still works after its announced expiry
        self.phases: tuple[str, ...] = ("queued", "running")  # a run's statuses before its outcome
        self.policy_runs: list[dict[str, Any]] = []
        self.policy_run_answer: str = (
            "ok"  # ok | drop (processed, then the connection closes) | 503
        )
        self.raw_start_answer: tuple[int, str, str] | None = None  # status, content type, text
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def private_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)

    def calls(self, method: str, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.log if r["method"] == method and r["path"].startswith(prefix)]

    # ---------------------------------------------------------------- Acronis data

    def add_acronis_task(
        self,
        *,
        state: str,
        type_: str = "backup",
        code: str | None = None,
        complete_after: float | None = None,
        result: str = "ok",
    ) -> int:
        """An Acronis task in the fixture's shape; it completes `complete_after` s from now."""
        with self.lock:
            task_id = (
                (1 << 60) + 1 + 2 * len(self.acronis)
            )  # above 2**53, odd: a float would change it
            item = dict(fixture_item())
            item.update(
                id=task_id,
                idString=str(task_id),
                uuid=str(uuid.uuid4()),
                state=state,
                type=type_,
                assignCount=1,
                queue="backup",
            )
            item.pop("result", None)
            item.pop("completedAt", None)
            if state == "completed":
                item["result"] = {"code": code or "ok", "payload": ""}
                item["completedAt"] = item["updatedAt"]
            self.acronis.append(
                {
                    "item": item,
                    "complete_at": None if complete_after is None else time.time() + complete_after,
                    "result": result,
                }
            )
            return task_id

    def acronis_items(self) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for entry in self.acronis:
            item = dict(entry["item"])
            if entry["complete_at"] is not None and now >= entry["complete_at"]:
                item["state"] = "completed"
                item["completedAt"] = "2026-11-23T10:00:00.123456789Z"
                item["result"] = {"code": entry["result"], "payload": ""}
                if entry["result"] == "error":
                    item["result"]["error"] = {
                        "domain": "backup",
                        "code": "Failed",
                        "reason": "disk full",
                    }
            out.append(item)
        return out

    # ---------------------------------------------------------------- HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                split = urlsplit(self.path)
                body = self._body()
                record = {
                    "method": method,
                    "path": split.path,
                    "query": split.query,
                    "headers": dict(self.headers),
                    "body": body,
                }
                with platform.lock:
                    platform.log.append(record)
                try:
                    status, answer = platform.route(
                        method,
                        split.path,
                        parse_qs(split.query, keep_blank_values=True),
                        self.headers,
                        body,
                        split.query,
                    )
                except Exception as exc:  # noqa: BLE001 - a bug here must show, not hang the client
                    platform.violation(f"server error {exc!r}")
                    status, answer = 500, {"error": "server", "message": repr(exc)}
                record["status"] = status
                if answer is DROP:  # processed, but the answer never leaves
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(answer, RawAnswer):
                    data = answer.text.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self._send(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    def route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        raw_query: str,
    ) -> tuple[int, Any]:
        if path == "/v1/oauth/token" and method == "POST":
            return self.mft_token(headers, body)
        if path == "/api/2/idp/token" and method == "POST":
            return self.acronis_token(headers, body)
        if path.startswith("/v1/"):
            return self.mft_api(method, path, query, headers, body, raw_query)
        if path.startswith("/api/task_manager/v2/"):
            return self.acronis_api(method, path, query, headers, raw_query)
        if path == "/api/policy_management/v4/applications/run" and method == "PUT":
            return self.policy_run(headers, body)
        self.violation(f"undocumented call {method} {path}")
        return 404, {"error": "not_found", "message": path}

    # ---------------------------------------------------------------- Automate MFT

    def mft_token(self, headers: Any, body: bytes) -> tuple[int, Any]:
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/json":
            fields = json.loads(body or b"{}")
        elif ctype == "application/x-www-form-urlencoded":
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        else:
            self.violation(f"MFT token request with Content-Type {ctype!r}")
            return 400, {"error": "invalid_request", "error_description": "bad content type"}
        if (
            fields.get("grant_type") != "client_credentials"
            or fields.get("client_assertion_type") != ASSERTION_TYPE
        ):
            self.violation(f"MFT token fields {sorted(fields)} {fields.get('grant_type')!r}")
            return 400, {"error": "invalid_request", "error_description": "grant"}
        text = fields.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(text)
            if header.get("alg") != "ES256" or header.get("kid") != self.KID:
                raise jwt.InvalidTokenError(f"header {header}")
            claims = jwt.decode(
                text,
                self.key.public_key(),
                algorithms=["ES256"],
                audience=f"{self.url}/v1/oauth/token",
                leeway=5,
                options={"require": ["aud", "iss", "sub", "exp", "iat", "nbf", "jti"]},
            )
            now = time.time()
            if claims["iss"] != self.TENANT or claims["sub"] != self.TENANT:
                raise jwt.InvalidTokenError("iss/sub")
            if claims["exp"] > now + 600:
                raise jwt.InvalidTokenError("exp more than 10 minutes ahead")
            if claims["nbf"] > now + 5 or claims["iat"] > now + 5:
                raise jwt.InvalidTokenError("nbf/iat in the future")
            with self.lock:
                self.assertions.append(dict(claims, _header=header))
                if claims["jti"] in self.jtis:
                    raise jwt.InvalidTokenError("jti replayed")
                self.jtis.add(claims["jti"])
        except jwt.PyJWTError as exc:
            self.violation(f"MFT assertion rejected: {exc}")
            return 401, {"error": "invalid_client", "error_description": str(exc)}
        token = _b64(uuid.uuid4().bytes + uuid.uuid4().bytes)
        lifetime = self.expires_in or 300
        with self.lock:
            self.tokens[token] = {
                "platform": "mft",
                "expires": time.time() + lifetime,
                "revoked": False,
                "n": sum(1 for t in self.tokens.values() if t["platform"] == "mft") + 1,
            }
        answer: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return 200, answer

    def bearer(self, headers: Any, platform: str) -> tuple[dict[str, Any] | None, int]:
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, 401
        with self.lock:
            info = self.tokens.get(token.strip())
        if info is None or info["platform"] != platform or info["revoked"]:
            return None, 401
        if time.time() >= info["expires"] + self.expiry_grace:
            return None, 403 if platform == "mft" else 401
        return info, 200

    def count_call(self, info: dict[str, Any], platform: str) -> int:
        with self.lock:
            self.api_calls[platform] += 1
            if platform in self.forbid:
                return 403
            if info.get("dead"):
                return info["dead"]
            kill = self.kill_first_token.get(platform)
            if kill is not None and info["n"] == 1 and self.api_calls[platform] > kill[0]:
                info["dead"] = kill[1]
                return kill[1]
        return 200

    def mft_api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        raw_query: str,
    ) -> tuple[int, Any]:
        info, status = self.bearer(headers, "mft")
        if info is None:
            return status, {
                "error": "unauthorized" if status == 401 else "forbidden",
                "message": "token",
            }
        status = self.count_call(info, "mft")
        if status != 200:
            return status, {
                "error": "unauthorized" if status == 401 else "forbidden",
                "message": "token",
            }
        if method == "GET" and path == "/v1/licenses/current":
            return 200, {
                "tier": "Professional",
                "startDate": "2026-01-01",
                "endDate": "2027-01-01",
                "taskExecutions": {"used": len(self.runs), "limit": 1000},
            }
        if method == "POST" and (
            path == "/v1/tasks/start" or (path.startswith("/v1/tasks/") and path.endswith("/start"))
        ):
            if (headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                self.violation(
                    f"start without a JSON body: {headers.get('Content-Type')!r} {body!r}"
                )
                return 400, {
                    "error": "bad_request",
                    "message": "a JSON object is expected ({} for none)",
                }
            try:
                params = json.loads(body)
            except ValueError:
                params = None
            if not isinstance(params, dict):
                self.violation(f"start body is not a JSON object: {body!r}")
                return 400, {"error": "bad_request", "message": "a JSON object is expected"}
            if path == "/v1/tasks/start":
                # RFC 3986 reading of ?name={task_name}: '+' is a plus sign, not a space.
                names = [
                    unquote(part[len("name=") :])
                    for part in raw_query.split("&")
                    if part.startswith("name=")
                ]
                task_id = next(
                    (tid for tid, (name, _) in self.tasks.items() if [name] == names), None
                )
            else:
                task_id = path[len("/v1/tasks/") : -len("/start")]
            if task_id not in self.tasks:
                return 404, {"error": "not_found", "message": "no such task"}
            if self.raw_start_answer is not None:
                status, ctype, text = self.raw_start_answer
                return status, RawAnswer(ctype, text)
            run_id = str(uuid.uuid4())
            with self.lock:
                outcomes = self.tasks[task_id][1]
                attempt = sum(1 for r in self.runs.values() if r["task"] == task_id)
                self.runs[run_id] = {
                    "task": task_id,
                    "params": params,
                    "polls": 0,
                    "outcome": outcomes[min(attempt, len(outcomes) - 1)],
                }
            return 200, {"id": run_id}
        if method == "GET" and path.startswith("/v1/task-runs/"):
            run_id = path[len("/v1/task-runs/") :]
            with self.lock:
                run = self.runs.get(run_id)
                if run is None:
                    return 404, {"error": "not_found", "message": "no such run"}
                run["polls"] += 1
                polls = run["polls"]
            phases = self.phases
            status = phases[polls - 1] if polls <= len(phases) else run["outcome"]
            return 200, {
                "id": run_id,
                "taskId": run["task"],
                "status": {"taskRunStatus": status},
                "agent": "agent-1",
                "startTime": "2026-11-23T10:00:00Z",
            }
        self.violation(f"undocumented MFT call {method} {path}")
        return 404, {"error": "not_found", "message": path}

    # ---------------------------------------------------------------- Acronis

    def acronis_token(self, headers: Any, body: bytes) -> tuple[int, Any]:
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            self.violation(f"Acronis token request with Content-Type {ctype!r}")
            return 400, {"error": "invalid_request", "error_description": "form body expected"}
        if parse_qs(body.decode()) != {"grant_type": ["client_credentials"]}:
            self.violation(f"Acronis token body {body!r}")
            return 400, {"error": "unsupported_grant_type", "error_description": "grant"}
        scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
        try:
            user, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user = secret = ""
        if scheme.lower() != "basic" or (user, secret) != (self.CLIENT_ID, self.CLIENT_SECRET):
            self.violation("Acronis token request without the right HTTP Basic credentials")
            return 401, {"error": "invalid_client", "error_description": "Invalid client"}
        token = _b64(uuid.uuid4().bytes * 2)
        expires_on = int(time.time()) + 7200
        with self.lock:
            self.tokens[token] = {
                "platform": "acronis",
                "expires": expires_on,
                "revoked": False,
                "n": sum(1 for t in self.tokens.values() if t["platform"] == "acronis") + 1,
            }
        return 200, {
            "access_token": token,
            "expires_on": expires_on,
            "id_token": "x.y.z",
            "token_type": "bearer",
        }

    def policy_run(self, headers: Any, body: bytes) -> tuple[int, Any]:
        """Start a protection plan [doc].

        Answer: {"state": "running", "policy_id": ..., "context_ids": [...]}.
        """
        info, status = self.bearer(headers, "acronis")
        if info is None:
            return status, {"error": "unauthorized"}
        fields = json.loads(body or b"null")
        if (
            not isinstance(fields, dict)
            or fields.get("state") != "running"
            or not fields.get("policy_id")
        ):
            self.violation(f"policy run body {body!r}")
            return self.acronis_error(400, "state running and policy_id expected")
        with self.lock:
            self.policy_runs.append(fields)
        if self.policy_run_answer == "drop":
            return 200, DROP
        if self.policy_run_answer == "503":
            return self.acronis_error(503, "busy")
        return 200, {}

    def acronis_error(self, status: int, reason: str) -> tuple[int, Any]:
        return status, {
            "domain": "TaskManager",
            "code": "Error",
            "reason": reason,
            "context": {},
            "kbLink": {},
            "debug": {},
        }

    def acronis_api(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, raw_query: str
    ) -> tuple[int, Any]:
        if not (headers.get("Authorization") or "").startswith("Bearer "):
            self.violation(
                "Acronis call without 'Authorization: Bearer': "
                f"{headers.get('Authorization')!r:.12}"
            )
        info, status = self.bearer(headers, "acronis")
        if info is None:
            return status, {"error": "unauthorized"}
        status = self.count_call(info, "acronis")
        if status != 200:
            return (
                self.acronis_error(status, "token")
                if status == 403
                else (status, {"error": "unauthorized"})
            )
        if method != "GET":
            self.violation(f"Acronis task manager is read-only: {method} {path}")
            return 405, {}
        items = self.acronis_items()
        if path.startswith("/api/task_manager/v2/tasks/"):
            wanted = path.rsplit("/", 1)[1]
            for item in items:
                if wanted in (item["idString"], item["uuid"]):
                    return 200, item
            return self.acronis_error(404, f"task {wanted} not found")
        if path != "/api/task_manager/v2/tasks":
            self.violation(f"undocumented Acronis call {path}")
            return self.acronis_error(404, path)
        for name, values in query.items():
            if name not in self.FILTERS | self.TIME_FILTERS | self.OTHER:
                self.violation(f"unknown query parameter {name}")
            if any("," in v for v in values) and name in self.FILTERS:
                self.violation(f"comma-separated values for {name}: {values}")
                return self.acronis_error(400, "comma-separated values")
            if name in self.TIME_FILTERS | {"limit", "after", "before", "lod"} and len(values) > 1:
                self.violation(f"{name} given {len(values)} times")
        limit = int(query.get("limit", ["3"])[0])
        if "after" in query or "before" in query:
            extra = set(query) - {"limit", "after", "before", "lod"}
            if extra:
                self.violation(f"a follow-up page repeats the query: {sorted(extra)}")
                return self.acronis_error(400, "a cursor carries the query")
            text = query.get("after", query.get("before"))[0]
            if not (text.startswith("+/") and text.endswith("==")):
                self.violation(f"cursor mangled in transit: {text!r}")
                return self.acronis_error(400, "bad cursor")
            cursor = json.loads(base64.b64decode(text[2:-2]))
            query, position, direction = cursor["query"], cursor["key"], cursor["dir"]
        else:
            position, direction = None, "after"
        for name, values in query.items():
            if name in self.FILTERS:

                def field(item: dict[str, Any], name: str = name) -> str | None:
                    if name == "resultCode":
                        return (item.get("result") or {}).get("code")
                    return str(item.get(name)) if name != "id" else item["idString"]

                items = [i for i in items if field(i) in values]
        # Keyset paging by id: a cursor names the id it follows (or precedes), so tasks leaving
        # the result between two pages shift nothing.
        items.sort(key=lambda i: i["id"])
        if position is None:
            offset = 0
        elif direction == "after":
            offset = next((n for n, i in enumerate(items) if i["id"] > position), len(items))
        else:
            end = next((n for n, i in enumerate(items) if i["id"] >= position), len(items))
            offset, limit = max(0, end - limit), min(limit, end)
        page = items[offset : offset + limit]
        cursors: dict[str, str] = {}
        keep = {k: v for k, v in query.items() if k not in ("limit", "after", "before", "lod")}
        # Cursors carry '+', '/' and '=' (like the documented "0A8AAAAAAAAAAA=="): a client that
        # does not URL-encode them sends a different cursor.
        if page and offset + len(page) < len(items):
            cursors["after"] = (
                "+/"
                + base64.b64encode(
                    json.dumps({"query": keep, "key": page[-1]["id"], "dir": "after"}).encode()
                ).decode()
                + "=="
            )
        if page and offset > 0:
            cursors["before"] = (
                "+/"
                + base64.b64encode(
                    json.dumps({"query": keep, "key": page[0]["id"], "dir": "before"}).encode()
                ).decode()
                + "=="
            )
        return 200, {"items": page, "paging": {"cursors": cursors}}


@pytest.fixture
def platform():
    server = StrictPlatform()
    yield server
    server.close()


def write_pipeline(tmp_path: Path, platform: StrictPlatform, steps: str, monkeypatch) -> Path:
    key = tmp_path / "mft.pem"
    key.write_text(platform.private_pem())
    key.chmod(0o600)
    monkeypatch.setenv("T_TENANT", platform.TENANT)
    monkeypatch.setenv("T_KID", platform.KID)
    monkeypatch.setenv("T_CLIENT", platform.CLIENT_ID)
    monkeypatch.setenv("T_SECRET", platform.CLIENT_SECRET)
    text = f"""version: 1
name: contract
environments:
  mft:
    provider: automate-mft
    base_url: {platform.url}
    credentials:
      tenant_id: {{env: T_TENANT}}
      key_id: {{env: T_KID}}
      private_key: {{file: {key}}}
  acr:
    provider: acronis
    base_url: {platform.url}
    credentials:
      client_id: {{env: T_CLIENT}}
      client_secret: {{env: T_SECRET}}
defaults:
  environment: mft
  timeout: 20s
  poll: {{interval: 50ms, max_interval: 100ms}}
steps:
{steps}"""
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def apply(path: Path) -> int:
    from mftrun.cli import main

    return main(["apply", str(path), "--no-report"])


def test_real_client_start_by_id_and_name_and_http_step_against_strict_server(
    platform, tmp_path, monkeypatch, capsys
):
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task:
      task_id: {T_OK}
      parameters: {{FileMask: "*.csv", Retries: 3}}
  - id: by-name
    start_task: {{name: Pull partner orders}}
  - id: odd-name
    start_task: {{name: "Orders & invoices + 50% #1/2?"}}
  - id: licence
    http: {{method: GET, path: /v1/licenses/current, expect: [200]}}
    outputs: {{tier: "{{{{ response.json.tier }}}}"}}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    starts = platform.calls("POST", "/v1/tasks/")
    assert len(starts) == 3
    assert {run["task"] for run in platform.runs.values()} == {T_OK, T_ODD}
    by_id = next(s for s in starts if s["path"] == f"/v1/tasks/{T_OK}/start")
    assert json.loads(by_id["body"]) == {"FileMask": "*.csv", "Retries": 3}
    by_name = next(s for s in starts if s["query"] == "name=Pull%20partner%20orders")
    assert json.loads(by_name["body"]) == {}
    # One shared token for the environment, asked for with a JSON body like the vendor sample;
    # every call carries it as a bearer token.
    token_calls = platform.calls("POST", "/v1/oauth/token")
    assert len(token_calls) == 1
    assert token_calls[0]["headers"]["Content-Type"].startswith("application/json")
    for call in platform.log:
        if call["path"].startswith("/v1/") and call["path"] != "/v1/oauth/token":
            scheme = call["headers"]["Authorization"].split(" ")[0]
            assert scheme.lower() == "bearer"
    # Polled to the terminal status and not beyond.
    for run_id, run in platform.runs.items():
        assert run["polls"] == 3, (run_id, run)
    # The assertion as issue 4 pins it inside the documented limits: exp 4 minutes ahead at most,
    # iat = nbf = now.
    (claims,) = platform.assertions
    assert claims["_header"]["alg"] == "ES256" and claims["_header"]["kid"] == platform.KID
    assert claims["iat"] == claims["nbf"] and 0 < claims["exp"] - claims["iat"] <= 240
    assert abs(claims["iat"] - time.time()) < 30


def test_real_client_http_step_on_acronis_sends_repeated_query_parameters(
    platform, tmp_path, monkeypatch, capsys
):
    platform.add_acronis_task(state="completed", code="ok")
    platform.add_acronis_task(state="started")
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: list
    environment: acr
    http:
      path: /api/task_manager/v2/tasks
      query: {state: [completed, paused], limit: 1}
      expect: [200]
    outputs:
      first: "{{ response.json['items'][0]['idString'] }}"
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    # apply's login check lists one task with no filter first; the step's call is the other
    calls = [c for c in platform.log if c["path"] == "/api/task_manager/v2/tasks"]
    assert [c["query"] for c in calls[:1]] == ["limit=1"]
    (call,) = calls[1:]
    assert parse_qs(call["query"]) == {"state": ["completed", "paused"], "limit": ["1"]}
    assert call["headers"]["Authorization"].startswith("Bearer ")


def test_real_client_failed_run_exits_1(platform, tmp_path, monkeypatch, capsys):
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: broken
    start_task: {T_FAIL}
""",
        monkeypatch,
    )
    code = apply(path)
    capsys.readouterr()
    assert platform.violations == []
    assert code == 1
    assert len(platform.calls("POST", f"/v1/tasks/{T_FAIL}/start")) == 1


@pytest.mark.parametrize("mode", ["revoked-401", "expired-early-403", "no-expires_in-403"])
def test_real_client_renews_once_and_replays(platform, tmp_path, monkeypatch, capsys, mode):
    status = 401 if mode == "revoked-401" else 403
    # the login check's call, the start and the first poll pass
    platform.kill_first_token["mft"] = (3, status)
    if mode == "no-expires_in-403":
        platform.expires_in = None  # [assumed] absent: the client assumes 5 minutes
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/v1/oauth/token")) == 2
    assert len(platform.calls("POST", "/v1/tasks/")) == 1  # the start is never replayed blindly
    assert [c.get("status") for c in platform.log].count(status) == 1


def test_real_client_renews_before_a_short_token_expires(platform, tmp_path, monkeypatch, capsys):
    platform.expires_in = (
        1  # announced; the grace keeps a busy machine from turning this into a 403 race
    )
    platform.expiry_grace = 1.0
    platform.phases = ("queued", "running", "running")  # the run outlives the renewal point (0.8 s)
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
    poll: {{interval: 300ms, max_interval: 300ms}}
""",
        monkeypatch,
    )
    code = apply(path)
    capsys.readouterr()
    assert platform.violations == [] and code == 0
    assert len(platform.calls("POST", "/v1/oauth/token")) >= 2
    assert 403 not in [c.get("status") for c in platform.log]  # renewed ahead, not after the fact


def test_real_client_acronis_401_renews_once(platform, tmp_path, monkeypatch, capsys):
    platform.kill_first_token["acronis"] = (2, 401)  # after the login check and one listing
    for i in range(2):
        platform.add_acronis_task(state="started", complete_after=0.2 + 0.1 * i)
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/api/2/idp/token")) == 2


def test_real_check_second_403_is_forbidden_with_allow_list_hint(
    platform, tmp_path, monkeypatch, capsys
):
    from mftrun.cli import main

    platform.forbid = {"mft", "acronis"}
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
  - id: backups
    environment: acr
    wait_tasks: {{state: started}}
""",
        monkeypatch,
    )
    code = main(["check", str(path)])
    out = capsys.readouterr()
    text = (out.out + out.err).lower()
    assert code == 3
    assert "allow-list" in text or "allow list" in text
    assert "task_manager" in text
    assert len(platform.calls("POST", "/v1/oauth/token")) == 2  # one renewal, then the verdict
    assert len(platform.calls("POST", "/api/2/idp/token")) == 2  # one renewal, then "missing scope"


def wait_pipeline(platform: StrictPlatform, tmp_path: Path, monkeypatch) -> Path:
    return write_pipeline(
        tmp_path,
        platform,
        """
  - id: backups
    environment: acr
    wait_tasks:
      state: [enqueued, started]
      type: backup
      limit: 2
""",
        monkeypatch,
    )


def test_real_client_wait_tasks_with_paging_against_strict_server(
    platform, tmp_path, monkeypatch, capsys
):
    seen = [
        platform.add_acronis_task(state="started", complete_after=0.1 + 0.05 * i) for i in range(5)
    ]
    platform.add_acronis_task(state="started", type_="replication")  # never matches: other type
    platform.acronis[2]["result"] = "warning"
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    lists = [
        c
        for c in platform.calls("GET", "/api/task_manager/v2/tasks")
        if c["path"] == "/api/task_manager/v2/tasks"
    ]
    # apply's login check lists one task with no filter: not the wait's listing
    first = [c for c in lists if "after=" not in c["query"] and c["query"] != "limit=1"]
    assert first and all(parse_qs(c["query"])["state"] == ["enqueued", "started"] for c in first)
    assert any(
        "after=" in c["query"] for c in lists
    )  # five tasks, two a page: cursors were followed
    # Results were looked up by the exact 64-bit ids (a float would have lost the last digit).
    looked_up = {
        c["path"].rsplit("/", 1)[1]
        for c in platform.log
        if c["path"].startswith("/api/task_manager/v2/tasks/")
    }
    looked_up |= {v for c in lists for v in parse_qs(c["query"]).get("id", [])}
    assert {str(i) for i in seen} <= looked_up
    assert len(platform.calls("POST", "/api/2/idp/token")) == 1


def test_real_client_wait_tasks_fails_and_names_the_task(platform, tmp_path, monkeypatch, capsys):
    for i in range(3):
        platform.add_acronis_task(state="started", complete_after=0.2 + 0.1 * i)
    bad = platform.acronis[1]
    bad["result"] = "error"
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 1
    assert bad["item"]["idString"] in out.out + out.err


def test_real_check_against_strict_server(platform, tmp_path, monkeypatch, capsys):
    from mftrun.cli import main

    platform.add_acronis_task(state="completed", code="ok")
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
  - id: backups
    environment: acr
    wait_tasks: {{state: started}}
""",
        monkeypatch,
    )
    code = main(["check", str(path)])
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("GET", "/v1/licenses/current")) == 1
    query = parse_qs(platform.calls("GET", "/api/task_manager/v2/tasks")[0]["query"])
    assert query.get("limit") == ["1"]
    assert platform.calls("POST", "/v1/tasks/") == []  # check starts nothing


def test_real_check_reports_rejected_credentials_exit_3(platform, tmp_path, monkeypatch, capsys):
    from mftrun.cli import main

    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    monkeypatch.setenv("T_KID", "some-other-key")
    code = main(["check", str(path)])
    out = capsys.readouterr()
    assert code == 3
    assert "kid" in (out.out + out.err).lower()


def test_real_client_base_url_with_trailing_slash_keeps_the_exact_audience(
    platform, tmp_path, monkeypatch, capsys
):
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    path.write_text(
        path.read_text().replace(f"base_url: {platform.url}\n", f"base_url: {platform.url}/\n")
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert all("//" not in c["path"] for c in platform.log)


def test_real_client_wait_tasks_lod_goes_on_follow_up_pages(
    platform, tmp_path, monkeypatch, capsys
):
    for _i in range(3):
        platform.add_acronis_task(state="started", complete_after=0.2)
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: backups
    environment: acr
    wait_tasks: {state: [enqueued, started], limit: 1, lod: short}
""",
        monkeypatch,
    )
    code = apply(path)
    capsys.readouterr()
    assert platform.violations == [] and code == 0
    follow = [
        parse_qs(c["query"])
        for c in platform.log
        if c["path"] == "/api/task_manager/v2/tasks" and "after=" in c["query"]
    ]
    assert follow and all(
        set(q) == {"limit", "after", "lod"} and q["lod"] == ["short"] for q in follow
    )


def test_real_client_unknown_run_status_keeps_polling_until_the_step_timeout(
    platform, tmp_path, monkeypatch, capsys
):
    platform.tasks[T_OK] = ("Pull partner orders", ["paused"])
    platform.phases = ()  # "paused" from the first poll on
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
    timeout: 500ms
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert platform.violations == []
    assert code == 1, text
    assert "paused" in text
    run = next(iter(platform.runs.values()))
    assert run["polls"] >= 2  # it kept asking after the unknown status
    assert "may still" in text.lower()  # no public cancel: the remote run may go on


def test_acronis_activities_endpoints_are_served(emu, acr):
    """`GET /activities` and `/activities/{id}` are documented task-manager endpoints, not 404s."""
    resp = requests.get(
        f"{emu.url}/api/task_manager/v2/activities", params={"limit": "2"}, headers=acr, timeout=5
    )
    assert resp.status_code == 200
    body = _json(resp)
    assert len(body["items"]) == 2 and "after" in body["paging"]["cursors"]
    activity = body["items"][0]
    assert isinstance(activity["id"], int) and activity["id"] > 2**53
    assert activity["idString"] == str(activity["id"])
    assert f'"id":{activity["id"]}' in resp.text.replace(" ", "")
    one = requests.get(
        f"{emu.url}/api/task_manager/v2/activities/{activity['idString']}", headers=acr, timeout=5
    )
    assert one.status_code == 200 and _json(one)["id"] == activity["id"]
    mine = f"{emu.url}/api/task_manager/v2/activities"
    by_task = _json(requests.get(mine, params={"taskId": str(A_FIXED_ID)}, headers=acr, timeout=5))
    assert [a["taskId"] for a in by_task["items"]] == [A_FIXED_ID]
    assert by_task["items"][0]["result"]["code"] == "ok"
    missing = requests.get(f"{mine}/{2**60 + 777}", headers=acr, timeout=5)
    assert missing.status_code == 404 and set(_json(missing)) >= ACRONIS_ERROR_KEYS
    assert requests.get(mine, timeout=5).status_code == 401


def test_real_client_refuses_comma_joined_ids_instead_of_passing_at_once(
    platform, tmp_path, monkeypatch, capsys
):
    """The API takes repeated parameters; "P1,P2" would match nothing and the wait pass at once."""
    platform.add_acronis_task(state="started")
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: backups
    environment: acr
    wait_tasks: {{state: started, policyId: "{POLICY},{RES_1}"}}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0
    assert f"policyId: [{POLICY}, {RES_1}]" in text
    listings = [c for c in platform.log if c["path"] == "/api/task_manager/v2/tasks"]
    assert [c["query"] for c in listings] == ["limit=1"]  # only apply's login check


@pytest.mark.parametrize("status", [500, 400])
def test_real_client_shows_an_error_body_truncated_and_escaped(
    platform, tmp_path, monkeypatch, capsys, status
):
    """Error body format is unknown: show whatever text it carries, truncated and escaped."""
    platform.raw_start_answer = (
        status,
        "text/html",
        "<html><body>\x1b[31mProxy\rError\x07 " + "A" * 5000 + "</body></html>",
    )
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0
    assert "Proxy" in text
    assert "\x1b[31m" not in text and "\x07" not in text and "\rError" not in text
    assert "A" * 600 not in text
    assert len(platform.calls("POST", "/v1/tasks/")) == 1  # never re-sent: it may have started


def test_real_client_audience_is_canonical_whatever_case_and_default_port(
    platform, tmp_path, monkeypatch, capsys
):
    """`aud` must equal the token endpoint URL exactly.

    A base_url typed as HTTP://LocalHost:80/ would not.
    """
    port = platform.server.server_address[1]
    platform.url = f"http://localhost:{port}"  # what the server expects in `aud`
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    path.write_text(
        path.read_text().replace(
            f"base_url: http://localhost:{port}\n", f"base_url: HTTP://LocalHost:{port}/\n"
        )
    )
    assert f"HTTP://LocalHost:{port}/" in path.read_text()
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert platform.assertions[0]["aud"] == f"http://localhost:{port}/v1/oauth/token"


def test_base_url_is_canonical_so_the_mft_audience_matches_exactly():
    from mftrun.errors import ConnectError
    from mftrun.http.session import check_base_url as canonical

    assert canonical("HTTPS://API.us.mft.progress.com:443/") == "https://api.us.mft.progress.com"
    assert canonical(" https://eu2-cloud.acronis.com ") == "https://eu2-cloud.acronis.com"
    assert canonical("https://h.example:8443/base/") == "https://h.example:8443/base"
    assert canonical("http://[::1]:80/") == "http://[::1]"
    with pytest.raises(ConnectError) as info:
        canonical("https://user:pw@h.example")
    assert "pw" not in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
def test_real_client_start_refused_for_its_token_is_replayed_once_with_a_new_one(
    platform, tmp_path, monkeypatch, capsys, status
):
    """A start refused with 401/403 was not processed: one renewal, one replay, one run."""
    platform.kill_first_token["mft"] = (1, status)  # the login check's call passes
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/v1/oauth/token")) == 2
    assert len(platform.calls("POST", f"/v1/tasks/{T_OK}/start")) == 2
    assert len(platform.runs) == 1


def test_real_client_acronis_403_renews_once_for_a_role_granted_since(
    platform, tmp_path, monkeypatch, capsys
):
    """Section 3: the token is renewed once on 401/403; a role granted later is in the new token."""
    platform.kill_first_token["acronis"] = (1, 403)  # the login check's call passes
    platform.add_acronis_task(state="started", complete_after=0.1)
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/api/2/idp/token")) == 2


def test_acronis_cursor_skips_nothing_when_a_task_leaves_the_result_between_pages():
    """A task completing between page 1 and page 2 must not push a still-open task out of sight."""
    data = {
        "seed": 9,
        "acronis": {
            "tasks": [
                {
                    "type": "race",
                    "enqueued": "-10m",
                    "started": "-10m",
                    "completed": 0.4,
                    "result": "error",
                },
                {"type": "race", "enqueued": "-9m", "started": "-9m"},
                {"type": "race", "enqueued": "-8m", "started": "-8m"},
                {"type": "race", "enqueued": "-7m", "started": "-7m"},
            ]
        },
    }
    with Emulator(Scenario.from_dict(data)) as server:
        started = time.time()  # scenario offsets count from the emulator's start, just before this
        headers = {"Authorization": f"Bearer {acronis_token(server)['access_token']}"}
        first = tasks(server, headers, [("state", "started"), ("type", "race"), ("limit", "2")])
        all_open = tasks(server, headers, [("state", "started"), ("type", "race")])["items"]
        time.sleep(max(0.0, started + 0.5 - time.time()))
        second = tasks(
            server, headers, {"limit": "2", "after": first["paging"]["cursors"]["after"]}
        )
    assert len(first["items"]) == 2 and len(all_open) == 4
    assert [i["id"] for i in second["items"]] == [i["id"] for i in all_open[2:]]


def test_real_client_form_token_body_override_is_a_standard_oauth_post(
    platform, tmp_path, monkeypatch, capsys
):
    """MFTRUN_MFT_TOKEN_BODY=form: the docs' "standard OAuth-style POST", form-encoded."""
    monkeypatch.setenv("MFTRUN_MFT_TOKEN_BODY", "form")
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: licence
    http: {path: /v1/licenses/current}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    (call,) = platform.calls("POST", "/v1/oauth/token")
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert set(parse_qs(call["body"].decode())) == {
        "grant_type",
        "client_assertion_type",
        "client_assertion",
    }


def test_real_client_token_body_form_from_the_pipeline_file(
    platform, tmp_path, monkeypatch, capsys
):
    """The same override written where the contract asks for it: in the pipeline file."""
    monkeypatch.delenv("MFTRUN_MFT_TOKEN_BODY", raising=False)
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: licence
    http: {path: /v1/licenses/current}
""",
        monkeypatch,
    )
    path.write_text(
        path.read_text().replace(
            "    provider: automate-mft\n", "    provider: automate-mft\n    token_body: form\n", 1
        )
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    (call,) = platform.calls("POST", "/v1/oauth/token")
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize("answer", ["ok", "drop", "503"])
def test_real_client_http_put_that_starts_a_plan_is_never_resent(
    platform, tmp_path, monkeypatch, capsys, answer
):
    """Acronis starts a protection plan with a PUT.

    A start is never replayed after an ambiguous failure.
    """
    platform.policy_run_answer = answer
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: run-plan
    environment: acr
    http:
      method: PUT
      path: /api/policy_management/v4/applications/run
      json: {{state: running, policy_id: "{POLICY}", context_ids: ["{RES_1}"]}}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert platform.violations == [], platform.violations
    assert len(platform.policy_runs) == 1, (
        platform.policy_runs
    )  # processed once, whatever came back
    assert platform.policy_runs[0] == {
        "state": "running",
        "policy_id": POLICY,
        "context_ids": [RES_1],
    }
    if answer == "ok":
        assert code == 0, text
    else:
        assert code != 0
        if answer == "drop":
            assert "may have" in text


def test_emulator_runs_a_protection_plan_started_with_the_documented_put(
    tmp_path, monkeypatch, capsys
):
    """`PUT .../applications/run` starts a plan [doc].

    Under the emulator its tasks then appear and end as the scenario's earlier run of that
    plan did (here: error), so wait_tasks can rehearse it."""
    data = {
        "seed": 4,
        "speed": 120,
        "acronis": {
            "tasks": [
                {
                    "type": "backup",
                    "enqueued": "-10m",
                    "started": "-10m",
                    "completed": "-9m",
                    "result": "error",
                    "policy": {"id": POLICY, "name": "Nightly servers"},
                    "resource": {"id": RES_1, "name": "db-01"},
                },
            ]
        },
    }
    with Emulator(Scenario.from_dict(data)) as server:
        headers = {"Authorization": f"Bearer {acronis_token(server)['access_token']}"}
        url = f"{server.url}/api/policy_management/v4/applications/run"
        bad = requests.put(
            url, json={"state": "stopped", "policy_id": POLICY}, headers=headers, timeout=5
        )
        assert bad.status_code == 400 and set(_json(bad)) >= ACRONIS_ERROR_KEYS
        assert (
            requests.put(url, json={"state": "running", "policy_id": POLICY}, timeout=5).status_code
            == 401
        )
        env = server.write_credentials(tmp_path / "creds")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        pipeline = tmp_path / "plan.yaml"
        pipeline.write_text(f"""version: 1
name: plan
environments:
  acr:
    provider: acronis
    base_url: {server.url}
    credentials:
      client_id: {{env: ACRONIS_CLIENT_ID}}
      client_secret: {{env: ACRONIS_CLIENT_SECRET}}
defaults:
  environment: acr
  poll: {{interval: 100ms, max_interval: 200ms}}
  timeout: 20s
steps:
  - id: run-plan
    http:
      method: PUT
      path: /api/policy_management/v4/applications/run
      json: {{state: running, policy_id: "{POLICY}", context_ids: ["{RES_1}"]}}
      expect: [200, 204]
  - id: wait
    needs: [run-plan]
    wait_tasks: {{policyId: "{POLICY}", state: [enqueued, assigned, started]}}
""")
        code = apply(pipeline)
        out = capsys.readouterr()
        listing = tasks(server, headers, {"policyId": POLICY})["items"]
    assert code == 1, out.out + out.err
    assert len(listing) == 2  # the scenario's earlier run and the one the PUT started
    new = next(i for i in listing if i["startedByUser"] == "api")
    assert new["resource"] == {"id": RES_1, "name": "db-01"} and new["result"]["code"] == "error"
    assert new["idString"] in out.out + out.err
