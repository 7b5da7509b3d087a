"""The final summary of a big run: a screen, not a table of hundreds of successes.

The verdict, the counts, the critical path (the chain that set the duration),
the slowest steps and every step that did not succeed (one line each; steps
failed for one shared cause share a line). Successes are counted, not listed.
All text goes in as `rich.text.Text` through `inert`, like the full table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mftrun.inert import inert
from mftrun.reports import overview
from mftrun.reports.summary import (
    STATUS_STYLE,
    STATUS_TEXT,
    VERDICT_STYLE,
    duration_text,
    remote_notes,
    shared_causes,
    step_note,
    totals_text,
    verdict,
)

if TYPE_CHECKING:
    from rich.console import Console

SLOWEST = 5
MAX_PROBLEM_LINES = 40  # beyond that a screen is full anyway: the reports list every one


def print_big_summary(report: dict[str, Any], *, console: Console) -> None:
    from rich.text import Text

    steps = list(report.get("steps") or ())
    title = Text(f"mftrun · {inert(report.get('pipeline', '?'))}", style="bold")
    title.append(f"  ({len(steps):,} steps)", style="dim")
    console.print(title)
    links, seconds = overview.critical_path(report)
    if links:
        line = Text("  critical path ", style="bold")
        line.append(f"({duration_text(seconds)}, the chain that set the duration): ")
        for n, link in enumerate(links):
            if n:
                line.append(" → ", style="dim")
            line.append(inert(link.id), style=STATUS_STYLE.get(link.status, ""))
            line.append(f" {duration_text(link.duration)}")
        console.print(line)
    slow = overview.slowest(report, SLOWEST)
    if slow:
        line = Text("  slowest: ", style="bold")
        line.append(
            ", ".join(f"{inert(s.get('id'))} {duration_text(s.get('duration'))}" for s in slow)
        )
        console.print(line)
    later = [s for s in steps if overview.slower_than_usual(s) is not None]
    if later:
        names = ", ".join(inert(s.get("id")) for s in later[:10])
        more = f" and {len(later) - 10} more" if len(later) > 10 else ""
        console.print(Text(f"  slower than usual (beyond p95): {names}{more}", style="yellow"))
    _print_problems(overview.troubled(steps), console)
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
    for step in steps:
        for note in remote_notes(step):
            console.print(
                Text(
                    inert(
                        f"warning: step {step.get('id')}: {note} (the platform offers no cancel)"
                    ),
                    style="yellow",
                )
            )


def _print_problems(problems: list[dict[str, Any]], console: Console) -> None:
    from rich.text import Text

    if not problems:
        return
    console.print(Text(f"  did not succeed ({len(problems):,}):", style="bold"))
    groups = shared_causes(problems)
    grouped = {sid for group in groups for sid in group.step_ids}
    lines: list[Text] = []
    for group in groups:
        line = Text("    ")
        line.append(
            STATUS_TEXT.get(group.status, ("?", ""))[0] + " ",
            style=STATUS_STYLE.get(group.status, ""),
        )
        ids = ", ".join(group.step_ids[:8]) + (" …" if len(group.step_ids) > 8 else "")
        line.append(
            inert(f"{group.environment}: {len(group.step_ids)} steps ({ids}): {group.note}")
        )
        lines.append(line)
    for step in problems:
        sid = str(step.get("id"))
        if sid in grouped:
            continue
        status = str(step.get("status"))
        symbol, style = STATUS_TEXT.get(status, ("?", status))[0], STATUS_STYLE.get(status, "")
        if status == "success":  # listed for its warning
            symbol, style = "⚠", "yellow"
        line = Text("    ")
        line.append(symbol + " ", style=style)
        line.append(inert(sid), style="bold")
        note = step_note(step, remote=False)
        line.append(
            inert(f" {STATUS_TEXT.get(status, ('', status))[1]}" + (f": {note}" if note else ""))
        )
        lines.append(line)
    for line in lines[:MAX_PROBLEM_LINES]:
        console.print(line)
    if len(lines) > MAX_PROBLEM_LINES:
        console.print(
            Text(
                f"    … and {len(lines) - MAX_PROBLEM_LINES:,} more: every step is in the reports",
                style="dim",
            )
        )
