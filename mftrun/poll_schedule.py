"""When to ask about a running remote run next: a pure function of what is known.

Why a function and not a loop with a sleep in it: the schedule is data. The
executor calls `next_delay` after each non-terminal poll; `plan --format json`
shows the same schedule (`preview`); property tests check its promises without a
clock. Its inputs are the step's poll bounds, the task's history (durations of
earlier successful runs), the seconds elapsed since the start was sent and the
platform's Retry-After.

The promises:

- Retry-After always wins (the platform asked; a poll before it is wasted or refused);
- otherwise every gap is within [interval, max_interval]: a run that fails early is
  noticed within max_interval (the liveness poll), never later;
- the next poll time (elapsed + delay) never decreases as elapsed grows;
- without history (first night, `--no-state`, `poll: {history: false}`, a new task) the
  gap is `(factor - 1) x elapsed`, within the bounds: an end is noticed within that
  fraction of the time waited (10% with the default factor 1.1);
- with history: sparse (max_interval) while the end is unlikely, dense from just before the
  earliest recorded end through the p95, then growing again when the run overruns, never
  more than the no-history gap, so an overrun loses no more than a first night would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mftrun.model import Poll

DENSE_SPLIT = 10  # polls spread across the recorded range [earliest, usual end]


@dataclass(frozen=True, slots=True)
class Expectation:
    """What history says about one task's duration (seconds on the executor's clock).

    p50 / p95 / latest are the recorded durations (start to the poll that saw the end):
    what people read in `plan` and the report. Each earlier end lies in a bracket, from that
    run's last "running" poll to that noticed end. The schedule's window (`earliest`,
    `usual_end`) is the lowest bracket start and the p95 of the bracket ends of the *precise*
    runs (bracket at most twice the narrowest, plus 1% of the duration): a first night's
    coarse bracket opens a wide window once, then narrower nights replace it, rather than
    keeping the window wide for the next thirty nights.
    """

    runs: int
    earliest: float
    p50: float
    p95: float
    latest: float
    usual_end: float = 0.0

    @classmethod
    def of(cls, durations: Sequence[float], lower_bounds: Sequence[float] = ()) -> Expectation:
        highs = [max(0.0, d) for d in durations]
        if not highs:
            raise ValueError("an expectation needs at least one duration")
        lows = [min(max(0.0, low), high) for low, high in zip(lower_bounds, highs, strict=False)]
        if len(lows) != len(highs):
            lows = list(highs)
        widest = 2 * min(h - lo for lo, h in zip(lows, highs, strict=True))
        precise = [
            (lo, h) for lo, h in zip(lows, highs, strict=True) if h - lo <= widest + 0.01 * h
        ]
        ordered = sorted(highs)
        return cls(
            runs=len(ordered),
            earliest=min(lo for lo, _ in precise),
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            latest=ordered[-1],
            usual_end=percentile(sorted(h for _, h in precise), 95),
        )

    def to_dict(self) -> dict[str, float | int]:
        return {
            "runs": self.runs,
            "p50_s": round(self.p50, 3),
            "p95_s": round(self.p95, 3),
            "max_s": round(self.latest, 3),
        }


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (no interpolation: a real duration)."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass(frozen=True, slots=True)
class Window:
    """The dense part of a history-aware schedule, in seconds since the start."""

    opens: float
    closes: float
    gap: float


def window(poll: Poll, expected: Expectation) -> Window:
    """Dense from one gap before the earliest recorded end to one gap after the usual end.

    Why the width sets the gap: every dense poll costs a request, so a task whose ends
    spread over two minutes gets a few polls across them rather than one every `interval`;
    a task that always ends within seconds gets `interval` (the densest the file allows).
    """
    gap = _clamp((expected.usual_end - expected.earliest) / DENSE_SPLIT, poll)
    return Window(
        opens=max(0.0, expected.earliest - gap),
        closes=expected.usual_end + gap,
        gap=gap,
    )


def first_night_gap(poll: Poll, elapsed: float) -> float:
    """The schedule without history: the gap grows with the time already waited."""
    return _clamp((poll.factor - 1.0) * max(0.0, elapsed), poll)


def next_delay(
    poll: Poll,
    elapsed: float,
    expected: Expectation | None = None,
    retry_after: float | None = None,
) -> float:
    """Seconds from now (`elapsed` seconds after the start was sent) to the next poll."""
    if retry_after is not None and retry_after >= 0 and math.isfinite(retry_after):
        return float(retry_after)
    elapsed = max(0.0, elapsed)
    plain = first_night_gap(poll, elapsed)
    if expected is None:
        return plain
    dense = window(poll, expected)
    if elapsed < dense.opens:  # the end is unlikely yet: liveness only, landing on the window
        return _clamp(dense.opens - elapsed, poll)
    if elapsed <= dense.closes:  # capped by the first-night gap so the overrun joins smoothly
        return min(dense.gap, plain)
    # overrun: grow again from the dense gap, never sparser than a first night
    return min(plain, _clamp(dense.gap + (poll.factor - 1.0) * (elapsed - dense.closes), poll))


def preview(poll: Poll, expected: Expectation | None, *, limit: int = 200) -> list[float]:
    """The poll times (seconds after the start) of a run that lasts up to its worst case.

    What `plan --format json` shows: with history up to the latest recorded end (or the
    window's close); without, up to ten minutes (a run of unknown length).
    """
    horizon = max(window(poll, expected).closes, expected.latest) if expected is not None else 600.0
    times: list[float] = []
    t = 0.0
    while t < horizon and len(times) < limit:
        t += next_delay(poll, t, expected)
        times.append(round(t, 3))
    return times


def _clamp(gap: float, poll: Poll) -> float:
    return min(poll.max_interval, max(poll.interval, gap))
