"""What `mftrun apply` shows while it runs.

In a terminal: a live table (step, status, elapsed, attempt, remote status).
Elsewhere (CI logs, pipes): one plain timestamped line per state change, so
logs stay greppable and nothing is redrawn. Text from outside (platform answers,
the pipeline file) passes the redactor, and every line `mftrun.inert.inert`:
one inert line, which cannot carry a terminal escape or a workflow command. What
mftrun writes itself (step ids, status words) is never redacted: a secret that
happens to spell "success" must not turn the status into `***`.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from mftrun.credentials import Redactor
from mftrun.events import StepEvent
from mftrun.inert import inert
from mftrun.results import RunResult, Status, StepResult

STYLES = {
    Status.PENDING: "dim",
    Status.RUNNING: "cyan",
    Status.SUCCESS: "green",
    Status.FAILED: "red",
    Status.ERROR: "red",
    Status.TIMED_OUT: "yellow",
    Status.SKIPPED: "dim",
    Status.CANCELLED: "magenta",
}


class PlainConsole:
    """One line per change; the format CI logs want."""

    def __init__(
        self, stream: TextIO | None = None, *, redactor: Redactor | None = None, quiet: bool = False
    ) -> None:
        self.stream = stream or sys.stdout
        self.redactor = redactor or Redactor()
        self.quiet = quiet
        # (environment, status, detail) -> the first step that ended so: one cause, one message
        self._causes: dict[tuple[str, str, str], str] = {}

    def _line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {inert(text)}", file=self.stream, flush=True)

    def run_started(self, result: RunResult) -> None:
        if not self.quiet:
            self._line(
                f"pipeline {result.pipeline}: {len(result.steps)} steps"
                + (" (emulated)" if result.emulated else "")
            )

    def step_changed(self, event: StepEvent) -> None:
        step = event.step
        if self.quiet and step.outcome not in (Status.FAILED, Status.ERROR, Status.TIMED_OUT):
            return
        attempt = f" attempt {len(step.attempts)}" if len(step.attempts) > 1 else ""
        detail = f": {self.redactor.scrub(event.detail)}" if event.detail else ""
        if step.outcome in (Status.FAILED, Status.ERROR, Status.TIMED_OUT) and event.detail:
            key = (step.environment, step.outcome.value, event.detail)
            first = self._causes.setdefault(key, step.id)
            if first != step.id:  # a refused token ends every step on it: say it once
                detail = f": same cause as {first} (environment {step.environment})"
        self._line(f"{step.id:<24} {step.outcome.value:<9}{attempt}{detail}")

    def note(self, text: str) -> None:
        self._line(self.redactor.scrub(text))

    def run_finished(self, result: RunResult) -> None:
        pass


class LiveConsole:
    """A rich live table for people watching a terminal."""

    def __init__(self, *, redactor: Redactor | None = None, console: Any = None) -> None:
        from rich.console import Console

        from mftrun.inert import guarded

        self.console = console or Console(file=guarded(sys.stdout))
        self.redactor = redactor or Redactor()
        self._steps: list[StepResult] = []
        self._live: Any = None
        self._details: dict[str, str] = {}
        self._last = 0.0

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, expand=False)
        # A folded detail starts a line of its own: the console's stream is guarded for that.
        for column in ("step", "status", "elapsed", "attempt", "remote status", "detail"):
            table.add_column(column, overflow="fold" if column == "detail" else "ellipsis")
        now = time.time()
        room = max(5, self.console.size.height - 6)
        steps = self._steps
        if len(steps) > room:  # a big pipeline: show what moves, and counts for the rest
            running = [s for s in steps if s.outcome == Status.RUNNING]
            ended = sorted(
                (s for s in steps if s.outcome.is_final and s.ended_at),
                key=lambda s: s.ended_at,  # type: ignore[arg-type, return-value]  # filtered above
                reverse=True,
            )
            steps = (running + ended)[:room]
            counts: dict[str, int] = {}
            for s in self._steps:
                counts[s.outcome.value] = counts.get(s.outcome.value, 0) + 1
            table.caption = "  ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        for step in steps:
            elapsed = ""
            if step.started_at:
                end = step.ended_at.timestamp() if step.ended_at else now
                elapsed = f"{end - step.started_at.timestamp():.1f}s"
            remote = step.attempts[-1].remote_status if step.attempts else ""
            # Platform text goes in as Text, never markup: a "[/]" in a message must not break
            # the table.
            table.add_row(
                Text(inert(step.id)),
                Text(step.outcome.value, style=STYLES[step.outcome]),
                elapsed,
                str(len(step.attempts) or ""),
                Text(inert(self.redactor.scrub(remote or ""))),
                Text(inert(self.redactor.scrub(self._details.get(step.id, "")))[:120]),
            )
        return table

    def run_started(self, result: RunResult) -> None:
        from rich.live import Live

        self._steps = result.steps
        self._live = Live(
            self._table(),
            console=self.console,
            refresh_per_second=4,
            get_renderable=self._table,
            transient=True,
        )
        self._live.start()

    def step_changed(self, event: StepEvent) -> None:
        # The remote status has its own column; a finished step keeps only its final note.
        if event.step.outcome.is_final or (
            event.detail and not event.detail.startswith("remote status")
        ):
            self._details[event.step.id] = event.detail

    def note(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(inert(self.redactor.scrub(text))), highlight=False)

    def run_finished(self, result: RunResult) -> None:
        if self._live is not None:
            self._live.stop()


def make_console(*, quiet: bool, redactor: Redactor, stream: TextIO | None = None) -> Any:
    stream = stream or sys.stdout
    if not quiet and stream.isatty():
        return LiveConsole(redactor=redactor)
    return PlainConsole(stream, redactor=redactor, quiet=quiet)
