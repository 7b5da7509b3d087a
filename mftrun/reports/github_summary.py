"""The steps part of the GitHub job summary: complete for a small run, a digest for a big one.

GitHub refuses a step summary over 1 MiB. A small run lists every step (those
that did not succeed first); a big one lists the critical path, the slowest
steps and every step that did not succeed, within a byte budget, and counts the
successes per group instead of listing them. `cell` is the caller's Markdown
escaper for text from outside (github._cell), passed in to keep one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mftrun.reports import overview
from mftrun.reports.summary import duration_text, status_label, step_note

BUDGET = 900_000  # bytes of step rows: under GitHub's 1 MiB with room for the rest
HEADER = [
    "| Step | Status | Environment | Action | Attempts | Duration | Note |",
    "|---|---|---|---|---:|---:|---|",
]


def _row(step: dict[str, Any], cell: Callable[[object], str]) -> str:
    return (
        "| "
        + " | ".join(
            (
                cell(step.get("id")),
                status_label(str(step.get("status"))),  # mftrun's words
                cell(step.get("environment")),
                str(step.get("action")),  # mftrun's word
                str(len(step.get("attempts") or ()) or "-"),
                duration_text(step.get("duration")),
                cell(step_note(step)),
            )
        )
        + " |"
    )


def _rows(steps: Sequence[dict[str, Any]], cell: Callable[[object], str]) -> tuple[list[str], int]:
    """Rows within the byte budget, and how many steps did not fit."""
    out, used = list(HEADER), 0
    for n, step in enumerate(steps):
        row = _row(step, cell)
        used += len(row.encode()) + 1
        if used > BUDGET:
            return out, len(steps) - n
        out.append(row)
    return out, 0


def step_lines(report: dict[str, Any], cell: Callable[[object], str]) -> list[str]:
    steps = list(report.get("steps") or ())
    if not steps:
        return []
    if len(steps) <= overview.BIG_RUN:
        rows, left = _rows(overview.first_troubled(steps), cell)
        return ["", *rows] + ([f"\n{left} more steps: see report.html."] if left else [])
    out = [""]
    links, seconds = overview.critical_path(report)
    if links:
        chain = " → ".join(f"{cell(link.id)} {duration_text(link.duration)}" for link in links)
        out.append(f"**Critical path** ({duration_text(seconds)}): {chain}  ")
    slow = overview.slowest(report, 5)
    if slow:
        out.append(
            "**Slowest:** "
            + ", ".join(f"{cell(s.get('id'))} {duration_text(s.get('duration'))}" for s in slow)
        )
    problems = overview.troubled(steps)
    if problems:
        rows, left = _rows(problems, cell)
        out += ["", f"**Did not succeed ({len(problems)}):**", "", *rows]
        if left:
            out += ["", f"{left} more steps that did not succeed: see report.html or junit.xml."]
    good = [s for s in steps if s.get("status") == "success" and not s.get("warnings")]
    if good:
        per_group: dict[str, int] = {}
        for step in good:
            key = overview.group_key(str(step.get("id")))
            per_group[key] = per_group.get(key, 0) + 1
        shown = sorted(per_group.items(), key=lambda kv: -kv[1])[:20]
        parts = ", ".join(f"{cell(k)} {n}" for k, n in shown)
        more = f" and {len(per_group) - 20} more groups" if len(per_group) > 20 else ""
        out += [
            "",
            f"{len(good)} steps succeeded ({parts}{more}): each is in report.html and junit.xml.",
        ]
    return out
