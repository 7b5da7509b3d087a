"""The clock is injected so polling and timeouts can be tested in milliseconds."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def now(self) -> datetime: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


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
