"""The clock is injected so polling and timeouts can be tested in milliseconds."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def now(self) -> datetime: ...
    def sleep(self, seconds: float) -> None: ...
    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock last on the wall (for waits on real queues)."""
        ...

    def from_real(self, seconds: float) -> float:
        """`seconds` of wall time (a platform's Retry-After) in this clock's seconds."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def from_real(self, seconds: float) -> float:
        return seconds


class ScaledClock(SystemClock):
    """The executor's clock under `--emulate`: `speed` times faster than the wall.

    Why: a scenario with `speed: 60` runs a 10-minute task in 10 s. mftrun's own timers
    (step and whole-run timeouts, poll intervals, retry delays) must shrink by the same
    factor, or a 3-hour task under a 1-hour timeout would still take an hour to time out
    in rehearsal. `now()` stays the wall clock, so reports show when things really
    happened; only the passing of time is scaled. Real runs use SystemClock.
    """

    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be above 0, not {speed}")
        self.speed = speed
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds / self.speed)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.speed

    def from_real(self, seconds: float) -> float:
        return seconds * self.speed


class FakeClock:
    """Advances only when slept on or told to; for unit tests."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._t = start
        self._epoch = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() - start

    def monotonic(self) -> float:
        return self._t

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._epoch + self._t, timezone.utc)

    def sleep(self, seconds: float) -> None:
        self._t += max(0.0, seconds)

    advance = sleep

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def from_real(self, seconds: float) -> float:
        return seconds
