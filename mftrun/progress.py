"""How far a run is: done of total, counts by status, elapsed, expected end, what holds it up.

One model for both consoles: the live view draws it with rich's progress bar, the
plain (CI log) console prints it as one line at a bounded rate (`Throttle`), never
one line per poll. The expected end comes from the caller (`expected_seconds`,
e.g. from the run history); without it none is shown rather than a guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from mftrun.durations import format_duration
from mftrun.results import Status, StepResult, counted

ORDER = ("success", "failed", "error", "timed_out", "cancelled", "skipped", "running", "pending")
WORDS = {"timed_out": "timed out", "pending": "waiting"}


@dataclass(frozen=True, slots=True)
class Progress:
    """One moment of a run, as plain numbers and words."""

    done: int
    total: int
    counts: tuple[tuple[str, int], ...]  # status -> steps, in ORDER, zeros left out
    elapsed: float
    expected_end: datetime | None
    late_by: float  # seconds past the expected end (0 when not late or unknown)
    holding: tuple[str, float] | None  # the step running longest, and for how long

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    def counts_text(self) -> str:
        return ", ".join(f"{n} {WORDS.get(k, k)}" for k, n in self.counts) or "no steps"

    def expected_text(self) -> str:
        if self.expected_end is None:
            return ""
        text = f"expected end {self.expected_end.astimezone(timezone.utc):%H:%M:%S} UTC"
        if self.late_by > 0:
            text += f" (late by {format_duration(round(self.late_by))})"
        return text

    def holding_text(self) -> str:
        if self.holding is None:
            return ""
        step, seconds = self.holding
        return f"longest running: {step} ({format_duration(round(seconds, 1))})"

    def line(self) -> str:
        """The plain console's progress line."""
        parts = [
            f"progress: {self.done}/{self.total} steps done ({self.percent}%)",
            self.counts_text(),
            f"elapsed {format_duration(round(self.elapsed))}",
            self.expected_text(),
            self.holding_text(),
        ]
        return " · ".join(p for p in parts if p)


def measure(
    steps: Sequence[StepResult],
    started_at: datetime,
    *,
    now: float,
    expected_seconds: float | None = None,
) -> Progress:
    """The run's progress at wall-clock time `now` (seconds since the epoch)."""
    counts: dict[str, int] = {}
    holding: tuple[str, float] | None = None
    steps = counted(steps)  # a fanned-out group is its instances
    for step in steps:
        counts[step.outcome.value] = counts.get(step.outcome.value, 0) + 1
        if step.outcome is Status.RUNNING and step.started_at is not None:
            running_for = now - step.started_at.timestamp()
            if holding is None or running_for > holding[1]:
                holding = (step.id, running_for)
    done = sum(n for k, n in counts.items() if k not in ("running", "pending"))
    elapsed = max(0.0, now - started_at.timestamp())
    expected_end = late = None
    if expected_seconds is not None and expected_seconds >= 0:
        expected_end = datetime.fromtimestamp(
            started_at.timestamp() + expected_seconds, timezone.utc
        )
        late = max(0.0, elapsed - expected_seconds)
    return Progress(
        done=done,
        total=len(steps),
        counts=tuple((k, counts[k]) for k in ORDER if counts.get(k)),
        elapsed=elapsed,
        expected_end=expected_end,
        late_by=late or 0.0,
        holding=holding,
    )


class Throttle:
    """When the plain console prints a progress line: when another tenth of the steps is
    done, or `every` seconds after the last line, whichever comes first; a big night's CI
    log gets about a dozen lines, not one per poll. Never twice for the same count."""

    def __init__(
        self,
        total: int,
        *,
        every: float = 30.0,
        fraction: float = 0.1,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.every = every
        self.step = max(1, int(total * fraction))
        self.now = now
        self._last_time = now()
        self._last_done = 0
        self._next_mark = self.step

    def due(self, done: int) -> bool:
        if done == self._last_done:
            return False
        moment = self.now()
        if done >= self._next_mark or done == self.total or moment - self._last_time >= self.every:
            self._last_time, self._last_done = moment, done
            while self._next_mark <= done:
                self._next_mark += self.step
            return True
        return False
