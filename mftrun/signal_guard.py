"""SIGINT/SIGTERM during `apply`: stop gracefully, never lose the reports."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mftrun.results import RunResult


class SignalGuard:
    """SIGINT/SIGTERM while a run is going, while it is being concluded, and after.

    - setting up (no executor yet): stop at once, as Ctrl-C always did; nothing was started;
    - running: the first signal stops gracefully (nothing new starts, reports are written);
    - after the last step, before `decide`: the signal is part of the outcome: the run is
      reported interrupted, with the exit code of the signal and a message saying every step
      had already ended;
    - after `decide` (reports being written, then the lock and sessions released): the outcome
      stands, so the reports and the exit code agree; the signal is only acknowledged.
    A second Ctrl-C exits at once, whatever the phase.
    """

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.finished = False  # executor.run() returned
        self.decided = False
        self.late: int | None = None  # a signal that came after the last step, before decide

    def handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.executor is None:  # still setting up: nothing was started, just stop
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            from mftrun.errors import EXIT_TERMINATED, Interrupted

            error = Interrupted(f"{name} received before the run began: nothing was started")
            error.exit_code = EXIT_TERMINATED
            raise error
        first = self.executor.signal_received is None and self.late is None
        if not first and signum == signal.SIGINT:
            os._exit(130)
        if self.decided:
            print(
                f"\nmftrun: {name} received while writing the reports: finishing them "
                "(Ctrl-C again to exit at once)",
                file=sys.stderr,
                flush=True,
            )
            return
        if self.finished:
            self.late = self.late or signum
            print(
                f"\nmftrun: {name} received after the last step ended: writing the reports",
                file=sys.stderr,
                flush=True,
            )
            return
        print(
            f"\nmftrun: {name} received: starting nothing new, "
            "cancelling running steps (Ctrl-C again to exit at once)",
            file=sys.stderr,
            flush=True,
        )
        self.executor.interrupt(signum)

    def decide(self, result: RunResult) -> None:
        """Fix the outcome the reports will say; signals after this do not change it."""
        from mftrun.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

        self.finished = True
        late = self.late
        if late is None and self.executor.signal_received is not None and not result.interrupted:
            late = self.executor.signal_received  # came as the run ended, after it took its verdict
        self.decided = True
        if late is not None and not result.interrupted:
            name = signal.Signals(late).name
            result.interrupted = True
            was = result.exit_code
            result.exit_code = EXIT_TERMINATED if late == signal.SIGTERM else EXIT_INTERRUPTED
            note = (
                f"{name} received after every step had ended (the run alone would have "
                f"exited {was})"
            )
            result.message = f"{result.message}; {note}" if result.message else note


@contextlib.contextmanager
def signals_interrupt(executor: Any | None) -> Iterator[SignalGuard]:
    """Install the guard's handler for SIGINT and SIGTERM; restore the previous ones after."""
    guard = SignalGuard(executor)
    from mftrun.interrupts import after_imports

    # a signal inside one of set-up's imports is handled when that import is done
    handle = after_imports(guard.handle)
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        for sig, old in previous.items():
            # Once the outcome is decided, a signal must not change it on the way out (a
            # raising handler would fire anywhere, even in a garbage-collector callback):
            # acknowledge only; the caller (cli.main) restores its own handlers after.
            signal.signal(sig, _acknowledge if guard.decided else old)


def _acknowledge(signum: int, frame: object) -> None:
    """After the exit code is decided: the run's outcome stands; the signal is noted only."""
