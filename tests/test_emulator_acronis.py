"""Contract tests for the emulated Acronis IdP and task manager v2, over real HTTP."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from mftrun.emulator import Emulator, Scenario, SteppedClock

TASKS = "/api/task_manager/v2/tasks"
FIXTURE = (
    Path(__file__).resolve().parent / "fixtures" / "acronis-tasks-in-progress.json"
)  # a copy of the shared fixture
NS_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
BIG_ID = 944455285181775872


def get_token(
    emu: Emulator, client_id: str | None = None, secret: str | None = None
) -> requests.Response:
    creds = emu.credentials
    return requests.post(
        f"{emu.url}/api/2/idp/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id or creds.client_id, secret or creds.client_secret),
        timeout=5,
    )


def headers(emu: Emulator) -> dict[str, str]:
    response = get_token(emu)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def list_tasks(emu: Emulator, hdrs: dict[str, str], params: Any) -> requests.Response:
    return requests.get(f"{emu.url}{TASKS}", params=params, headers=hdrs, timeout=5)


SCENARIO = {
    "seed": 3,
    "acronis": {
        "tenant": {"id": "1496265", "name": "johndoe@mysite.com", "locator": "/1/1496262/1496265/"},
        "clients": [
            {"id": "client-a", "secret": "s3cret"},
            {"id": "no-scope", "secret": "s3cret", "scopes": []},
        ],
        "tasks": [
            {
                "id": BIG_ID,
                "uuid": "38045860-8901-426e-b51f-fc6d24d1cbe0",
                "type": "backup",
                "queue": "legacySync",
                "enqueued": "-3h",
                "started": "-2h",
                "completed": "-1h",
                "result": "ok",
                "policy": {
                    "id": "pol-1",
                    "name": "Nightly servers",
                    "type": "policy.protection.total",
                },
                "resource": {"id": "res-1", "name": "DESKTOP-GFT9S1R", "type": "machine"},
                "tags": ["prod"],
                "started_by": "DESKTOP-GFT9S1R\\AMS User",
                "context": {"IsProcessRoot": True},
            },
            {
                "type": "backup",
                "queue": "backup",
                "enqueued": "-2h",
                "started": "-90m",
                "completed": "-30m",
                "result": {
                    "code": "error",
                    "error": {"code": "DiskFull", "reason": "disk <b>full</b>"},
                },
                "policy": {"id": "pol-2", "name": "Weekly laptops"},
                "resource": {"id": "res-2", "name": "laptop-7"},
                "priority": "high",
                "started_by": "admin@example.com",
            },
            {
                "type": "replication",
                "queue": "backup",
                "enqueued": "-10m",
                "started": "-5m",
                "policy": {"id": "pol-1", "name": "Nightly servers"},
                "resource": {"id": "res-3", "name": "db-1"},
                "tags": ["prod", "db"],
            },
            {"type": "backup", "queue": "backup", "enqueued": "-1m"},
            {
                "type": "cleanup",
                "queue": "maintenance",
                "count": 25,
                "enqueued": "-5h",
                "started": "-5h",
                "completed": "-4h",
                "result": "warning",
            },
        ],
    },
}


@pytest.fixture(scope="module")
def emu():
    with Emulator(Scenario.from_dict(SCENARIO)) as server:
        yield server


@pytest.fixture(scope="module")
def hdrs(emu: Emulator) -> dict[str, str]:
    return headers(emu)


def test_token_answer_has_the_documented_fields(emu: Emulator) -> None:
    response = get_token(emu)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "id_token", "token_type"}
    assert body["access_token"].count(".") == 2 and body["id_token"].count(".") == 2  # JWT-looking
    assert isinstance(body["expires_on"], int)
    assert abs(body["expires_on"] - (time.time() + 7200)) < 5  # Unix seconds, 2 hours
    assert body["token_type"] == "bearer"
    assert emu.journal.tokens_issued("acronis") >= 1


def test_rejected_clients(emu: Emulator) -> None:
    bad = get_token(emu, secret="wrong")
    assert bad.status_code == 401 and bad.json() == {
        "error": "invalid_client",
        "error_description": "Invalid client",
    }
    assert get_token(emu, client_id="nobody").status_code == 401
    no_basic = requests.post(
        f"{emu.url}/api/2/idp/token", data={"grant_type": "client_credentials"}, timeout=5
    )
    assert no_basic.status_code == 401
    creds = emu.credentials
    as_json = requests.post(
        f"{emu.url}/api/2/idp/token",
        json={"grant_type": "client_credentials"},
        auth=(creds.client_id, creds.client_secret),
        timeout=5,
    )
    assert as_json.status_code == 400
    wrong_grant = requests.post(
        f"{emu.url}/api/2/idp/token",
        data={"grant_type": "password"},
        auth=(creds.client_id, creds.client_secret),
        timeout=5,
    )
    assert wrong_grant.status_code == 400


def _error_shape(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert {"domain", "code", "reason", "context", "kbLink", "debug"} <= set(body)
    return body


def test_missing_or_unknown_token_is_401(emu: Emulator) -> None:
    assert list_tasks(emu, {}, {}).status_code == 401
    response = list_tasks(emu, {"Authorization": "Bearer eyJ.x.y"}, {})
    assert response.status_code == 401
    _error_shape(response)


def test_expired_token_is_401() -> None:
    clock = SteppedClock()
    with Emulator(Scenario.from_dict({"acronis": {"token_lifetime": "300ms"}}), clock=clock) as emu:
        hdrs = headers(emu)
        assert list_tasks(emu, hdrs, {}).status_code == 200
        clock.advance(0.4)
        assert list_tasks(emu, hdrs, {}).status_code == 401


def test_client_without_scope_gets_403(emu: Emulator) -> None:
    token = get_token(emu, "no-scope", "s3cret").json()["access_token"]
    response = list_tasks(emu, {"Authorization": f"Bearer {token}"}, {})
    assert response.status_code == 403
    _error_shape(response)


def test_items_have_the_fixture_shape(emu: Emulator, hdrs: dict[str, str]) -> None:
    fixture_item = json.loads(FIXTURE.read_text())["items"][0]
    response = list_tasks(emu, hdrs, {"id": str(BIG_ID)})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "paging"} and "cursors" in body["paging"]
    (item,) = body["items"]
    assert set(fixture_item) <= set(item)
    assert item["id"] == BIG_ID and item["idString"] == str(BIG_ID) and BIG_ID > 2**53
    assert f'"id":{BIG_ID}' in response.text.replace(
        " ", ""
    )  # a JSON integer, not a string or float
    for name in ("enqueuedAt", "startedAt", "completedAt", "updatedAt"):
        assert NS_STAMP.match(item[name]), item[name]
    assert (
        item["state"] == "completed"
        and item["result"]["code"] == "ok"
        and "payload" in item["result"]
    )
    assert item["tenant"] == fixture_item["tenant"]
    assert item["issuer"] == {"clusterId": "", "id": ""}
    for required in ("cancelRequested", "assignCount", "priority", "queue", "type"):
        assert required in item
    assert item["policy"]["id"] == "pol-1" and item["resource"]["name"] == "DESKTOP-GFT9S1R"


def test_generated_ids_are_above_2_53(emu: Emulator, hdrs: dict[str, str]) -> None:
    items = list_tasks(emu, hdrs, {"limit": 100}).json()["items"]
    assert len(items) == 29
    assert all(i["id"] > 2**53 and str(i["id"]) == i["idString"] for i in items)


def ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [i["idString"] for i in response.json()["items"]]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"state": "completed"}, 27),
        ({"state": ["started", "enqueued"]}, 2),
        ({"state": "started"}, 1),
        ({"resultCode": "error"}, 1),
        ({"resultCode": ["ok", "error"]}, 2),
        ({"resultCode": "warning"}, 25),
        ({"type": "backup"}, 3),
        ({"type": ["replication", "cleanup"]}, 26),
        ({"queue": "maintenance"}, 25),
        ({"priority": "high"}, 1),
        ({"policyId": "pol-1"}, 2),
        ({"policyName": "like(nightly)"}, 2),
        ({"policyName": "like(Weekly%)"}, 1),
        ({"policyName": "Nightly servers"}, 2),
        ({"resourceId": ["res-1", "res-2"]}, 2),
        ({"resourceName": "like(laptop)"}, 1),
        ({"startedBy": "like(%AMS%)"}, 1),
        ({"tag": "db"}, 1),
        ({"tag": "prod"}, 2),
        ({"uuid": "38045860-8901-426e-b51f-fc6d24d1cbe0"}, 1),
        ({"type": "backup", "state": "completed"}, 2),
        ({"type": "backup,replication"}, 0),  # comma-separated values are not a list
    ],
)
def test_filters(
    emu: Emulator, hdrs: dict[str, str], params: dict[str, Any], expected: int
) -> None:
    assert len(ids(list_tasks(emu, hdrs, {**params, "limit": 100}))) == expected


def test_time_filters(emu: Emulator, hdrs: dict[str, str]) -> None:
    now = time.time()
    two_hours_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 2 * 3600))
    recent = ids(list_tasks(emu, hdrs, {"completedAt": f"gt({two_hours_ago})", "limit": 100}))
    assert len(recent) == 2  # the ok and the error task; warnings finished 4 h ago
    assert str(BIG_ID) in recent
    assert (
        ids(list_tasks(emu, hdrs, {"completedAt": f"gt({int(now - 2 * 3600)})", "limit": 100}))
        == recent
    )
    ns = f"{int((now - 2 * 3600) * 1e9)}ns"
    assert ids(list_tasks(emu, hdrs, {"completedAt": f"ge({ns})", "limit": 100})) == recent
    older = ids(list_tasks(emu, hdrs, {"completedAt": f"lt({two_hours_ago})", "limit": 100}))
    assert len(older) == 25
    rfc1123 = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now - 20 * 60))
    assert len(ids(list_tasks(emu, hdrs, {"enqueuedAt": f"gt({rfc1123})", "limit": 100}))) == 2
    started_ns = list_tasks(emu, hdrs, {"id": str(BIG_ID)}).json()["items"][0]["startedAt"]
    assert ids(list_tasks(emu, hdrs, {"startedAt": f"eq({started_ns})"})) == [str(BIG_ID)]


@pytest.mark.parametrize(
    "params",
    [
        {"state": "running"},
        {"resultCode": "success"},
        {"priority": "urgent"},
        {"nosuch": "x"},
        {"completedAt": "gt(yesterday)"},
        {"limit": "0"},
        {"limit": "abc"},
        {"lod": "everything"},
        {"type": "like(back)"},
        {"completedAt": ["gt(1)", "lt(2)"]},
        {"order": "sideways(id)"},
    ],
)
def test_bad_queries_are_400_with_the_error_shape(
    emu: Emulator, hdrs: dict[str, str], params: dict[str, Any]
) -> None:
    response = list_tasks(emu, hdrs, params)
    assert response.status_code == 400, params
    _error_shape(response)


def test_pagination_follows_cursors_to_the_end(emu: Emulator, hdrs: dict[str, str]) -> None:
    first = list_tasks(emu, hdrs, {"queue": "maintenance", "limit": 10, "lod": "full"})
    pages = [first.json()]
    while "after" in pages[-1]["paging"]["cursors"]:
        # Follow-up pages send only limit, after and lod: the cursor carries the query.
        response = list_tasks(
            emu,
            hdrs,
            {"limit": 10, "after": pages[-1]["paging"]["cursors"]["after"], "lod": "full"},
        )
        assert response.status_code == 200, response.text
        pages.append(response.json())
        assert len(pages) < 10
    sizes = [len(p["items"]) for p in pages]
    assert sizes == [10, 10, 5]
    seen = [i["idString"] for p in pages for i in p["items"]]
    assert len(set(seen)) == 25 and all(
        i["queue"] == "maintenance" for p in pages for i in p["items"]
    )
    assert "before" not in pages[0]["paging"]["cursors"]
    back = list_tasks(emu, hdrs, {"limit": 10, "before": pages[2]["paging"]["cursors"]["before"]})
    assert ids(back) == [i["idString"] for i in pages[1]["items"]]


def test_cursor_with_filters_is_refused(emu: Emulator, hdrs: dict[str, str]) -> None:
    cursor = list_tasks(emu, hdrs, {"limit": 5}).json()["paging"]["cursors"]["after"]
    response = list_tasks(emu, hdrs, {"limit": 5, "after": cursor, "state": "completed"})
    assert response.status_code == 400
    assert list_tasks(emu, hdrs, {"limit": 5, "after": "garbage!"}).status_code == 400


def test_order(emu: Emulator, hdrs: dict[str, str]) -> None:
    asc = ids(list_tasks(emu, hdrs, {"order": "asc(id)", "limit": 100}))
    desc = ids(list_tasks(emu, hdrs, {"order": "desc(id)", "limit": 100}))
    assert asc == sorted(asc, key=int) and desc == list(reversed(asc))


def test_lod_count(emu: Emulator, hdrs: dict[str, str]) -> None:
    assert list_tasks(emu, hdrs, {"state": "completed", "lod": "count"}).json() == {"count": 27}


def test_get_one_task(emu: Emulator, hdrs: dict[str, str]) -> None:
    response = requests.get(f"{emu.url}{TASKS}/{BIG_ID}", headers=hdrs, timeout=5)
    assert response.status_code == 200 and response.json()["idString"] == str(BIG_ID)
    missing = requests.get(f"{emu.url}{TASKS}/12345", headers=hdrs, timeout=5)
    assert missing.status_code == 404 and _error_shape(missing)["code"]
    assert requests.get(f"{emu.url}{TASKS}/abc", headers=hdrs, timeout=5).status_code == 400


def test_task_manager_is_read_only(emu: Emulator, hdrs: dict[str, str]) -> None:
    assert requests.delete(f"{emu.url}{TASKS}/{BIG_ID}", headers=hdrs, timeout=5).status_code in (
        404,
        405,
    )


def test_timeline_enqueued_started_completed() -> None:
    scenario = Scenario.from_dict(
        {
            "speed": 10,
            "acronis": {
                "tasks": [{"enqueued": 0, "started": "2s", "completed": "4s", "result": "ok"}]
            },
        }
    )
    with Emulator(scenario) as emu:
        hdrs = headers(emu)
        seen: list[str] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            (item,) = list_tasks(emu, hdrs, {}).json()["items"]
            if not seen or seen[-1] != item["state"]:
                seen.append(item["state"])
            if item["state"] == "completed":
                break
            assert "result" not in item and "completedAt" not in item
            time.sleep(0.02)
        assert seen == ["enqueued", "started", "completed"]
        assert item["result"]["code"] == "ok" and NS_STAMP.match(item["completedAt"])


def test_ensure_acronis_activity_adds_two_tasks_that_finish_ok() -> None:
    clock = SteppedClock()
    with Emulator(clock=clock) as emu:
        emu.ensure_acronis_activity()
        hdrs = headers(emu)
        items = list_tasks(emu, hdrs, {"state": ["started", "paused"]}).json()["items"]
        assert len(items) == 2
        clock.advance(2.1)
        done = list_tasks(emu, hdrs, {}).json()["items"]
        assert [i["state"] for i in done] == ["completed", "completed"]
        assert {i["result"]["code"] for i in done} == {"ok"}
        emu.ensure_acronis_activity()  # only when there are none
        assert len(list_tasks(emu, hdrs, {}).json()["items"]) == 2
