"""The executor's part that decides, for each step whose needs ended, whether it runs.

`run_if` over the needs and ancestors, the refusal after a failed login check, and the
bounds every template rendered on the scheduling thread lives under. A part of
`mftrun.executor.Executor` (its methods take `self`).
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections.abc import Iterator
from typing import Any

from mftrun import fan_out, template_limits, templating
from mftrun.conditions import should_run
from mftrun.errors import (
    EXIT_INVALID,
    EXIT_PLATFORM,
    TemplateError,
)
from mftrun.executor_state import SchedulerState
from mftrun.executor_state import (
    AFTERMATH_CONDITIONS,
    Live,
)
from mftrun.results import Status


class Readiness(SchedulerState):
    def template_context(self, **extra: Any) -> dict[str, Any]:
        """What templates see now: vars, the finished steps, and `extra` (result, response)."""
        return {"vars": self.vars, "steps": self._steps_view, **extra}

    def _settle_ready(self) -> None:
        """Decide, for every step whose needs are all final, whether it will run or is skipped."""
        while self._newly_ready:
            live = self._live[self._newly_ready.popleft()]
            step = live.step
            if self.refused and self._refuse(live):
                continue
            needs = fan_out.counted_needs(
                [self._live[n].result for n in step.needs],
                {n: self._live[n].step for n in step.needs},
            )
            ancestry = self.plan.ancestors(self._ancestors_key(step))
            ancestors = [self._live[a].result for a in ancestry]
            condition = fan_out.group_condition(step)  # a dynamic group's is per instance
            evaluate = self._group_evaluator(step)
            try:
                with self._template_limits(step.timeout):
                    run, reason = should_run(condition, needs, ancestors, evaluate)
            except TemplateError as exc:
                # An expression over outputs that an upstream failure or skip never produced is
                # not a mistake in the file: the step is skipped, as skips flow downstream.
                missing = [r for r in ancestors if r.conclusion != Status.SUCCESS]
                if missing:
                    # name the root cause (a failure rather than the skip it caused),
                    # deterministically
                    cause = min(
                        missing,
                        key=lambda r: (r.outcome == Status.SKIPPED, self._live[r.id].step.index),
                    )
                    reason = (
                        f"run_if could not be evaluated ({exc.message}) because upstream step "
                        f"{cause.id} ended {cause.outcome.value}"
                    )
                    live.result.skipped_reason = reason
                    self._finish(live, Status.SKIPPED, detail=reason)
                    continue
                self._finish(live, Status.ERROR, error=f"run_if: {exc}", exit_code=EXIT_INVALID)
                continue
            if run and self._aftermath and step.run_if.kind not in AFTERMATH_CONDITIONS:
                run, reason = False, f"not started: {self._aftermath}"
            if run:
                heapq.heappush(self._startable, (step.index, step.id))
            else:
                live.result.skipped_reason = reason
                self._finish(live, Status.SKIPPED, detail=reason)

    @contextlib.contextmanager
    def _template_limits(self, timeout: float | None) -> Iterator[None]:
        """Templates rendered here block the scheduler: each is bounded by the step's timeout
        (and template_limits.MAX_SECONDS), ended at once when the run is stopping, and all of
        one run's together by template_limits.RUN_SECONDS, so many steps cannot add up."""
        if self._template_seconds_left <= 0:
            raise TemplateError(
                "not rendered: this run's templates have used their "
                f"{template_limits.RUN_SECONDS:g} s in all",
                hint="templates are bounded; compute big values before the run, pass them as vars",
            )
        started = time.monotonic()
        allowed = min(timeout or template_limits.MAX_SECONDS, self._template_seconds_left)
        try:
            with templating.limits(seconds=allowed, stop=self._stopping.is_set):
                yield
        finally:
            self._template_seconds_left -= time.monotonic() - started

    def _refuse(self, live: Live) -> bool:
        """After a failed login check: end the step `error` (exit 3) without starting it, unless
        it is a failure/always step whose own environment logged in. Refused steps end `error`,
        not `skipped`, so the alert that reacts to them sees the run as failed."""
        step = live.step
        own = self.refused.get(step.environment)
        if own is None and step.run_if.kind in AFTERMATH_CONDITIONS:
            return False
        if own is not None:
            why = f"not started: the login check failed: {own}"
        else:
            names = ", ".join(repr(n) for n in sorted(self.refused))
            why = f"not started: the login check failed for {names}"
        self._finish(live, Status.ERROR, error=why, exit_code=EXIT_PLATFORM)
        return True
