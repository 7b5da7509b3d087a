"""What report.html adds for a big run: the glance block, grouped rows, a compact timeline.

A 241-step night drawn as 241 timeline rows and 241 table rows is a page 50,000
px tall. Here steps are grouped (`overview.groups`: for_each instances, shared id
prefixes), each group a collapsed `<details>` (native, works without script),
the timeline is drawn thin, and the first screen says what set the duration and
what did not succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mftrun.durations import format_duration
from mftrun.reports import overview
from mftrun.reports.summary import STATUS_TEXT, status_label, step_note
from mftrun.reports.timeline import NORMAL, THIN, TRACK_X0, Axis, axis_of, frame, parse_time, rows

MAX_PROBLEMS = 20  # listed at the top; the table's filter shows every one
WORST = ("failed", "error", "timed_out", "cancelled", "running", "pending", "skipped", "success")


def glance(report: dict[str, Any]) -> dict[str, Any]:
    """The critical path, the first failures and the slowest steps, for the page's top."""
    links, seconds = overview.critical_path(report)
    index = {str(s.get("id")): n for n, s in enumerate(report.get("steps") or (), start=1)}
    problems = [
        {
            "id": str(s.get("id")),
            "n": index.get(str(s.get("id")), 0),
            "status": str(s.get("status")),
            "status_text": status_label(str(s.get("status"))),
            "note": step_note(s, remote=True),
        }
        for s in overview.troubled(report.get("steps") or ())
    ]
    slow = [
        {"id": str(s.get("id")), "n": index.get(str(s.get("id")), 0), "p95": format_duration(p95)}
        for s in report.get("steps") or ()
        if (p95 := overview.slower_than_usual(s)) is not None
    ]
    return {
        "chain": [
            {
                "id": link.id,
                "n": index.get(link.id, 0),
                "status": link.status,
                "duration": format_duration(link.duration) if link.duration is not None else "-",
                "waited": format_duration(link.waited) if link.waited >= 1 else "",
            }
            for link in links
        ],
        "chain_span": format_duration(seconds),
        "problems": problems[:MAX_PROBLEMS],
        "problems_total": len(problems),
        "slow": slow[:MAX_PROBLEMS],
        "slow_total": len(slow),
    }


def _counts(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for step in steps:
        status = str(step.get("status") or "pending")
        counts[status] = counts.get(status, 0) + 1
    return [
        {"status": k, "count": counts[k], "symbol": STATUS_TEXT.get(k, ("?", k))[0]}
        for k in WORST[::-1]
        if k in counts
    ]


def _worst(steps: Sequence[dict[str, Any]]) -> str:
    present = {str(s.get("status") or "pending") for s in steps}
    return next((k for k in WORST if k in present), "success")


def table_groups(steps: Sequence[dict[str, Any]], *, big: bool) -> list[dict[str, Any]]:
    """The step table in pieces: one piece per group for a big run (adjacent ungrouped steps
    share a piece), a single ungrouped piece otherwise. `steps` are the template's views."""
    if not big:
        return [{"key": None, "steps": list(steps)}]
    out: list[dict[str, Any]] = []
    for group in overview.groups(steps):
        if group.key is None and out and out[-1]["key"] is None:
            out[-1]["steps"].extend(group.steps)
            continue
        members = list(group.steps)
        durations = [float(s["duration"]) for s in members if s.get("duration") is not None]
        out.append(
            {
                "key": group.key,
                "steps": members,
                "counts": _counts(members),
                "worst": _worst(members),
                "longest": format_duration(max(durations)) if durations else "-",
                "critical": any(s.get("critical") for s in members),
            }
        )
    return out


def _summary_row(group: overview.Group, axis: Axis, critical: set[str]) -> dict[str, Any]:
    """One thin row standing for a collapsed group: the span from its first start to its
    last end, in the colour of its worst status, and its critical-path members drawn on it."""
    begins = [
        t for s in group.steps if (t := parse_time(s.get("started_at"))) and s.get("attempts")
    ]
    ends = [t for s in group.steps if (t := parse_time(s.get("ended_at"))) and s.get("attempts")]
    worst = _worst(group.steps)
    envelope = None
    if begins and ends:
        x0, x1 = axis.x(min(begins), TRACK_X0), axis.x(max(ends), axis.track_end)
        envelope = {"x": x0, "width": max(round(x1 - x0, 2), 2.0)}
    on_path = [s for s in group.steps if str(s.get("id")) in critical]
    marks = rows(on_path, axis, THIN, critical=critical, top=0)
    return {
        "key": group.key,
        "label": f"{group.key} ({len(group.steps)})",
        "status": worst,
        "envelope": envelope,
        "counts": _counts(group.steps),
        "critical_segments": [seg for row in marks for seg in row["segments"]],
        "critical": bool(on_path),
    }


def compact_timeline(report: dict[str, Any], critical: set[str]) -> dict[str, Any]:
    """A big run's timeline: an axis, then per group a collapsed summary row whose members,
    thin rows on the same axis, show when it is opened."""
    axis = axis_of(report)
    parts = []
    for group in overview.groups(report.get("steps") or ()):
        members = rows(group.steps, axis, THIN, critical=critical, top=0)
        parts.append(
            {
                "key": group.key,
                "summary": _summary_row(group, axis, critical) if group.key else None,
                "rows": members,
                "height": len(members) * THIN.row,
            }
        )
    return {"parts": parts, **frame(axis, 0, THIN), "normal_bar": NORMAL.bar}
