"""The executor's part that reads what the workers answer: a start, a re-attach, a poll.

An answer for an ended step (its generation moved on) only records a remote run that may
still be going; a terminal observation concludes the attempt (success, failure and retry,
outputs); anything else schedules the next poll. A part of `mftrun.executor.Executor`.
"""

from __future__ import annotations


from mftrun import actions, fan_out, poll_schedule, templating
from mftrun.durations import format_duration
from mftrun.errors import (
    AuthError,
    CredentialError,
    EXIT_INVALID,
    EXIT_PLATFORM,
    InputError,
    MftrunError,
    RemoteError,
    TemplateError,
)
from mftrun.executor_state import (
    Answer,
    Call,
    Live,
    SchedulerState,
    Wake,
)
from mftrun.http.session import NotSentError
from mftrun.providers.base import Observation
from mftrun.results import Status


class Answers(SchedulerState):
    def _handle_answer(self, answer: Answer) -> None:
        live = self._live[answer.step_id]
        gen, kind, value, exc = answer.gen, answer.call, answer.value, answer.error
        number = live.attempts_started
        if kind is Call.NOT_SENT:
            self._start_not_sent(live, number)
            return
        if kind is Call.START and exc is not None and not _may_have_started(exc):
            self._start_not_sent(live, number)
        if kind in (Call.START, Call.ATTACH) and value is not None:
            handle, obs = value
            if kind is Call.START:  # the answer arrived (the worker recorded it already)
                ref = self.providers[live.step.environment].ref(handle) if obs.run_id else {}
                live.result.attempts[-1].ref = ref or None
                live.result.start_unconfirmed = False
            if gen != live.gen:  # the step ended (timeout, interrupt) while the start was in flight
                if (
                    obs.run_id
                    and not obs.terminal
                    and obs.run_id not in live.result.remote_may_continue
                ):
                    live.result.remote_may_continue.append(obs.run_id)
                return
            live.handle = handle
            live.result.attempts[-1].run_id = obs.run_id
        elif gen != live.gen:
            return
        live.busy = False
        if exc is not None:
            if kind is Call.START and live.result.start_unconfirmed:
                self._note_ambiguous_start(live, exc)
            self._fail_with_exception(live, exc)
            return
        obs = value[1] if kind in (Call.START, Call.ATTACH) else value
        self._observe(live, obs)

    def _start_not_sent(self, live: Live, number: int) -> None:
        if live.result.start_unconfirmed:
            live.result.start_unconfirmed = False
            self.recorder.start_not_sent(live.step.id, number)

    def _fail_with_exception(self, live: Live, exc: BaseException) -> None:
        if isinstance(exc, MftrunError):
            message, code = str(exc), exc.exit_code
        else:
            message, code = f"unexpected {exc.__class__.__name__}: {exc}", EXIT_PLATFORM
        self._note_remote_left_going(live)
        self._finish(live, Status.ERROR, error=message, exit_code=code)

    def _observe(self, live: Live, obs: Observation) -> None:
        attempt = live.result.attempts[-1]
        provider = self.providers[live.step.environment]
        if obs.run_id and not attempt.run_id:
            attempt.run_id = obs.run_id
        live.result.http_calls = live.calls_before + provider.http_calls(live.handle)
        if obs.remote_status != attempt.remote_status:
            attempt.remote_status = obs.remote_status
            if not obs.terminal:
                self._emit(live, f"remote status: {obs.remote_status}")
        if not obs.terminal:
            # Retry-After is the platform's, in wall seconds; the schedule is in the clock's own
            now = self.clock.monotonic()
            elapsed = now - live.sent
            live.running_seen = max(live.running_seen, elapsed)
            delay = poll_schedule.next_delay(
                live.step.poll,
                elapsed,
                self.history.expect(live.step.id) if live.fresh else None,
                self.clock.from_real(obs.retry_after) if obs.retry_after is not None else None,
            )
            live.gap = delay
            self._timer(now + delay, live, Wake.POLL)
            return
        attempt.ended_at = self.clock.now()
        attempt.message = obs.message
        if obs.state == "success":
            attempt.status = Status.SUCCESS
            if live.fresh and attempt.run_id:  # a remote run: its duration is history
                self.history.learned(
                    live.step.id,
                    attempt.number,
                    self.clock.monotonic() - live.sent,
                    live.running_seen,
                    self.clock.now().isoformat(),
                )
            live.result.warnings = list(obs.warnings)
            said = [f"warning: {w}" for w in obs.warnings]
            # a success may have something to say (a wait that matched nothing, warnings): the
            # console shows it with the step's end
            detail = "; ".join([obs.message or "", *said]).strip("; ")
            self._finish_with_outputs(live, Status.SUCCESS, obs, detail=detail)
            return
        attempt.status = Status.FAILED
        retries = live.step.retries
        if (
            live.attempts_started <= retries.attempts
            and actions.action_type(live.step.action.kind).retry_can_help
            and not self._stopping.is_set()
        ):
            delay = retries.delay * (retries.backoff ** (live.attempts_started - 1))
            self._emit(
                live,
                f"attempt {live.attempts_started} failed ({obs.message or obs.remote_status}); "
                f"retrying in {format_duration(delay)}",
            )
            self._timer(self.clock.monotonic() + delay, live, Wake.RESTART)
            return
        self._finish_with_outputs(
            live, Status.FAILED, obs, error=obs.message or f"remote status {obs.remote_status}"
        )

    def _finish_with_outputs(
        self,
        live: Live,
        status: Status,
        obs: Observation,
        error: str | None = None,
        detail: str = "",
    ) -> None:
        outputs = dict(obs.outputs)
        context = self.template_context(
            result=obs.outputs, response=obs.outputs, **fan_out.item_names(live.step)
        )
        try:
            with self._template_limits(live.step.timeout):
                for name, template in live.step.outputs.items():
                    outputs[name] = templating.render(template, context)
        except TemplateError as exc:
            live.result.outputs = outputs
            if status == Status.SUCCESS:
                self._finish(live, Status.ERROR, error=f"outputs: {exc}", exit_code=EXIT_INVALID)
                return
            error = f"{error}; outputs: {exc}"
        live.result.outputs = outputs
        self._finish(live, status, error=error, detail=detail)

    # -- timers and deadlines ------------------------------------------------------------------


def _may_have_started(exc: BaseException) -> bool:
    """Only an answer that proves the start was not processed clears the intent; anything
    else (a lost answer, a 5xx, an unexpected error) leaves it, so resume never guesses."""
    if isinstance(exc, (NotSentError, InputError, TemplateError, CredentialError, AuthError)):
        return False
    if isinstance(exc, RemoteError) and exc.status is not None:
        return not 400 <= exc.status < 500
    return True
