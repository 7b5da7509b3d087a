"""A step's gate: once the step has ended, no request for it leaves this process.

Why: a start that waits in the retry loop (429 with `Retry-After`, a back-off) or behind a
slow token answer could otherwise be sent after its step was reported over: the step said
`timed_out`, the failure branch fired, and then the task ran (issue 15 item 16). The
executor opens one gate per attempt and closes it when the step ends; the HTTP layer asks
the gate right before each send and sleeps its back-off on the gate, so closing it wakes
the sleeper at once. Closing tells the executor truthfully whether anything had been sent.

The gate travels with the worker thread that does the step's HTTP work (a context
variable), so providers need not pass it along. The shared token request is run with no
gate (`detached`): it serves every step, and one step's end must not fail the others.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from mftrun.clock import Clock, SystemClock
from mftrun.http.session import NotSentError


class Abandoned(NotSentError):
    """The step ended before this request was sent: it never left, and never will."""


class Gate:
    def __init__(self, what: str = "the step") -> None:
        self.what = what
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.why = ""
        self.sent = 0  # requests that left while open and may have been processed
        self.waiting_for = ""  # what the worker is waiting for, for the timeout's message

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self, why: str) -> int:
        """End the gate; return how many requests had been sent (then none ever will be)."""
        with self._lock:
            if not self._closed.is_set():
                self.why = why
                self._closed.set()
            return self.sent

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Run the block (e.g. write the start's intent) only while open, atomically with
        respect to `close`: a close waits for it, and a closed gate raises Abandoned."""
        with self._lock:
            self._refuse_if_closed()
            yield

    def before_send(self) -> None:
        with self._lock:
            self._refuse_if_closed()
            self.sent += 1
            self.waiting_for = ""

    def unprocessed(self) -> None:
        """The last request sent was answered in a way that proves it was not processed."""
        with self._lock:
            self.sent = max(0, self.sent - 1)

    def pause(self, clock: Clock, seconds: float, reason: str) -> None:
        """Sleep `seconds` unless the gate closes first (then raise Abandoned at once)."""
        self.waiting_for = reason
        if isinstance(clock, SystemClock):
            self._closed.wait(max(0.0, seconds))
        else:  # an injected test clock: its sleep is the time that passes
            clock.sleep(seconds)
        with self._lock:
            self._refuse_if_closed()

    def _refuse_if_closed(self) -> None:
        if self._closed.is_set():
            raise Abandoned(f"{self.what} ended ({self.why}) before this request was sent")


_CURRENT: ContextVar[Gate | None] = ContextVar("mftrun_gate", default=None)


def current() -> Gate | None:
    return _CURRENT.get()


@contextlib.contextmanager
def entered(gate: Gate | None) -> Iterator[None]:
    """Make `gate` the current one for this thread's HTTP calls inside the block."""
    token = _CURRENT.set(gate)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def detached() -> contextlib.AbstractContextManager[None]:
    """No gate inside the block: for work shared by every step (the token request)."""
    return entered(None)


def before_send() -> None:
    gate = _CURRENT.get()
    if gate is not None:
        gate.before_send()


def unprocessed() -> None:
    gate = _CURRENT.get()
    if gate is not None:
        gate.unprocessed()


def pause(clock: Clock, seconds: float, reason: str) -> None:
    gate = _CURRENT.get()
    if gate is None:
        clock.sleep(seconds)
    else:
        gate.pause(clock, seconds, reason)
