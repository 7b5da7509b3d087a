"""The executor's part that ends steps: deadlines, interrupts, the whole-run timeout.

Neither platform can cancel, so ending a running step records what may still be going
remotely and closes its gate (nothing more is sent for it); the end is recorded durably
before any dependent may start. A part of `mftrun.executor.Executor`.
"""

from __future__ import annotations

import heapq

from mftrun import actions, fan_out
from mftrun.conditions import FAILED_CONCLUSIONS, step_view
from mftrun.durations import format_duration
from mftrun.errors import (
    EXIT_PLATFORM,
)
from mftrun.events import StepEvent
from mftrun.executor_state import SchedulerState
from mftrun.executor_state import (
    AFTERMATH_CONDITIONS,
    Live,
)
from mftrun.model import Step
from mftrun.results import Status


class Endings(SchedulerState):
    def _fire_deadlines(self, now: float) -> None:
        while self._deadlines and self._deadlines[0].when <= now:
            deadline = heapq.heappop(self._deadlines)
            live = self._live[deadline.step_id]
            if deadline.gen != live.gen or live.result.outcome != Status.RUNNING:
                continue
            self._time_out(
                live, f"step timeout of {format_duration(live.step.timeout or 0)} reached"
            )

    def _time_out(self, live: Live, why: str) -> None:
        left = self._cancel_remote(live, Status.TIMED_OUT)
        message = why + (f"; {left}" if left else "")
        self._finish(live, Status.TIMED_OUT, error=message)

    def _cancel_remote(self, live: Live, status: Status) -> str:
        """Cancel where the platform can; otherwise record and say the run may still be going.

        The attempt is recorded as what happened to it (`timed_out` for a timeout, `cancelled`
        for an interrupt), never as a remote cancel that neither platform offers."""
        attempt = live.result.attempts[-1] if live.result.attempts else None
        waiting_for = live.gate.waiting_for
        sent = live.gate.close(status.value)  # from here on nothing is sent for this step
        if attempt is None or attempt.status != Status.RUNNING:
            return ""
        attempt.status = status
        attempt.ended_at = self.clock.now()
        provider = self.providers[live.step.environment]
        run_id = attempt.run_id
        if provider.can_cancel and live.handle is not None:
            handle = live.handle
            self._pool.submit(lambda: provider.cancel(handle))
            return f"cancel requested for remote run {run_id}" if run_id else "cancel requested"
        if run_id:
            if run_id not in live.result.remote_may_continue:
                live.result.remote_may_continue.append(run_id)
            return (
                f"remote run {run_id} may still be going "
                f"({provider.name} has no public cancel call)"
            )
        if live.busy and live.result.start_unconfirmed and not sent:
            # Truthfully: the start never left (it was sleeping in a retry loop or waiting for
            # a token), and the closed gate guarantees it never will.
            live.result.start_unconfirmed = False
            waited = f" (it was waiting for {waiting_for})" if waiting_for else ""
            return (
                f"nothing was started: the start request had not been sent{waited} and will not be"
            )
        if live.busy and live.result.start_unconfirmed:
            target = _target_of(live.step)
            entry = f"unknown run of {target}"
            if entry not in live.result.remote_may_continue:
                live.result.remote_may_continue.append(entry)
            return f"the start request was in flight: {target} may have started"
        return ""

    def _note_ambiguous_start(self, live: Live, exc: BaseException) -> None:
        """A start that may have been processed but named no run: the report must still say
        that something may be running remotely (issue 15 item 14)."""
        target = getattr(exc, "target", None) or _target_of(live.step)
        entry = f"unknown run of {target}"
        if entry not in live.result.remote_may_continue:
            live.result.remote_may_continue.append(entry)

    def _note_remote_left_going(self, live: Live) -> None:
        attempt = live.result.attempts[-1] if live.result.attempts else None
        if attempt and attempt.run_id and attempt.status == Status.RUNNING:
            live.result.remote_may_continue.append(attempt.run_id)

    def _enter_aftermath(self, why: str) -> None:
        """Whole-run timeout: end what runs, start nothing new, except the steps written to
        react to trouble (run_if failure or always): the alert an operator wrote for a
        stuck night must still go out. They keep their own timeout (or AFTERMATH_TIMEOUT)."""
        self._aftermath = why
        for live in list(self._live.values()):
            if live.result.outcome == Status.RUNNING:
                self._time_out(live, why)
        startable, self._startable = self._startable, []
        for index, step_id in startable:
            live = self._live[step_id]
            if live.step.run_if.kind in AFTERMATH_CONDITIONS:
                heapq.heappush(self._startable, (index, step_id))
            else:
                live.result.skipped_reason = f"not started: {why}"
                self._finish(live, Status.SKIPPED, detail=live.result.skipped_reason)

    def _stop_all(self, why: str) -> None:
        """Interrupt: end every unfinished step (running ones `cancelled`), start nothing new.
        (A whole-run timeout is `_enter_aftermath`: failure/always steps still run.)"""
        self._stopping.set()
        for live in self._live.values():
            if live.result.outcome == Status.RUNNING:
                left = self._cancel_remote(live, Status.CANCELLED)
                self._finish(live, Status.CANCELLED, error=why + (f"; {left}" if left else ""))
        for live in self._live.values():
            if not live.result.outcome.is_final:
                live.result.skipped_reason = f"not started: {why}"
                self._finish(live, Status.SKIPPED, detail=live.result.skipped_reason)
        self._newly_ready.clear()

    # -- endings -------------------------------------------------------------------------------

    def _finish(
        self,
        live: Live,
        status: Status,
        *,
        error: str | None = None,
        detail: str = "",
        exit_code: int | None = None,
    ) -> None:
        result = live.result
        if result.outcome.is_final:
            return
        was_running = result.outcome == Status.RUNNING
        live.gate.close(status.value)  # a step that has ended sends nothing more
        live.gen += 1
        result.outcome = status
        result.conclusion = (
            Status.SUCCESS
            if status in FAILED_CONCLUSIONS and live.step.continue_on_error
            else status
        )
        result.error = error
        if status == Status.ERROR:
            result.error_exit_code = exit_code or EXIT_PLATFORM
        now = self.clock.now()
        result.ended_at = now
        if result.started_at is None:
            result.started_at = now
        if result.attempts:
            attempt = result.attempts[-1]
            if attempt.status == Status.RUNNING:
                attempt.status = status
                attempt.ended_at = now
                attempt.message = attempt.message or error
        if was_running and not fan_out.is_dynamic(live.step):  # a dynamic group holds no slot
            self._active -= 1
        self._ended(live, detail or error or "")

    def _ended(self, live: Live, note: str, *, queue_ready: bool = True) -> None:
        """Record the end (durably, before any dependent may start), tell, release dependents."""
        result = live.result
        self._unfinished -= 1
        self._steps_view[result.id] = step_view(result)
        self.recorder.step_finished(result)
        if result.conclusion != result.outcome:
            note = f"{note} (continue_on_error: concluded success)".strip()
        self._emit(live, note)
        # for_each: steps.<group>, and a dynamic group's end, after its last instance's own
        # end is recorded and told (the group's verdict never comes before its members')
        self._group_member_ended(result)
        if not queue_ready:  # carried over before the run: run() hands these out
            self._walk.done_later(result.id)
            return
        for dependent in self._walk.done(result.id):
            if not self._live[dependent].result.outcome.is_final and not self._stopping.is_set():
                self._newly_ready.append(dependent)

    def _emit(self, live: Live, detail: str) -> None:
        self.listener.step_changed(StepEvent(live.result, detail))


def _target_of(step: Step) -> str:
    """What a step's start may have set going, in words, when the platform named no run."""
    action = step.action
    return actions.action_type(action.kind).target(actions.spec_of(action)) or action.kind
