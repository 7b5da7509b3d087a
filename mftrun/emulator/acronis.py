"""The emulated Acronis Cyber Protect Cloud: the IdP token endpoint and task manager v2.

Tasks are scenario timelines; a task's state, timestamps and result are computed
from the clock when it is listed. Items have exactly the shape of the vendor's
sample (64-bit `id` as a JSON integer plus `idString`, RFC 3339 timestamps with
nanoseconds). Fields appear when they mean something: `assignedAt`, `startedAt`,
`completedAt` and `result` only once the task has got there.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import secrets
import threading
import uuid
from calendar import timegm
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote

from mftrun.emulator.journal import FaultRecord, Journal
from mftrun.emulator.scenario import AcronisClient, AcronisTask, Fault, Scenario
from mftrun.emulator.wire import Request, Response, SimClock, json_response, rfc3339_ns

PLATFORM = "acronis"
TASKS_PATH = "/api/task_manager/v2/tasks"
ACTIVITIES_PATH = "/api/task_manager/v2/activities"
ACTIVITY_ID_BIT = 1 << 62  # an activity's 64-bit id: its task's id with this bit flipped
POLICY_RUN_PATH = "/api/policy_management/v4/applications/run"
POLICY_RUN_DURATION = (
    60.0  # simulated seconds a plan run takes when no scenario task says otherwise
)
STATES = ("enqueued", "assigned", "started", "paused", "completed")
RESULTS = ("ok", "error", "warning", "cancelled", "abandoned", "timedout")
PRIORITIES = ("low", "belowNormal", "normal", "aboveNormal", "high")
LODS = ("tiny", "short", "long", "full", "debug", "count")
TIME_FIELDS = {
    "enqueuedAt": "enqueuedAt",
    "assignedAt": "assignedAt",
    "startedAt": "startedAt",
    "updatedAt": "updatedAt",
    "completedAt": "completedAt",
}
LIKE_FIELDS = ("startedBy", "policyName", "resourceName")
PAGING = ("limit", "after", "before", "lod")
OTHER_PARAMS = ("order", "allow_deleted")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def _past(key: list[Any], position: list[Any], descending: bool) -> bool:
    """Whether `key` comes after `position` in the listing's order."""
    return key < position if descending else key > position


def _named(item: dict[str, Any], key: str, field: str) -> list[str]:
    value = item.get(key)
    return (
        [str(value.get(field))] if isinstance(value, dict) and value.get(field) is not None else []
    )


# Multi-value filters: parameter -> the item's values it is compared with.
VALUE_FILTERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "id": lambda i: [i["idString"]],
    "uuid": lambda i: [i["uuid"]],
    "taskId": lambda i: [i["taskIdString"]] if "taskIdString" in i else [],  # activities only
    "type": lambda i: [i["type"]],
    "queue": lambda i: [i["queue"]],
    "priority": lambda i: [i["priority"]],
    "state": lambda i: [i["state"]],
    "resultCode": lambda i: [i["result"]["code"]] if "result" in i else [],
    "startedBy": lambda i: [i["startedByUser"]] if i.get("startedByUser") else [],
    "policyId": lambda i: _named(i, "policy", "id"),
    "policyName": lambda i: _named(i, "policy", "name"),
    "policyType": lambda i: _named(i, "policy", "type"),
    "resourceId": lambda i: _named(i, "resource", "id"),
    "resourceName": lambda i: _named(i, "resource", "name"),
    "resourceType": lambda i: _named(i, "resource", "type"),
    "workflowId": lambda i: [i["workflowId"]] if i.get("workflowId") else [],
    "executorId": lambda i: _named(i, "executor", "id"),
    "tag": lambda i: list(i.get("tags") or ()),
}
ENUMS = {"state": STATES, "resultCode": RESULTS, "priority": PRIORITIES}


class _BadRequest(Exception):
    pass


def _error(
    status: int,
    code: str,
    reason: str,
    *,
    domain: str = "TaskManager",
    token: str | None = None,
    fault: str | None = None,
    context: dict[str, Any] | None = None,
) -> Response:
    return json_response(
        status,
        {
            "domain": domain,
            "code": code,
            "reason": reason,
            "context": context or {},
            "kbLink": {"lineTag": f"emu-{code.lower()}", "serCode": str(status)},
            "debug": {"msg": reason},
        },
        token=token,
        fault=fault,
    )


@dataclass(slots=True)
class _Token:
    journal_id: str
    client: AcronisClient
    issued: float
    expires: float


# ----------------------------------------------------------------------------- time values

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$"
)


def parse_time_ns(text: str) -> int:
    """RFC 3339 (any fraction), RFC 1123, RFC 850, ANSI C, Unix seconds, or Unix ns with `ns`."""
    text = text.strip()
    if re.fullmatch(r"\d+ns", text):
        return int(text[:-2])
    if re.fullmatch(r"\d+(\.\d+)?", text):
        whole, _, frac = text.partition(".")
        return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    m = _RFC3339.match(text)
    if m:
        year, month, day, hour, minute, sec = (int(x) for x in m.groups()[:6])
        nanos = int(((m.group(7) or "") + "000000000")[:9])
        tz = m.group(8)
        offset = (
            0
            if tz in ("Z", "z")
            else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
        )
        seconds = timegm((year, month, day, hour, minute, sec, 0, 0, 0)) - offset
        return seconds * 1_000_000_000 + nanos
    for fmt in (
        "%a, %d %b %Y %H:%M:%S %Z",
        "%A, %d-%b-%y %H:%M:%S %Z",
        "%a %b %d %H:%M:%S %Y",
        "%a, %d %b %Y %H:%M:%S GMT",
    ):
        try:
            parsed = datetime.strptime(" ".join(text.split()), fmt)
        except ValueError:
            continue
        return timegm(parsed.timetuple()) * 1_000_000_000
    raise ValueError(text)


def _like(pattern: str, value: str) -> bool:
    """SQL-like match, case-insensitive: % any run, _ one character; no % means "contains"."""
    if "%" not in pattern:
        return pattern.lower() in value.lower()
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


# ----------------------------------------------------------------------------- the platform


class Acronis:
    def __init__(
        self, scenario: Scenario, clock: SimClock, journal: Journal, revocations: tuple[Fault, ...]
    ) -> None:
        self._scenario = scenario
        self._clock = clock
        self._journal = journal
        self._revocations = tuple(f for f in revocations if f.platform in (None, PLATFORM))
        self._lock = threading.Lock()
        self._rng = random.Random(f"{scenario.seed}:acronis")
        self._clients = {c.id: c for c in scenario.acronis_clients}
        self._tasks: list[AcronisTask] = list(scenario.acronis_tasks)
        self._by_id = {t.id: t for t in self._tasks}
        self._tokens: dict[str, _Token] = {}
        self._secret = secrets.token_bytes(32)
        self.base_url = ""

    # ------------------------------------------------------------------ in-process API

    def ensure_activity(self) -> None:
        """Two started tasks that complete `ok` 1 and 2 real seconds from now."""
        with self._lock:
            if self._tasks:
                return
            now = self._clock.sim_elapsed()
            speed = self._clock.speed
            for i, name in enumerate(("nightly-backup", "hourly-backup"), start=1):
                task = AcronisTask(
                    id=(1 << 59) + self._rng.randrange(1 << 62),
                    uuid=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                    type="backup",
                    queue="backup",
                    priority="normal",
                    enqueued=now - speed,
                    assigned=now - speed,
                    started=now - speed,
                    completed=now + i * speed,
                    result_code="ok",
                    policy={
                        "id": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                        "name": name,
                        "type": "policy.protection.total",
                    },
                    resource={
                        "id": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                        "name": f"server-{i:02d}",
                        "type": "machine",
                    },
                    started_by="emulator",
                )
                self._tasks.append(task)
                self._by_id[task.id] = task

    # ------------------------------------------------------------------ routing

    def handle(self, req: Request) -> Response:
        path = req.path
        if path == "/api/2/idp/token":
            if req.method != "POST":
                return _error(405, "MethodNotAllowed", "use POST", domain="Auth")
            return self._token(req)
        base = next(
            (p for p in (TASKS_PATH, ACTIVITIES_PATH) if path == p or path.startswith(p + "/")),
            None,
        )
        if base is not None:
            token, refusal = self._authenticate(req)
            if refusal is not None:
                return refusal
            assert token is not None
            tid = token.journal_id
            if "task_manager" not in token.client.scopes:
                return _error(
                    403,
                    "Forbidden",
                    "the API client lacks the task_manager scope (viewer or admin)",
                    token=tid,
                )
            if req.method != "GET":
                return _error(405, "MethodNotAllowed", "the task manager is read-only", token=tid)
            activities = base == ACTIVITIES_PATH
            what = "activity" if activities else "task"
            if path == base:
                try:
                    return self._list(req, tid, activities=activities)
                except _BadRequest as exc:
                    return _error(400, "BadRequest", str(exc), token=tid)
            rest = unquote(path[len(base) + 1 :])
            if "/" in rest or not rest.isdigit():
                return _error(400, "BadRequest", f"{what} id {rest!r} is not a number", token=tid)
            wanted = int(rest) ^ ACTIVITY_ID_BIT if activities else int(rest)
            with self._lock:
                task = self._by_id.get(wanted)
            if task is None or not self._exists(task, self._clock.now_ns()):
                return _error(404, "NotFound", f"{what} {rest} not found", token=tid)
            item = self.item(task, self._clock.now_ns())
            return json_response(200, self.activity(item) if activities else item, token=tid)
        if path == POLICY_RUN_PATH:
            token, refusal = self._authenticate(req)
            if refusal is not None:
                return refusal
            assert token is not None
            if req.method != "PUT":
                return _error(
                    405,
                    "MethodNotAllowed",
                    "use PUT",
                    domain="PolicyManagement",
                    token=token.journal_id,
                )
            return self._run_policy(req, token.journal_id)
        return _error(404, "NotFound", f"no such endpoint: {req.method} {path}", domain="Gateway")

    # ------------------------------------------------------------------ starting a protection plan

    def _run_policy(self, req: Request, tid: str) -> Response:
        """PUT /api/policy_management/v4/applications/run [doc]: one new task per resource.

        Body: {"state": "running", "policy_id": ..., "context_ids": [...]} (context_ids optional).
        The new tasks copy type, queue, names, duration and result from the scenario's latest task
        of that policy (and resource), so a scenario says how its plan's runs go; otherwise a
        `backup` that ends `ok` after a simulated minute. Answers 204 [assumed: undocumented].
        """
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            body = None
        contexts = body.get("context_ids", []) if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or body.get("state") != "running"
            or not isinstance(body.get("policy_id"), str)
            or not body["policy_id"]
            or not isinstance(contexts, list)
            or not all(isinstance(c, str) and c for c in contexts)
        ):
            return _error(
                400,
                "BadRequest",
                'send {"state": "running", "policy_id": "...", "context_ids": ["..."]}',
                domain="PolicyManagement",
                token=tid,
            )
        policy_id = body["policy_id"]
        now = self._clock.sim_elapsed()
        with self._lock:
            known = [t for t in self._tasks if t.policy and t.policy.get("id") == policy_id]
            for context in contexts or [None]:
                like = [
                    t for t in known if context is None or (t.resource or {}).get("id") == context
                ]
                model = max(like or known, key=lambda t: t.enqueued, default=None)
                duration = POLICY_RUN_DURATION
                if model is not None and model.completed is not None and model.started is not None:
                    duration = max(1.0, model.completed - model.started)
                resource = dict(model.resource or {}) if model is not None and like else {}
                if context is not None:
                    resource["id"] = context
                task = AcronisTask(
                    id=(1 << 59) + self._rng.randrange(1 << 62),
                    uuid=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                    type=model.type if model else "backup",
                    queue=model.queue if model else "backup",
                    priority=model.priority if model else "normal",
                    enqueued=now,
                    assigned=now,
                    started=now,
                    completed=now + duration,
                    result_code=(model.result_code if model and model.result_code else "ok"),
                    result_error=model.result_error if model else None,
                    policy=dict(model.policy) if model and model.policy else {"id": policy_id},
                    resource=resource or None,
                    started_by="api",
                    tags=model.tags if model else (),
                )
                self._tasks.append(task)
                self._by_id[task.id] = task
        return Response(204, token=tid)

    # ------------------------------------------------------------------ token endpoint

    def _token(self, req: Request) -> Response:
        import jwt

        def reject(status: int, error: str, description: str) -> Response:
            return json_response(status, {"error": error, "error_description": description})

        content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return reject(400, "invalid_request", "send application/x-www-form-urlencoded")
        try:
            form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return reject(400, "invalid_request", "the body is not valid form data")
        if form.get("grant_type") != "client_credentials":
            return reject(400, "unsupported_grant_type", "grant_type must be client_credentials")
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return reject(401, "invalid_client", "Invalid client")
        try:
            client_id, _, secret = (
                base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return reject(401, "invalid_client", "Invalid client")
        client = self._clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret.encode(), secret.encode()):
            return reject(401, "invalid_client", "Invalid client")
        now = self._clock.now()
        expires = now + self._clock.real(self._scenario.acronis_token_lifetime)
        number = self._journal.record_token(PLATFORM)
        claims = {
            "iss": self.base_url or "http://emulator",
            "sub": client.id,
            "iat": int(now),
            "exp": int(expires),
            "jti": secrets.token_hex(8),
            "scope": [f"urn:acronis.com::{s}::admin" for s in client.scopes],
        }
        access = jwt.encode(claims, self._secret, algorithm="HS256", headers={"kid": "emulator"})
        id_token = jwt.encode({**claims, "aud": client.id}, self._secret, algorithm="HS256")
        with self._lock:
            self._tokens[access] = _Token(f"{PLATFORM}#{number}", client, now, expires)
        return json_response(
            200,
            {
                "access_token": access,
                "expires_on": int(expires),
                "id_token": id_token,
                "token_type": "bearer",
            },
            token=f"{PLATFORM}#{number}",
        )

    def _authenticate(self, req: Request) -> tuple[_Token | None, Response | None]:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, _error(401, "Unauthorized", "no bearer token", domain="Auth")
        with self._lock:
            token = self._tokens.get(value.strip())
        if token is None:
            return None, _error(401, "Unauthorized", "invalid access token", domain="Auth")
        now = self._clock.now()
        for fault in self._revocations:
            at = self._clock.at_ns(fault.at or 0.0) / 1e9
            if at <= now and token.issued < at:
                self._journal.record_fault(FaultRecord(now, fault.name, fault.kind, None, None))
                return None, _error(
                    401,
                    "Unauthorized",
                    "the access token has been revoked",
                    domain="Auth",
                    token=token.journal_id,
                    fault=fault.kind,
                )
        if now >= token.expires:
            return None, _error(
                401,
                "Unauthorized",
                "the access token has expired",
                domain="Auth",
                token=token.journal_id,
            )
        return token, None

    # ------------------------------------------------------------------ tasks

    def item(self, task: AcronisTask, now_ns: int) -> dict[str, Any]:
        at = self._clock.at_ns
        enqueued = at(task.enqueued)
        assigned = at(task.assigned) if task.assigned is not None else None
        started = at(task.started) if task.started is not None else None
        completed = at(task.completed) if task.completed is not None else None
        state, updated = "enqueued", enqueued
        if assigned is not None and now_ns >= assigned:
            state, updated = "assigned", assigned
        if started is not None and now_ns >= started:
            state, updated = "started", started
        if completed is not None and now_ns >= completed:
            state, updated = "completed", completed
        item: dict[str, Any] = {
            "cancelRequested": False,
            "cancellable": task.cancellable and state != "completed",
            "state": state,
            "context": dict(task.context),
            "enqueuedAt": rfc3339_ns(enqueued),
            "id": task.id,
            "idString": str(task.id),
            "issuer": {"clusterId": "", "id": ""},
            "priority": task.priority,
            "queue": task.queue,
            "assignCount": 1 if state != "enqueued" else 0,
            "tenant": dict(self._scenario.acronis_tenant),
            "type": task.type,
            "updatedAt": rfc3339_ns(updated),
            "uuid": task.uuid,
            "tags": list(task.tags),
            # Always present, like the fixture's (empty strings stay, as in its `issuer`).
            "startedByUser": task.started_by,
        }
        if assigned is not None and now_ns >= assigned:
            item["assignedAt"] = rfc3339_ns(assigned)
        if started is not None and now_ns >= started:
            item["startedAt"] = rfc3339_ns(started)
            if state == "started" and completed is not None:
                total = max(1, (completed - started) // 1_000_000_000)
                current = min(total, (now_ns - started) // 1_000_000_000)
                item["progress"] = {
                    "current": current,
                    "total": total,
                    "bytesProcessed": current * 1_048_576,
                    "leftTime": total - current,
                }
        if state == "completed":
            item["completedAt"] = rfc3339_ns(completed or updated)
            result: dict[str, Any] = {
                "code": task.result_code or "ok",
                "payload": task.result_payload or "",
            }
            if task.result_error is not None:
                result["error"] = dict(task.result_error)
            if task.warnings:
                result["warnings"] = list(task.warnings)
            item["result"] = result
        if task.policy is not None:
            item["policy"] = dict(task.policy)
        if task.resource is not None:
            item["resource"] = dict(task.resource)
        if task.workflow_id is not None:
            item["workflowId"] = task.workflow_id
        if task.executor is not None:
            item["executor"] = dict(task.executor)
        return item

    @staticmethod
    def activity(task_item: dict[str, Any]) -> dict[str, Any]:
        """The one activity of a task (the documented /activities endpoints; shape [assumed]).

        The public docs publish no activity sample: it mirrors its task (state, times, result,
        policy, resource) with its own 64-bit `id`/`idString`, plus `taskId`/`taskIdString` and
        `createdAt`, the fields third-party integrations read.
        """
        item = dict(task_item)
        activity_id = task_item["id"] ^ ACTIVITY_ID_BIT
        item.update(
            id=activity_id,
            idString=str(activity_id),
            taskId=task_item["id"],
            taskIdString=task_item["idString"],
            createdAt=task_item["enqueuedAt"],
            uuid=str(uuid.uuid5(uuid.NAMESPACE_OID, f"activity:{task_item['uuid']}")),
        )
        return item

    def _list(self, req: Request, tid: str, *, activities: bool = False) -> Response:
        params = req.params()
        names = {k for k, _ in params}
        limit = DEFAULT_LIMIT
        lod = "full"
        cursor_name = next((n for n in ("after", "before") if n in names), None)
        for name in names:
            if sum(1 for k, _ in params if k == name) > 1 and (
                name in PAGING or name in TIME_FIELDS or name in OTHER_PARAMS
            ):
                raise _BadRequest(f"{name} accepts one value")
        single = {k: v for k, v in params if k in PAGING}
        if "limit" in single:
            if not single["limit"].isdigit() or not 1 <= int(single["limit"]) <= MAX_LIMIT:
                raise _BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
            limit = int(single["limit"])
        if "lod" in single:
            if single["lod"] not in LODS:
                raise _BadRequest(f"lod must be one of {', '.join(LODS)}")
            lod = single["lod"]
        position: list[Any] | None = None  # the sort key the cursor points past (keyset paging)
        if cursor_name is not None:
            if "after" in names and "before" in names:
                raise _BadRequest("send either after or before, not both")
            extra = sorted(names - set(PAGING))
            if extra:
                raise _BadRequest(
                    "a cursor carries the original query: with after/before send only "
                    f"limit and lod (got {', '.join(extra)})"
                )
            try:
                decoded = json.loads(base64.b64decode(single[cursor_name], validate=True))
                query = [(str(k), str(v)) for k, v in decoded["q"]]
                position = list(decoded["k"])
                if len(position) != 3 or not all(type(x) is int for x in position):
                    raise ValueError("cursor key")
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise _BadRequest(f"{cursor_name} is not a valid cursor") from None
        else:
            query = [(k, v) for k, v in params if k not in PAGING]
        keyed = self._select(query, activities=activities, keyed=True)
        if lod == "count":
            return json_response(200, {"count": len(keyed)}, token=tid)
        # Keyset paging: a cursor holds the sort key of the item it follows or precedes, so a task
        # that leaves the result between two pages (it completed) shifts nothing and skips nobody.
        keys = [key for key, _ in keyed]
        descending = self._descending(query)
        if position is None:
            start = 0
        elif cursor_name == "after":
            start = next(
                (i for i, k in enumerate(keys) if _past(k, position, descending)), len(keys)
            )
        else:
            end = next(
                (i for i, k in enumerate(keys) if not _past(position, k, descending)), len(keys)
            )
            start = max(0, end - limit)
            limit = end - start
        page = keyed[start : start + limit]
        cursors: dict[str, str] = {}

        def cursor(key: list[Any]) -> str:
            return base64.b64encode(
                json.dumps({"q": query, "k": key}, separators=(",", ":")).encode()
            ).decode()

        if start + len(page) < len(keyed) and page:
            cursors["after"] = cursor(page[-1][0])
        if start > 0 and page:
            cursors["before"] = cursor(page[0][0])
        return json_response(
            200, {"items": [item for _, item in page], "paging": {"cursors": cursors}}, token=tid
        )

    @staticmethod
    def _descending(query: list[tuple[str, str]]) -> bool:
        return any(name == "order" and value.startswith("desc(") for name, value in query)

    def _select(
        self, query: list[tuple[str, str]], *, activities: bool = False, keyed: bool = False
    ) -> list[Any]:
        values: dict[str, list[str]] = {}
        times: list[tuple[str, str, int]] = []
        order_field, descending = "enqueuedAt", False
        for name, value in query:
            if name == "taskId" and not activities:
                raise _BadRequest("unknown query parameter 'taskId'")
            if name in VALUE_FILTERS:
                allowed = ENUMS.get(name)
                if allowed is not None and value not in allowed:
                    raise _BadRequest(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
                if value.startswith("like(") and value.endswith(")") and name not in LIKE_FIELDS:
                    raise _BadRequest(f"like(...) works only on {', '.join(LIKE_FIELDS)}")
                values.setdefault(name, []).append(value)
            elif name in TIME_FIELDS:
                m = re.fullmatch(r"(gt|lt|ge|le|eq)\((.*)\)", value)
                if not m:  # documented form only: a bare date silently meaning eq would hide typos
                    raise _BadRequest(
                        f"{name} must be an operator and a time, e.g. "
                        f"gt(2020-04-22T11:00:00Z) (gt, lt, ge, le, eq), not {value!r}"
                    )
                op, text = m.group(1), m.group(2)
                try:
                    times.append((name, op, parse_time_ns(text)))
                except ValueError:
                    raise _BadRequest(f"{name}: cannot read the time {text!r}") from None
            elif name == "order":
                m = re.fullmatch(r"(asc|desc)\((\w+)\)", value)
                if not m or (m.group(2) not in TIME_FIELDS and m.group(2) != "id"):
                    raise _BadRequest(
                        "order must be asc(field) or desc(field) with field id or a time field"
                    )
                order_field, descending = m.group(2), m.group(1) == "desc"
            elif name == "allow_deleted":
                continue
            else:
                raise _BadRequest(f"unknown query parameter {name!r}")
        now_ns = self._clock.now_ns()
        with self._lock:
            tasks = list(self._tasks)
        out: list[tuple[Any, dict[str, Any]]] = []
        for task in tasks:
            if not self._exists(task, now_ns):
                continue
            item = self.item(task, now_ns)
            if activities:
                item = self.activity(item)
            if not all(self._matches(name, wanted, item) for name, wanted in values.items()):
                continue
            if not all(self._time_ok(item, name, op, ns) for name, op, ns in times):
                continue
            if order_field == "id":
                key: Any = [0, 0, task.id]
            else:
                stamp = item.get(order_field)
                key = [0, parse_time_ns(stamp), task.id] if stamp else [1, 0, task.id]
            out.append((key, item))
        out.sort(key=lambda pair: pair[0], reverse=descending)
        return out if keyed else [item for _, item in out]

    def _exists(self, task: AcronisTask, now_ns: int) -> bool:
        """A task enqueued later in the scenario's timeline does not exist yet: the platform
        cannot list a task before it is created (a late backup is how an empty wait happens)."""
        return self._clock.at_ns(task.enqueued) <= now_ns

    @staticmethod
    def _matches(name: str, wanted: list[str], item: dict[str, Any]) -> bool:
        have = VALUE_FILTERS[name](item)
        for value in wanted:
            if value.startswith("like(") and value.endswith(")"):
                if any(_like(value[5:-1], h) for h in have):
                    return True
            elif value in have:
                return True
        return False

    @staticmethod
    def _time_ok(item: dict[str, Any], name: str, op: str, ns: int) -> bool:
        stamp = item.get(TIME_FIELDS[name])
        if not stamp:
            return False
        t = parse_time_ns(stamp)
        return {"gt": t > ns, "lt": t < ns, "ge": t >= ns, "le": t <= ns, "eq": t == ns}[op]
