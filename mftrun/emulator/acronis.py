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
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from mftrun.emulator.acronis_items import ACTIVITY_ID_BIT, activity, task_item
from mftrun.emulator.acronis_query import BadQuery, page, read_filters, read_listing
from mftrun.emulator.journal import FaultRecord, Journal
from mftrun.emulator.scenario import Scenario
from mftrun.emulator.scenario_data import AcronisClient, AcronisTask, Fault
from mftrun.emulator.wire import Request, Response, SimClock, json_response

PLATFORM = "acronis"
TASKS_PATH = "/api/task_manager/v2/tasks"
ACTIVITIES_PATH = "/api/task_manager/v2/activities"
POLICY_RUN_PATH = "/api/policy_management/v4/applications/run"
POLICY_RUN_DURATION = (
    60.0  # simulated seconds a plan run takes when no scenario task says otherwise
)


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
                except BadQuery as exc:
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
        return task_item(task, now_ns, self._clock.at_ns, self._scenario.acronis_tenant)

    activity = staticmethod(activity)

    def _list(self, req: Request, tid: str, *, activities: bool = False) -> Response:
        listing = read_listing(req.params())
        keyed = self._select(listing.query, activities=activities)
        if listing.lod == "count":
            return json_response(200, {"count": len(keyed)}, token=tid)
        return json_response(200, page(keyed, listing), token=tid)

    def _select(
        self, query: list[tuple[str, str]], *, activities: bool = False
    ) -> list[tuple[list[Any], dict[str, Any]]]:
        """The existing tasks (or their activities) the query accepts, keyed and ordered."""
        filters = read_filters(query, activities=activities)
        now_ns = self._clock.now_ns()
        with self._lock:
            tasks = list(self._tasks)
        out: list[tuple[list[Any], dict[str, Any]]] = []
        for task in tasks:
            if not self._exists(task, now_ns):
                continue
            item = self.item(task, now_ns)
            if activities:
                item = self.activity(item)
            if filters.accepts(item):
                out.append((filters.key(item, task.id), item))
        out.sort(key=lambda pair: pair[0], reverse=filters.descending)
        return out

    def _exists(self, task: AcronisTask, now_ns: int) -> bool:
        """A task enqueued later in the scenario's timeline does not exist yet: the platform
        cannot list a task before it is created (a late backup is how an empty wait happens)."""
        return self._clock.at_ns(task.enqueued) <= now_ns
