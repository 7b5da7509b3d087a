"""A signal that lands inside Python's import system is handled once the import is done.

Why: mftrun imports lazily, so a Ctrl-C in the first second of `apply` usually lands
in an import. Raised there, KeyboardInterrupt can be swallowed ("Exception ignored
in: <function _get_module_lock.<locals>.cb>": the Ctrl-C is lost and the run goes
on), or leave a module lock or a half-made module behind. The fault campaign found
both (seed 1003: a SIGINT 0.3 s into `apply`). A signal anywhere else is handled at
once, exactly as before.

How: the wrapped handler holds the signal and asks for SIGALRM 50 ms later; then the
handler in force *at that time* gets it (so a signal held during set-up reaches the
run's own handler if the run began meanwhile), unless the main thread is importing
again, in which case it waits another 50 ms. Standard library only: this is
installed before anything else is imported.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, Any], Any]

RETRY_SECONDS = 0.05
_held: list[int] = []  # the signal waiting for the import to end (at most one)


def importing(frame: FrameType | None) -> bool:
    """Whether the interrupted code is inside the import system (importlib's own frames)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def after_imports(handler: Handler) -> Handler:
    """`handler`, except that a signal landing inside an import waits for it to end."""

    def handle(signum: int, frame: Any) -> Any:
        if not importing(frame):
            return handler(signum, frame)
        if not _held:
            _held.append(signum)
            _disarm_at_exit()
            signal.signal(signal.SIGALRM, _retry)
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return None

    handle.__doc__ = handler.__doc__
    return handle


def _disarm_at_exit() -> None:
    """The interpreter restores SIGALRM's default action (end the process) as it finalizes:
    a retry still pending then would end an exiting mftrun by SIGALRM (exit -14) instead of
    its exit code. Seen when a signal landed in an import of the last report write."""
    global _DISARM_REGISTERED
    if not _DISARM_REGISTERED:
        import atexit

        atexit.register(_disarm)
        _DISARM_REGISTERED = True


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    _held.clear()  # the exit code is decided: a signal held now is dropped


_DISARM_REGISTERED = False


def _retry(alarm: int, frame: Any) -> None:
    if not _held:
        return
    if importing(frame):
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    signum = _held.pop()
    current = signal.getsignal(signum)
    if callable(current):  # SIG_IGN once the exit code is decided: then dropped
        current(signum, frame)


def deliver_held() -> None:
    """Hand a held signal to the handler now in force, at once.

    Called where the program knows no import is under way and before it does work: a short
    command (`validate` of a missing file) could otherwise end before the retry fires and
    lose the Ctrl-C.
    """
    if _held:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signum = _held.pop()
        current = signal.getsignal(signum)
        if callable(current):
            current(signum, None)
