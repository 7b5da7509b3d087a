"""The final summary table, from the JSON report dict.

Shared by the end of `mftrun apply` and `mftrun report show`, and the source of
the words every report uses for statuses and verdicts, so the console, the
HTML page, JUnit and the GitHub summary say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mftrun.durations import format_duration
from mftrun.inert import inert
from mftrun.reports.compare import beyond_p95, slow_note, typical_text

if TYPE_CHECKING:
    from rich.console import Console

# status -> (symbol, words): the words carry the meaning, the colour only helps.
STATUS_TEXT: dict[str, tuple[str, str]] = {
    "success": ("✓", "success"),
    "failed": ("✗", "failed"),
    "error": ("!", "error"),
    "timed_out": ("◔", "timed out"),
    "skipped": ("↷", "skipped"),
    "cancelled": ("⊘", "cancelled"),
    "pending": ("…", "not run"),
    "running": ("…", "unfinished"),
}
STATUS_STYLE = {
    "success": "green",
    "failed": "bold red",
    "error": "bold red",
    "timed_out": "bold yellow",
    "skipped": "dim",
    "cancelled": "magenta",
    "pending": "dim",
    "running": "yellow",
}
VERDICT_STYLE = {
    "success": "bold green",
    "failed": "bold red",
    "timed_out": "bold yellow",
    "interrupted": "bold magenta",
    "error": "bold red",
}


def status_label(status: str) -> str:
    symbol, words = STATUS_TEXT.get(status, ("?", status))
    return f"{symbol} {words}"


def verdict(report: dict[str, Any]) -> tuple[str, str]:
    """(key, words) for the whole run: success, failed, timed_out, interrupted or error."""
    totals = report.get("totals") or {}
    code = report.get("exit_code", 1)
    if report.get("interrupted") or code in (130, 143):
        return "interrupted", "Interrupted"
    unfinished = any(s.get("status") in ("pending", "running") for s in report.get("steps", ()))
    if unfinished and code in (0, 1):
        # Only a crash leaves steps unfinished without an interrupt: never call that a success.
        return "error", "Incomplete (mftrun stopped before every step finished)"
    if code == 0:
        steps = report.get("steps", ())
        allowed = sum(1 for s in steps if s.get("outcome") != s.get("conclusion"))
        warned = sum(len(s.get("warnings") or ()) for s in steps)
        extra = []
        if allowed:
            extra.append(f"{allowed} allowed failure{'s' if allowed != 1 else ''}")
        if warned:
            extra.append(f"{warned} warning{'s' if warned != 1 else ''}")
        return "success", "Succeeded" + (f" ({', '.join(extra)})" if extra else "")
    if code == 2:
        return "error", "Invalid input"
    if code == 3:
        return "error", "Platform unreachable or authentication failed"
    if totals.get("timed_out") and not (totals.get("failed") or totals.get("error")):
        return "timed_out", "Timed out"
    return "failed", "Failed"


def remote_notes(step: dict[str, Any]) -> list[str]:
    """A line per remote run left going, unless the step's error already says it."""
    said = str(step.get("error") or "")
    notes = [
        f"an {run_id} may still be going"  # a start that may have started: id unreadable
        if str(run_id).startswith("unknown run of ")
        else f"remote run {run_id} may still be going"
        for run_id in step.get("remote_may_continue") or ()
    ]
    return [n for n in notes if n not in said]


def step_note(step: dict[str, Any], *, remote: bool = True) -> str:
    """One line saying why a step is not a plain success."""
    parts: list[str] = []
    if step.get("error"):
        parts.append(
            str(step["error"]).strip().splitlines()[0] if str(step["error"]).strip() else ""
        )
    elif step.get("status") == "skipped" and step.get("skipped_reason"):
        parts.append(str(step["skipped_reason"]))
    if step.get("outcome") != step.get("conclusion") and step.get("conclusion") == "success":
        parts.append("allowed to fail (continue_on_error)")
    if remote:
        parts.extend(remote_notes(step))
    parts.extend(warning_notes(step))
    return "; ".join(p for p in parts if p)


def warning_notes(step: dict[str, Any]) -> list[str]:
    """A success the platform qualified (an Acronis task ending `warning`), one line each."""
    return [f"warning: {w}" for w in step.get("warnings") or ()]


def duration_text(seconds: float | None) -> str:
    return format_duration(seconds) if seconds is not None else "-"


def totals_text(report: dict[str, Any]) -> str:
    totals = report.get("totals") or {}
    parts = [f"{n} {STATUS_TEXT.get(k, ('', k))[1]}" for k, n in totals.items() if n]
    return ", ".join(parts) or "no steps"


def summary_data(report: dict[str, Any]) -> dict[str, Any]:
    """The summary as plain data, for `report show --format json`."""
    key, words = verdict(report)
    return {
        "pipeline": report.get("pipeline"),
        "verdict": key,
        "verdict_text": words,
        "exit_code": report.get("exit_code"),
        "started_at": report.get("started_at"),
        "ended_at": report.get("ended_at"),
        "duration": report.get("duration"),
        "message": report.get("message"),
        "totals": report.get("totals"),
        "steps": [
            {
                "id": s.get("id"),
                "status": s.get("status"),
                "conclusion": s.get("conclusion"),
                "duration": s.get("duration"),
                "attempts": len(s.get("attempts") or ()),
                "note": step_note(s) or None,
                "beyond_p95": beyond_p95(s),
            }
            for s in report.get("steps", ())
        ],
    }


# Outside a terminal (a CI log, a pipe, a file) nothing wraps: CI logs are wide, and an error
# line cut at 80 columns is hard to read and to grep. Rich renders tables at their natural
# width when the console is this wide.
UNWRAPPED = 10_000


def summary_console(stream: Any, environ: Mapping[str, str] | None = None) -> Console:
    """The console the final summary is printed on: the terminal's width in a terminal; an
    explicit COLUMNS wins; otherwise no wrapping at all. Lines are guarded (`inert.guarded`)."""
    import os

    from rich.console import Console

    from mftrun.inert import guarded

    environ = os.environ if environ is None else environ
    tty = getattr(stream, "isatty", lambda: False)()
    width = None if tty or environ.get("COLUMNS") else UNWRAPPED
    return Console(file=guarded(stream), highlight=False, width=width)


@dataclass(frozen=True, slots=True)
class SharedCause:
    """Several steps on one environment that ended the same way for the same reason."""

    environment: str
    status: str
    note: str
    step_ids: tuple[str, ...]


def shared_causes(steps: list[dict[str, Any]]) -> list[SharedCause]:
    """Groups of two or more unsuccessful steps with the same environment, status and error,
    in the order of their first step. A skip is not a cause (it names its cause already)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for step in steps:
        status = str(step.get("status", "?"))
        if status in ("success", "skipped") or not step.get("error"):
            continue
        key = (
            str(step.get("environment", "")),
            status,
            str(step.get("conclusion")),
            str(step["error"]),
        )
        groups.setdefault(key, []).append(step)
    return [
        SharedCause(
            env, status, step_note(group[0], remote=False), tuple(str(s.get("id")) for s in group)
        )
        for (env, status, _, _), group in groups.items()
        if len(group) > 1
    ]


def print_summary(report: dict[str, Any], *, console: Console) -> None:
    """Print the step table, the totals and the verdict.

    All report text goes in as `rich.text.Text`, never as markup: an error
    message containing `[bold]` or `[/]` must print as itself; and through `inert`,
    so it cannot carry a terminal escape or a workflow command. Give `console` a
    `mftrun.inert.GuardedStream` as its file: a wrapped cell starts a line too.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from mftrun.reports.overview import BIG_RUN

    if len(report.get("steps") or ()) > BIG_RUN:  # a screen, not hundreds of success rows
        from mftrun.reports.summary_big import print_big_summary

        print_big_summary(report, console=console)
        return
    table = Table(
        title=Text(f"mftrun · {inert(report.get('pipeline', '?'))}", style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("step", overflow="fold", ratio=3)
    table.add_column("status", no_wrap=True)
    table.add_column("environment", overflow="fold", ratio=2)
    table.add_column("action", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    notes: list[tuple[str, str, str]] = []
    steps = list(report.get("steps", ()))
    shown = steps
    with_history = any(typical_text(step) for step in shown)
    if with_history:  # issue 13: tonight against the task's own history
        table.add_column("history", no_wrap=True, style="dim")
    for step in shown:
        status = str(step.get("status", "?"))
        slow = beyond_p95(step)
        cells = [
            Text(inert(step.get("id", "?"))),
            Text(inert(status_label(status)), style=STATUS_STYLE.get(status, "")),
            Text(inert(step.get("environment", ""))),
            Text(inert(step.get("action", ""))),
            Text(str(len(step.get("attempts") or ())) if step.get("attempts") else "-"),
            Text(duration_text(step.get("duration")) + (" ▲" if slow else "")),
        ]
        if with_history:
            cells.append(Text(typical_text(step) or "-"))
        table.add_row(*cells)
        if (status != "success" or step.get("warnings")) and (
            note := step_note(step, remote=False)
        ):
            notes.append((inert(step.get("id", "?")), status, inert(note)))
        elif slow:  # a success, but a slow night for this task
            notes.append((inert(step.get("id", "?")), "success", inert(slow_note(step))))
    groups = shared_causes(shown)
    console.print(table)
    # Notes go under the table, not in a column: error text wraps badly in a narrow cell.
    # One cause, one message: steps that failed for the same reason on the same environment
    # (a refused token fails every step on it) share one line that names them all.
    grouped = {sid for group in groups for sid in group.step_ids}
    for group in groups:
        line = Text("  ")
        line.append(
            STATUS_TEXT.get(group.status, ("?", group.status))[0] + " ",
            style=STATUS_STYLE.get(group.status, ""),
        )
        line.append(inert(group.environment), style="bold")
        line.append(
            inert(f": {len(group.step_ids)} steps ({', '.join(group.step_ids)}): {group.note}")
        )
        console.print(line)
    for step_id, status, note in notes:
        if step_id in grouped:
            continue
        line = Text("  ")
        symbol, style = STATUS_TEXT.get(status, ("?", status))[0], STATUS_STYLE.get(status, "")
        if status == "success":  # a note under a success is a warning
            symbol, style = "⚠", "yellow"
        line.append(symbol + " ", style=style)
        line.append(step_id, style="bold")
        line.append(": " + note)
        console.print(line)
    if notes:
        console.print()
    key, words = verdict(report)
    line = Text()
    line.append(words, style=VERDICT_STYLE.get(key, "bold"))
    line.append(
        inert(
            f" in {duration_text(report.get('duration'))}: {totals_text(report)}"
            f" (exit code {report.get('exit_code')})"
        )
    )
    console.print(line)
    if report.get("message"):
        console.print(Text(inert(report["message"])))
    for step in shown:
        for note in remote_notes(step):
            console.print(
                Text(
                    inert(
                        f"warning: step {step.get('id')}: {note} (the platform offers no cancel)"
                    ),
                    style="yellow",
                )
            )
