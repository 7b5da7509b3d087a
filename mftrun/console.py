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
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

from mftrun.credentials import Redactor
from mftrun.events import StepEvent
from mftrun.inert import inert
from mftrun.progress import Throttle, measure
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


# How an MftrunError joins its message and hint (mftrun.errors.MftrunError.__str__).
HINT_BREAK = "\n  hint: "


class PlainConsole:
    """One line per change; the format CI logs want."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        redactor: Redactor | None = None,
        quiet: bool = False,
        expected_seconds: float | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.stream = stream or sys.stdout
        self.redactor = redactor or Redactor()
        self.quiet = quiet
        self.expected_seconds = expected_seconds
        self.now = now
        self._result: RunResult | None = None
        self._throttle: Throttle | None = None
        # (environment, status, detail) -> the first step that ended so: one cause, one message
        self._causes: dict[tuple[str, str, str], str] = {}

    def _line(self, text: str) -> None:
        """One stamped line; an error's hint (mftrun's own `\n  hint: ` form) goes on an
        indented line below it. Any other line break, e.g. in platform text, stays escaped:
        no text can begin a line of its own that looks like mftrun's."""
        stamp = time.strftime("%H:%M:%S")
        text, found, hint = text.rpartition(HINT_BREAK) if HINT_BREAK in text else (text, "", "")
        lines = f"{stamp} {inert(text)}"
        if found:
            lines += f"\n{' ' * len(stamp)}   hint: {inert(hint)}"
        print(lines, file=self.stream, flush=True)

    def run_started(self, result: RunResult) -> None:
        self._result = result
        self._throttle = Throttle(len(result.steps), now=self.now)
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
        if step.outcome.is_final:
            self._progress_line()

    def _progress_line(self) -> None:
        """Done / total, counts, elapsed, expected end: every tenth of the steps or 30 s."""
        result, throttle = self._result, self._throttle
        if result is None or throttle is None or self.quiet:
            return
        state = measure(
            result.steps, result.started_at, now=self.now(), expected_seconds=self.expected_seconds
        )
        if throttle.due(state.done):
            self._line(state.line())

    def note(self, text: str) -> None:
        self._line(self.redactor.scrub(text))

    def run_finished(self, result: RunResult) -> None:
        pass


class LiveConsole:
    """A rich live view for people watching a terminal: rich's progress bar (done / total,
    counts, elapsed, expected end) over a table of the steps that matter now."""

    def __init__(
        self,
        *,
        redactor: Redactor | None = None,
        console: Any = None,
        expected_seconds: float | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        from rich.console import Console

        from mftrun.inert import guarded

        self.console = console or Console(file=guarded(sys.stdout))
        self.redactor = redactor or Redactor()
        self.expected_seconds = expected_seconds
        self.now = now
        self._steps: list[StepResult] = []
        self._started: datetime | None = None
        self._live: Any = None
        self._details: dict[str, str] = {}
        self._bar: Any = None
        self._task: Any = None

    def _progress(self) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
        )

        if self._bar is None:
            self._bar = Progress(
                TextColumn("steps"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[elapsed]}"),  # the run's, not the bar's own
                TextColumn("{task.fields[counts]}", markup=False),
                console=self.console,
                auto_refresh=False,
                get_time=self.now,
            )
            self._task = self._bar.add_task("steps", total=len(self._steps), counts="", elapsed="")
        started = self._started or datetime.now(timezone.utc)
        state = measure(
            self._steps, started, now=self.now(), expected_seconds=self.expected_seconds
        )
        extra = " · ".join(t for t in (state.expected_text(), state.holding_text()) if t)
        seconds = int(state.elapsed)
        self._bar.update(
            self._task,
            total=state.total,
            completed=state.done,
            counts=state.counts_text(),
            elapsed=f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}",
        )
        # The expected end and the step holding the night up go on a line of their own,
        # cut to the width: done / total and elapsed on the bar's line are never squeezed.
        from rich.console import Group
        from rich.text import Text

        below = Text(inert(extra), no_wrap=True, overflow="ellipsis")
        return Group(self._bar.get_renderable(), below) if extra else self._bar.get_renderable()

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        from mftrun.live_view import rows_that_matter

        table = Table(box=None, pad_edge=False, expand=False)
        now = self.now()
        room = max(3, self.console.size.height - 6)  # the bar and its line, the header, a margin
        steps = rows_that_matter(self._steps, room)
        cut = len(steps) < len(self._steps)  # then one line per row, or it would not fit
        # A folded detail starts a line of its own: the console's stream is guarded for that.
        # Cut to the terminal's height, a row is one line: the detail gives way, not the id.
        widths = {"step": min(40, max((len(s.id) for s in steps), default=4))}
        widths.update({"status": 9, "elapsed": 8, "attempt": 7, "remote status": 13})
        for column in ("step", "status", "elapsed", "attempt", "remote status"):
            table.add_column(column, overflow="ellipsis", no_wrap=cut, min_width=widths[column])
        room_left = self.console.size.width - sum(widths.values()) - 2 * len(widths)
        table.add_column(
            "detail",
            overflow="ellipsis" if cut else "fold",
            no_wrap=cut,
            max_width=max(16, room_left),
        )
        if cut:
            table.caption = (
                f"{len(steps)} of {len(self._steps)} steps: problems, retries, longest running"
            )
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

    def _view(self) -> Any:
        from rich.console import Group

        return Group(self._progress(), self._table())

    def run_started(self, result: RunResult) -> None:
        from rich.live import Live

        self._steps = result.steps
        self._started = result.started_at
        self._live = Live(
            self._view(),
            console=self.console,
            refresh_per_second=4,
            get_renderable=self._view,
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


def make_console(
    *,
    quiet: bool,
    redactor: Redactor,
    stream: TextIO | None = None,
    expected_seconds: float | None = None,
) -> Any:
    """`expected_seconds`: the run's expected total duration (from history), for the
    expected end in the progress line; None shows none."""
    stream = stream or sys.stdout
    if not quiet and stream.isatty():
        return LiveConsole(redactor=redactor, expected_seconds=expected_seconds)
    return PlainConsole(stream, redactor=redactor, quiet=quiet, expected_seconds=expected_seconds)
