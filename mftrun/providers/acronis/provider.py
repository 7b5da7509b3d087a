"""Acronis Cyber Protect Cloud task manager v2: `wait_tasks` and `check`.

`wait_tasks` waits until no task matches the user's filters (e.g. no backup
is `started` or `paused` any more), then looks up every task it saw and fails
if any ended with a result code the step does not accept, naming those tasks.
Each start/poll walks every page (cursor in `paging.cursors.after`), because a
task seen on page 3 today must still be checked when it finishes tomorrow.

Task objects (exact 64-bit ids, nanosecond timestamps, result codes) are read by
`tasks.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mftrun.actions.wait_tasks import WaitTasksSpec
from mftrun.errors import AuthError, RemoteError
from mftrun.inert import inert
from mftrun.http.auth import CredentialSource
from mftrun.providers.acronis.policies import ACRONIS_POLICIES
from mftrun.providers.acronis import tasks as task_objects
from mftrun.providers.acronis.token import AcronisTokenSource
from mftrun.http.retry import Policies, RetryLater, RetryPolicy
from mftrun.http.session import HttpTransport
from mftrun.providers.base import Observation, StepContext
from mftrun.providers.session import Calls, SessionProvider

TASKS = "/api/task_manager/v2/tasks"
MAX_PAGES = 10_000


@dataclass(slots=True)
class TaskWait:
    params: list[tuple[str, str]]
    accept: frozenset[str]
    limit: int
    lod: str | None
    min_count: int = 0  # the wait may not pass before this many matching tasks were seen
    settle: float = 0.0  # seconds from `began` during which "nothing matches" is not final
    began: float = 0.0  # the provider clock's monotonic time of the first listing
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> latest task object
    final: dict[str, dict[str, Any] | None] = field(
        default_factory=dict
    )  # key -> completed task / None: gone
    calls: Calls = field(default_factory=Calls)
    poll_failures: int = 0

    @classmethod
    def of(cls, spec: WaitTasksSpec) -> TaskWait:
        return cls(
            params=list(spec.filters),
            accept=frozenset(spec.accept_results),
            limit=spec.limit,
            lod=spec.lod,
            min_count=spec.min_count,
            settle=spec.settle,
        )


class AcronisProvider(SessionProvider):
    name = "acronis"
    # An expired token answers 401; 403 is a missing scope. Both get one renewal and one replay
    # (the contract's "renewed once on 401/403"): a role granted after the token was issued only
    # shows in a new token. A second 403 is reported as the missing task_manager scope.
    renew_on = frozenset({401, 403})
    token_renew_margin = 15 * 60.0  # the vendor's examples renew 15 minutes before expiry
    auth_scheme = "Bearer"  # as the vendor's authentication pages write it

    @staticmethod
    def default_policies() -> Policies:
        return ACRONIS_POLICIES

    def token_source(self, transport: HttpTransport, creds: CredentialSource) -> AcronisTokenSource:
        return AcronisTokenSource(
            transport,
            creds,
            clock=self.clock,
            redactor=self.redactor,
            policy=self.policies.read,
            env_name=self.env.name,
        )

    def denied(self, status: int, call: str, response: Any) -> AuthError:
        if status == 401:
            return AuthError(
                f"environment {self.env.name!r}: credentials rejected: {call} answered "
                f"401 even with a fresh token ({self.snippet(response)})",
                hint="check client_id / client_secret and that base_url is the data "
                "centre that issued them",
            )
        return AuthError(
            f"environment {self.env.name!r}: permission denied: {call} answered 403 "
            f"({self.snippet(response)})",
            hint="the API client needs the task_manager viewer or admin role",
        )

    def check(self) -> str:
        call = f"GET {TASKS}?limit=1"
        response = self.request("GET", TASKS, policy=self.policies.read, params=[("limit", "1")])
        if response.status_code != 200:
            raise self.error(response, call, f"environment {self.env.name!r}: task query failed")
        body = self.json_of(response, call)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise RemoteError(
                f"{call}: the answer has no 'items' list",
                status=200,
                hint="is base_url the data-centre URL, e.g. https://eu2-cloud.acronis.com?",
            )
        return "authenticated; task manager answered a one-item task query"

    # -- wait_tasks ----------------------------------------------------------------------------

    def start_action(self, kind: str, spec: Any, ctx: StepContext) -> tuple[Any, Observation]:
        if not isinstance(spec, WaitTasksSpec):
            return super().start_action(kind, spec, ctx)
        wait = TaskWait.of(spec)
        wait.began = self.clock.monotonic()
        return wait, self._step(wait, self.policies.read)

    def poll_action(self, handle: Any, ctx: StepContext) -> Observation:
        try:
            return self._step(handle, self.policies.poll)
        except RetryLater as later:
            return Observation(
                state="running",
                remote_status=f"{len(handle.seen)} task(s) seen",
                retry_after=later.seconds,
            )

    def _step(self, wait: TaskWait, policy: RetryPolicy) -> Observation:
        matching = self._walk(wait, policy)
        for task in matching:
            key = task_objects.task_key(task)
            if key is not None:
                wait.seen[key] = task
                wait.final.pop(key, None)  # matching again: not finished after all
        if matching:
            return Observation(
                state="running",
                remote_status=f"{len(matching)} task(s) matching",
                outputs=self._outputs(wait),
            )
        pending = []
        for key in wait.seen:
            if key in wait.final:
                continue
            looked = self._lookup(wait, key, policy)
            if looked is None or looked.get("state") == "completed":
                wait.final[key] = looked
                if looked is not None:
                    wait.seen[key] = looked
            else:
                wait.seen[key] = looked
                pending.append(f"{key} ({looked.get('state')})")
        outputs = self._outputs(wait)
        if pending:
            return Observation(
                state="running",
                remote_status=f"waiting for {len(pending)} task(s) "
                f"to complete: {inert(', '.join(pending[:3]))}",
                outputs=outputs,
            )
        bad = [
            (key, task)
            for key, task in wait.final.items()
            if task is None or task_objects.result_code(task) not in wait.accept
        ]
        if bad:
            accepted = ", ".join(sorted(wait.accept))
            names = "; ".join(
                task_objects.describe(key, task) for key, task in task_objects.by_completion(bad)
            )
            message = (
                f"{len(bad)} of {len(wait.final)} task(s) did not end with an accepted result "
                f"({accepted}): {names}"
            )
            return Observation(
                state="failed",
                remote_status="completed",
                outputs=outputs,
                message=self.redactor.scrub(message)[:4000],
            )
        held = self._held(wait)  # a completed task's failure is final at once; a pass waits
        if held is not None:
            return Observation(state="running", remote_status=held, outputs=outputs)
        if not wait.final:
            return Observation(
                state="success",
                remote_status="0 task(s) completed",
                outputs=outputs,
                message="no task matched the filters, so there was nothing to wait for "
                "(min_count: 1 makes at least one task required, settle: gives late tasks time)",
            )
        warned = [
            (key, task)
            for key, task in wait.final.items()
            if task is not None and task_objects.result_code(task) == "warning"
        ]
        return Observation(
            state="success",
            remote_status=f"{len(wait.final)} task(s) completed",
            outputs=outputs,
            warnings=tuple(
                self.redactor.scrub(task_objects.warned(key, task))[:1000]
                for key, task in task_objects.by_completion(warned)
            ),
        )

    def _held(self, wait: TaskWait) -> str | None:
        """Why a wait with nothing left running may not conclude yet (min_count, settle)."""
        seen = len(wait.seen)
        if seen < wait.min_count:
            return f"{seen} task(s) seen, waiting for at least {wait.min_count} (min_count)"
        left = wait.began + wait.settle - self.clock.monotonic()
        if left > 0:
            return f"{seen} task(s) seen; settling for {left:.0f}s more before concluding"
        return None

    def _walk(self, wait: TaskWait, policy: RetryPolicy) -> list[dict[str, Any]]:
        """Every matching task, following `paging.cursors.after` to the last page."""
        items: list[dict[str, Any]] = []
        params: list[tuple[str, str]] = [*wait.params, ("limit", str(wait.limit))]
        if wait.lod:
            params.append(("lod", wait.lod))
        cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            call = f"GET {TASKS}"
            response = self.request("GET", TASKS, policy=policy, calls=wait.calls, params=params)
            if response.status_code == 400:
                raise RemoteError(
                    f"the task query was refused: {call} answered 400: {self.snippet(response)}",
                    status=400,
                    hint="check the wait_tasks filter names and values",
                )
            if response.status_code != 200:
                raise self.error(response, call, "cannot list tasks")
            body = self.json_of(response, call)
            page = body.get("items") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise RemoteError(f"{call}: the answer has no 'items' list", status=200)
            items.extend(t for t in page if isinstance(t, dict))
            after = _after_cursor(body)
            if not after or after in cursors or not page:
                return items
            cursors.add(after)
            # A cursor encodes the original query: follow-ups send only limit, after and lod.
            params = [("limit", str(wait.limit)), ("after", after)]
            if wait.lod:
                params.append(("lod", wait.lod))
        raise RemoteError(
            f"GET {TASKS}: more than {MAX_PAGES} pages; narrow the wait_tasks filters"
        )

    def _lookup(self, wait: TaskWait, key: str, policy: RetryPolicy) -> dict[str, Any] | None:
        call = f"GET {TASKS}/{key}"
        response = self.request(
            "GET", f"{TASKS}/{quote(key, safe='')}", policy=policy, calls=wait.calls
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.error(response, call, f"cannot read task {key}")
        body = self.json_of(response, call)
        if isinstance(body, dict) and isinstance(body.get("items"), list) and body["items"]:
            body = body["items"][0]
        if not isinstance(body, dict):
            raise RemoteError(f"{call}: the answer is not a task object", status=200)
        return body

    def _outputs(self, wait: TaskWait) -> dict[str, Any]:
        tasks = [task_objects.summary(key, task) for key, task in wait.seen.items()]
        return self.redactor.scrub_data(
            {
                "tasks": tasks,
                "result_codes": {
                    t["id"]: t["result_code"] for t in tasks if t["result_code"] is not None
                },
                "count": len(tasks),
            }
        )


def _after_cursor(body: Any) -> str | None:
    paging = body.get("paging") if isinstance(body, dict) else None
    cursors = paging.get("cursors") if isinstance(paging, dict) else None
    if not isinstance(cursors, dict) and isinstance(body, dict):
        cursors = body.get("cursors")  # the OpenAPI document's placement
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return after if isinstance(after, str) and after else None
