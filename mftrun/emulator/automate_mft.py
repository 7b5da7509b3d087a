"""The emulated Progress Automate MFT API (paths under /v1/).

Strict where the platform is strict: the client assertion is checked claim by
claim (RFC 7523, in `mft_assertion`), expired tokens answer 403 as the vendor sample expects,
and the undocumented paths (listing, cancelling) answer 404. A run's status is
computed from its timestamps when asked, so 10,000 runs in flight cost memory
only, no timers or threads.
"""

from __future__ import annotations

import ipaddress
import json
import random
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from mftrun.emulator.journal import FaultRecord, Journal, RunRecord
from mftrun.emulator.mft_assertion import LEEWAY, check_token_request, oauth_error
from mftrun.emulator.scenario import Scenario
from mftrun.emulator.scenario_data import Attempt, Fault, MftKey, MftTask
from mftrun.emulator.wire import Request, Response, SimClock, json_response, rfc3339_ms

PLATFORM = "automate-mft"
DEFAULT_ATTEMPT = Attempt("success", queue=0.2, duration=1.0)  # real seconds; scaled on use


@dataclass(slots=True)
class _Token:
    journal_id: str
    tenant_id: str
    key: MftKey
    issued: float  # Unix seconds
    expires: float


@dataclass(slots=True)
class _Run:
    id: str
    task: MftTask
    attempt_no: int
    attempt: Attempt
    parameters: dict[str, Any]
    created: float  # Unix seconds
    queue: float  # real seconds
    duration: float  # real seconds

    def view(self, now: float) -> tuple[str, float | None, float | None]:
        """(status, start time, end time) at `now`."""
        start = self.created + self.queue
        if now < start:
            return "queued", None, None
        end = start + self.duration
        if self.attempt.outcome == "stuck" or now < end:
            return "running", start, None
        return self.attempt.outcome, start, end


def _api_error(status: int, error: str, message: str, **kw: Any) -> Response:
    return json_response(status, {"error": error, "message": message}, **kw)


class AutomateMft:
    def __init__(
        self, scenario: Scenario, clock: SimClock, journal: Journal, revocations: tuple[Fault, ...]
    ) -> None:
        from cryptography.hazmat.primitives import serialization

        self._clock = clock
        self._journal = journal
        self._scenario = scenario
        self._revocations = tuple(f for f in revocations if f.platform in (None, PLATFORM))
        self._revocations_seen: set[str] = set()
        self._lock = threading.Lock()
        self._rng = random.Random(f"{scenario.seed}:mft")
        self._keys: dict[str, tuple[str, MftKey, Any]] = {}
        for tenant in scenario.mft_tenants:
            for key in tenant.keys:
                public = serialization.load_pem_public_key(key.public_key_pem.encode())
                self._keys[key.id] = (tenant.id, key, public)
        self._tasks_by_id: dict[str, MftTask] = {}
        self._tasks_by_name: dict[str, MftTask] = {}
        self._real_tasks: set[str] = set()  # tasks whose durations are real seconds (ensure_task)
        for task in scenario.mft_tasks:
            self._add(task)
        self._tokens: dict[str, _Token] = {}
        self._jtis: dict[
            str, float
        ] = {}  # jti -> exp, pruned once expired (replays then fail on exp)
        self._runs: dict[str, _Run] = {}
        self._attempts: dict[str, int] = {}
        self._executions = 0

    # ------------------------------------------------------------------ in-process API

    def _add(self, task: MftTask) -> None:
        self._tasks_by_id[task.id] = task
        if task.name is not None:
            self._tasks_by_name[task.name] = task

    def ensure_task(self, task_id: str | None, name: str | None) -> None:
        if task_id is None and name is None:
            raise ValueError("ensure_mft_task needs a task id or a name")
        with self._lock:
            if (task_id is not None and task_id in self._tasks_by_id) or (
                name is not None and name in self._tasks_by_name
            ):
                return
            task = MftTask(
                task_id or str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                name,
                (DEFAULT_ATTEMPT,),
            )
            self._real_tasks.add(task.id)
            self._add(task)

    def run_records(self) -> list[RunRecord]:
        now = self._clock.now()
        with self._lock:
            runs = list(self._runs.values())
        out = []
        for run in runs:
            status, _, end = run.view(now)
            out.append(
                RunRecord(
                    run.id,
                    run.task.id,
                    run.task.name,
                    dict(run.parameters),
                    status,
                    run.attempt_no,
                    run.created,
                    end,
                )
            )
        return out

    # ------------------------------------------------------------------ routing

    def handle(self, req: Request) -> Response:
        path = req.path
        if path == "/v1/oauth/token":
            if req.method != "POST":
                return _api_error(405, "method_not_allowed", "use POST")
            return self._token(req)
        token, refusal = self._authenticate(req)
        if refusal is not None:
            return refusal
        tid = token.journal_id if token else None
        parts = path.split("/")  # ['', 'v1', ...]
        if path == "/v1/licenses/current":
            if req.method != "GET":
                return _api_error(405, "method_not_allowed", "use GET", token=tid)
            return self._license(tid)
        if path == "/v1/tasks/start":
            if req.method != "POST":
                return _api_error(405, "method_not_allowed", "use POST", token=tid)
            names = [v for k, v in req.params() if k == "name"]
            if len(names) != 1 or not names[0]:
                return _api_error(
                    400, "bad_request", "give the task name once: ?name=...", token=tid
                )
            with self._lock:
                task = self._tasks_by_name.get(names[0])
            if task is None:
                return _api_error(404, "not_found", f"no task named {names[0]!r}", token=tid)
            return self._start(task, req, tid)
        if len(parts) == 5 and parts[2] == "tasks" and parts[4] == "start" and parts[3]:
            if req.method != "POST":
                return _api_error(405, "method_not_allowed", "use POST", token=tid)
            task_id = unquote(parts[3])
            with self._lock:
                task = self._tasks_by_id.get(task_id)
            if task is None:
                return _api_error(404, "not_found", f"no task with id {task_id!r}", token=tid)
            return self._start(task, req, tid)
        if len(parts) == 4 and parts[2] == "task-runs" and parts[3]:
            if req.method != "GET":  # e.g. DELETE = cancel: not in the public API
                return _api_error(404, "not_found", "not found", token=tid)
            return self._run(unquote(parts[3]), tid)
        # Listing tasks or runs, cancelling: not in the public API.
        return _api_error(404, "not_found", f"no such endpoint: {req.method} {path}", token=tid)

    # ------------------------------------------------------------------ token endpoint

    def _token(self, req: Request) -> Response:
        checked = check_token_request(req, self._keys, self._clock.now)
        if isinstance(checked, Response):
            return checked
        tenant_id, key, now, jti = checked.tenant_id, checked.key, checked.now, checked.jti
        with self._lock:
            if jti in self._jtis:
                return oauth_error(
                    401, "invalid_client", "jti has already been used (replayed assertion)"
                )
            if len(self._jtis) > 10_000:
                self._jtis = {j: e for j, e in self._jtis.items() if e > now - LEEWAY}
            self._jtis[jti] = checked.exp
            number = self._journal.record_token(PLATFORM)
            lifetime = self._clock.real(self._scenario.mft_token_lifetime)
            access = secrets.token_urlsafe(32)
            self._tokens[access] = _Token(
                f"{PLATFORM}#{number}", tenant_id, key, now, now + lifetime
            )
        return json_response(
            200,
            {"access_token": access, "token_type": "bearer", "expires_in": max(1, int(lifetime))},
            token=f"{PLATFORM}#{number}",
        )

    def _authenticate(self, req: Request) -> tuple[_Token | None, Response | None]:
        header = req.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if not header:
            return None, _api_error(
                401, "unauthorized", "no access token; send Authorization: bearer <token>"
            )
        if scheme.lower() != "bearer" or not value.strip():
            return None, _api_error(401, "unauthorized", "malformed Authorization header")
        with self._lock:
            token = self._tokens.get(value.strip())
        if token is None:
            return None, _api_error(401, "unauthorized", "unknown access token")
        now = self._clock.now()
        for fault in self._revocations:
            at = self._clock.at_ns(fault.at or 0.0) / 1e9
            if at <= now and token.issued < at:
                self._journal.record_fault(FaultRecord(now, fault.name, fault.kind, None, None))
                return None, _api_error(
                    401,
                    "unauthorized",
                    "the access token has been revoked",
                    token=token.journal_id,
                    fault=fault.kind,
                )
        if now >= token.expires:
            return None, _api_error(
                403, "forbidden", "the access token has expired", token=token.journal_id
            )
        if token.key.allow_ips:
            try:
                ip = ipaddress.ip_address(req.client_ip)
                allowed = any(ip in ipaddress.ip_network(c) for c in token.key.allow_ips)
            except ValueError:
                allowed = False
            if not allowed:
                return None, _api_error(
                    403,
                    "forbidden",
                    f"caller {req.client_ip} is not in the API key's IP allow-list",
                    token=token.journal_id,
                )
        return token, None

    # ------------------------------------------------------------------ API

    def _license(self, tid: str | None) -> Response:
        lic = self._scenario.license
        with self._lock:
            used = self._executions
        return json_response(
            200,
            {
                "planTier": lic.plan,
                "startDate": lic.start,
                "endDate": lic.end,
                "taskExecutions": {"used": used, "limit": lic.task_executions_limit},
            },
            token=tid,
        )

    def _start(self, task: MftTask, req: Request, tid: str | None) -> Response:
        parameters: dict[str, Any] = {}
        if req.body.strip():
            try:
                parsed = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return _api_error(
                    400,
                    "bad_request",
                    "the body must be a JSON object of task parameters",
                    token=tid,
                )
            if not isinstance(parsed, dict):
                return _api_error(
                    400,
                    "bad_request",
                    "the body must be a JSON object of task parameters",
                    token=tid,
                )
            parameters = parsed
        now = self._clock.now()
        with self._lock:
            attempt_no = self._attempts.get(task.id, 0) + 1
            self._attempts[task.id] = attempt_no
            attempt = task.attempts[min(attempt_no, len(task.attempts)) - 1]
            real = task.id in self._real_tasks
            run = _Run(
                id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                task=task,
                attempt_no=attempt_no,
                attempt=attempt,
                parameters=parameters,
                created=now,
                queue=attempt.queue if real else self._clock.real(attempt.queue),
                duration=attempt.duration if real else self._clock.real(attempt.duration),
            )
            self._runs[run.id] = run
            self._executions += 1
            self._journal.record_start(task.id, task.name)
        return json_response(
            200, {"id": run.id, "taskId": task.id, "status": {"taskRunStatus": "queued"}}, token=tid
        )

    def _run(self, run_id: str, tid: str | None) -> Response:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return _api_error(404, "not_found", f"no task run with id {run_id!r}", token=tid)
        return json_response(200, self.run_view(run, self._clock.now()), token=tid)

    @staticmethod
    def run_view(run: _Run, now: float) -> dict[str, Any]:
        status, start, end = run.view(now)
        body: dict[str, Any] = {
            "id": run.id,
            "taskId": run.task.id,
            "taskName": run.task.name,
            "status": {"taskRunStatus": status},
            "agent": run.task.agent,
            "parameters": run.parameters,
            "queuedTime": rfc3339_ms(run.created),
            "startTime": rfc3339_ms(start) if start is not None else None,
            "endTime": rfc3339_ms(end) if end is not None else None,
        }
        if status == "failed":
            body["status"]["message"] = run.attempt.message or "the emulated task failed"
        elif run.attempt.message and end is not None:
            body["status"]["message"] = run.attempt.message
        if end is not None:
            files = dict(run.attempt.files) or (
                {"transferred": 3, "failed": 0, "skipped": 0, "bytes": 3072}
                if status == "success"
                else {"transferred": 0, "failed": 1, "skipped": 0, "bytes": 0}
            )
            body["fileStatistics"] = files
        return body
