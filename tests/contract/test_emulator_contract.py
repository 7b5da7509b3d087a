"""(a) A client written from api-contracts.md alone drives our emulator (README.md here).

Plain requests + PyJWT + cryptography, no mftrun.http / mftrun.providers: every
documented call, asserting exactly what the contract says.
"""

from __future__ import annotations

import base64
import calendar
import email.utils
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mftrun.emulator import Emulator, Scenario, SteppedClock

from contract_fixture import (
    fixture_item,
    ACRONIS_ERROR_KEYS,
    ASSERTION_TYPE,
    A_FIXED_ID,
    A_FIXED_UUID,
    NS_TIMESTAMP,
    POLICY,
    RES_1,
    RES_2,
    T_FAIL,
    T_OK,
)


def _json(resp: requests.Response) -> Any:
    assert resp.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", (
        resp.status_code,
        resp.headers.get("Content-Type"),
        resp.text[:200],
    )
    return resp.json()


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
    clock = SteppedClock()
    with Emulator(Scenario.from_dict(data), clock=clock) as server:
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
    short_lived.clock.advance(0.8)
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


def apply(path: Path) -> int:
    from mftrun.cli import main

    return main(["apply", str(path), "--no-report"])


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
