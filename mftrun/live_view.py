"""What the live terminal view shows of a run: which rows fit, in what order.

A night of hundreds of steps does not fit a terminal, and the first 35 running
steps are not what a person watching needs: failures and retries come first,
then the steps that have been running longest (those hold the night up), cut to
the terminal's height. A pipeline that fits is shown whole, in file order.
"""

from __future__ import annotations

from collections.abc import Sequence

from mftrun.results import Status, StepResult, counted

TROUBLE = (Status.FAILED, Status.ERROR, Status.TIMED_OUT, Status.CANCELLED)


def rows_that_matter(steps: Sequence[StepResult], room: int) -> list[StepResult]:
    steps = counted(steps)  # a fanned-out group is its instances
    if len(steps) <= room:
        return list(steps)
    ended_badly = sorted(
        (s for s in steps if s.outcome in TROUBLE),
        key=lambda s: s.ended_at.timestamp() if s.ended_at else 0.0,
        reverse=True,  # the latest failure first
    )
    running = [s for s in steps if s.outcome is Status.RUNNING]
    retrying = [s for s in running if len(s.attempts) > 1]
    longest = sorted(
        (s for s in running if len(s.attempts) <= 1),
        key=lambda s: s.started_at.timestamp() if s.started_at else float("inf"),
    )
    return (ended_badly + retrying + longest)[: max(room, 0)]
