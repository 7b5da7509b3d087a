"""Progress Automate MFT: `start_task` (start by id or name, then watch the run) and `check`.

The public API has no way to list or cancel runs, so a start is the one call
that must never be replayed blindly: after a read timeout or a dropped
connection mftrun cannot find out whether the run exists, and says so
(AmbiguousStartError) instead of risking a second transfer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from mftrun.inert import inert
from mftrun.actions.start_task import StartTaskSpec
from mftrun.errors import (
    AmbiguousStartError,
    AuthError,
    InputError,
    NotFoundOnPlatform,
    RemoteError,
)
from mftrun.http.auth import CredentialSource
from mftrun.providers.automate_mft.token import MFT_KEY_HINT, MftTokenSource
from mftrun.http.retry import RetryLater
from mftrun.http.session import HttpTransport, NoResponseError
from mftrun.providers.base import Observation, StepContext
from mftrun.providers.session import Calls, SessionProvider

TOKEN_BODY_VAR = "MFTRUN_MFT_TOKEN_BODY"  # "form" to send the token request form-encoded
# The vendor lists run states "such as queued, running, success, or failed": not a closed list.
KNOWN_RUNNING = frozenset({"queued", "running", "started", "pending", "re-attached"})
# Words a run's status takes once it is over: an unknown one of these never changes, so
# polling on until the step timeout would only hide it (issue 11 section 2).
FINAL_LOOKING = frozenset(
    {
        "completed", "complete", "done", "finished", "succeeded", "successful", "ok",
        "error", "errored", "failure", "aborted", "cancelled", "canceled", "stopped",
        "terminated", "killed", "timeout", "timedout", "timed_out", "expired", "rejected",
        "skipped", "partial", "warning", "warnings",
    }
)  # fmt: skip
DEFAULT_SUCCESS = ("success",)
DEFAULT_FAILURE = ("failed",)
ALLOW_LIST_HINT = (
    "the API key may lack access to this task, or this machine's IP address is "
    "outside the key's IP allow-list (Automate MFT > API keys)"
)


@dataclass(slots=True)
class MftRun:
    label: str  # "task <id>" or "task named '<name>'", for messages
    ident: dict[str, str]  # {"task_id": ...} or {"name": ...}, copied into outputs
    success: frozenset[str]
    failure: frozenset[str]
    run_id: str | None = None
    status: str | None = None
    calls: Calls = field(default_factory=Calls)
    poll_failures: int = 0


class AutomateMftProvider(SessionProvider):
    name = "automate-mft"
    renew_on = frozenset({401, 403})  # the platform answers 403 for an expired token

    def token_source(self, transport: HttpTransport, creds: CredentialSource) -> MftTokenSource:
        return MftTokenSource(
            transport,
            creds,
            clock=self.clock,
            redactor=self.redactor,
            policy=self.policies.read,
            env_name=self.env.name,
            form_body=self.env.token_body == "form"
            or self.environ.get(TOKEN_BODY_VAR, "").lower() == "form",
        )

    def denied(self, status: int, call: str, response: Any) -> AuthError:
        if status == 401:
            return AuthError(
                f"environment {self.env.name!r}: credentials rejected: {call} answered "
                f"401 even with a fresh token ({self.snippet(response)})",
                hint=MFT_KEY_HINT,
            )
        return AuthError(
            f"environment {self.env.name!r}: permission denied: {call} answered 403 even "
            f"with a fresh token ({self.snippet(response)})",
            hint=ALLOW_LIST_HINT,
        )

    def check(self) -> str:
        call = "GET /v1/licenses/current"
        response = self.request("GET", "/v1/licenses/current", policy=self.policies.read)
        if response.status_code != 200:
            raise self.error(response, call, f"environment {self.env.name!r}: license check failed")
        body = self.json_of(response, call)
        return "authenticated; license " + _describe_license(body)

    # -- start_task ----------------------------------------------------------------------------

    def start_action(self, kind: str, spec: Any, ctx: StepContext) -> tuple[Any, Observation]:
        if not isinstance(spec, StartTaskSpec):
            return super().start_action(kind, spec, ctx)
        run = _run_from_spec(spec)
        parameters = spec.parameters
        if "task_id" in run.ident:
            path, params = f"/v1/tasks/{quote(run.ident['task_id'], safe='')}/start", None
        else:
            # Percent-encoded (a space is %20, not '+'): the documented URL is
            # /v1/tasks/start?name={task_name}, and a server reading it as RFC 3986 would take a
            # '+' literally and not find "Pull+partner+orders".
            path, params = f"/v1/tasks/start?name={quote(run.ident['name'], safe='')}", None
        call = f"POST {path}"
        try:
            response = self.request(
                "POST",
                path,
                policy=self.policies.start,
                calls=run.calls,
                params=params,
                json=dict(parameters),
            )
        except NoResponseError as exc:
            raise AmbiguousStartError(
                f"starting {run.label}: {exc.message}. "
                "The start request was sent but its answer was "
                f"lost, so the task may have started; mftrun did not send it again",
                hint="look for a new run of this task in Automate MFT before re-running the step",
                target=run.label,
            ) from None
        if response.status_code == 404:
            raise self._not_found(run, call, response)
        if response.status_code == 429:
            raise self.error(response, call, f"{run.label} was not started (rate limited)")
        if not 200 <= response.status_code < 300:
            error = self.error(response, call, f"starting {run.label} failed")
            if response.status_code >= 500:  # not retried: a gateway error may hide a started run
                error.hint = (
                    "a 5xx answer to a start does not prove the task did not start; check "
                    "its runs in Automate MFT before re-running the step"
                )
            raise error
        body, run_id = _run_id_of(response)
        if run_id is None:
            # Any 2xx to a start may mean the run exists: it is an ambiguous start, never a
            # plain error and never re-sent (issue 15 item 14), whatever the body looks like.
            raise AmbiguousStartError(
                f"starting {run.label}: {call} answered {response.status_code} but the task "
                f"run id cannot be read from the answer ({_unreadable(response, body)}: "
                f"{self.snippet(response)}); the task may have started, so mftrun did not "
                "send the start again",
                hint="look for a new run of this task in Automate MFT before re-running the "
                "step (if a proxy or login page answered, it did not start)",
                target=run.label,
            ) from None
        run.run_id = run_id
        status = _status_of(body)
        if status is None:
            run.status = "started"
            return run, Observation(
                state="running",
                remote_status="started",
                run_id=run.run_id,
                outputs=self._outputs(run, body),
            )
        return run, self._observe(run, body)

    def _not_found(self, run: MftRun, call: str, response: Any) -> NotFoundOnPlatform:
        """A 404 to a start: the task does not exist for this key's tenant. Nothing started;
        the file (or the key) is wrong, so it is said as such, not as an outage."""
        tenant = self.creds.get("tenant_id", secret=False)
        if "task_id" in run.ident:
            hint = (
                "check the task id in Automate MFT (the task's page shows it) and that the "
                "environment's API key belongs to the tenant owning the task; to start it by "
                "name, write start_task: {name: ...}"
            )
        else:
            hint = (
                "check the task name, exactly as Automate MFT shows it, and that the "
                "environment's API key belongs to the tenant owning the task"
            )
        return NotFoundOnPlatform(
            f"{run.label} not found on {self.env.name} (tenant {inert(tenant)}): {call} "
            f"answered 404 ({self.snippet(response)}); nothing was started",
            hint=hint,
        )

    def ref(self, handle: Any) -> dict[str, str]:
        if isinstance(handle, MftRun) and handle.run_id:
            return {"run_id": handle.run_id, **handle.ident}
        return {}

    def attach(self, kind: str, spec: Any, ref: Mapping[str, str], ctx: StepContext) -> Any:
        """Resume: poll the task run an earlier mftrun process started; nothing is sent but GETs."""
        if not isinstance(spec, StartTaskSpec) or not ref.get("run_id"):
            return super().attach(kind, spec, ref, ctx)
        run = _run_from_spec(spec)
        run.run_id = str(ref["run_id"])
        run.status = "re-attached"
        return run

    def poll_action(self, handle: Any, ctx: StepContext) -> Observation:
        run: MftRun = handle
        call = f"GET /v1/task-runs/{run.run_id}"
        try:
            response = self.request(
                "GET",
                f"/v1/task-runs/{quote(str(run.run_id), safe='')}",
                policy=self.policies.poll,
                calls=run.calls,
            )
        except RetryLater as later:
            return Observation(
                state="running",
                remote_status=run.status,
                run_id=run.run_id,
                retry_after=later.seconds,
            )
        if response.status_code == 404:
            raise RemoteError(
                f"task run {run.run_id} of {run.label} not found: {call} answered 404",
                status=404,
                hint="the run may have been removed on the platform",
            )
        if response.status_code != 200:
            raise self.error(response, call, f"cannot read the run of {run.label}")
        return self._observe(run, self.json_of(response, call))

    def _observe(self, run: MftRun, body: Any) -> Observation:
        status = _status_of(body)
        run.status = status if status is not None else run.status
        outputs = self._outputs(run, body)
        shown = status if status is not None else "unknown"
        if status is not None and status.casefold() in run.success:
            return Observation(
                state="success", remote_status=status, run_id=run.run_id, outputs=outputs
            )
        if status is not None and status.casefold() in run.failure:
            # Scrub, then shorten: cutting first could leave half a secret that no longer matches.
            detail = inert(self.redactor.scrub(_failure_detail(body)))[:500]
            # The status, the run id and the detail are the platform's words: one inert line.
            message = f"{run.label} run {inert(run.run_id)} ended {inert(status)}" + (
                f": {detail}" if detail else ""
            )
            return Observation(
                state="failed",
                remote_status=status,
                run_id=run.run_id,
                outputs=outputs,
                message=self.redactor.scrub(message),
            )
        folded = status.casefold() if status is not None else None
        if folded is not None and folded not in KNOWN_RUNNING:
            if folded.replace(" ", "").replace("-", "_") in FINAL_LOOKING:
                raise InputError(
                    f"{run.label} run {inert(run.run_id)} reports status {inert(status)!r}, "
                    "which looks final but is in neither success_statuses nor "
                    "failure_statuses, so mftrun cannot tell whether it succeeded",
                    hint=f"add {inert(status)!r} to start_task.success_statuses or "
                    "failure_statuses (check the run in Automate MFT first)",
                )
            # unknown and not final-looking: shown, marked, and polled until the step timeout
            shown = f"{status} (unknown status: polling on until the step timeout)"
        # queued, running, or an unknown status: shown as-is; the step timeout decides.
        return Observation(state="running", remote_status=shown, run_id=run.run_id, outputs=outputs)

    def _outputs(self, run: MftRun, body: Any) -> dict[str, Any]:
        return {
            "run_id": run.run_id,
            **run.ident,
            "status": run.status,
            "run": self.redactor.scrub_data(body),
        }


def _run_from_spec(spec: StartTaskSpec) -> MftRun:
    """Statuses compare case-insensitively: the platform's casing is not the file's concern."""
    return MftRun(
        label=spec.label,
        ident=spec.ident,
        success=frozenset(s.casefold() for s in spec.success_statuses),
        failure=frozenset(s.casefold() for s in spec.failure_statuses),
    )


def _run_id_of(response: Any) -> tuple[Any, str | None]:
    """The parsed body and the run id of a start's 2xx answer; None when it cannot be read."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    run_id = body.get("id") if isinstance(body, dict) else None
    if isinstance(run_id, bool) or not isinstance(run_id, (str, int)) or run_id == "":
        return body, None
    return body, str(run_id)


def _unreadable(response: Any, body: Any) -> str:
    if not response.content:
        return "empty body"
    if body is None:
        kind = response.headers.get("Content-Type") or "no content type"
        return f"not JSON ({kind})"
    if not isinstance(body, dict):
        return f"JSON {type(body).__name__}, not an object"
    return "no usable 'id'"


def _status_of(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    status = body.get("status")
    if isinstance(status, dict):
        value = status.get("taskRunStatus")
        return str(value) if value not in (None, "") else None
    if isinstance(status, str) and status:  # tolerate a flat status [assumed shape is nested]
        return status
    return None


def _failure_detail(body: Any) -> str:
    """Whatever the run says about why it failed; field names are [assumed], so look around."""
    if not isinstance(body, dict):
        return ""
    status = body.get("status")
    places: list[dict[str, Any]] = [body, status if isinstance(status, dict) else {}]
    for place in places:
        for key in ("message", "statusMessage", "error", "errorMessage", "reason", "details"):
            value = place.get(key)
            if value not in (None, "", [], {}):
                return value if isinstance(value, str) else str(value)
    return ""


def _describe_license(body: Any) -> str:
    """One line from the licence answer, whose field names are [assumed]: be tolerant."""
    if not isinstance(body, dict):
        return "answered"
    parts = []
    for key in ("plan", "planTier", "tier", "name", "edition"):
        if isinstance(body.get(key), (str, int)):
            parts.append(f"plan {body[key]}")
            break
    for key in ("endDate", "end_date", "expiresAt", "validUntil", "end"):  # emulator: endDate
        if isinstance(body.get(key), str):
            parts.append(f"valid until {body[key]}")
            break
    return ", ".join(parts) if parts else "answered"
