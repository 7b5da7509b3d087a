"""report.html: one self-contained page rendered from the report dict.

Geometry for the timeline is computed here, in Python, so the template stays
declarative and the page needs no script. Jinja2 autoescaping is on for the
template: every string from the report (step ids, platform error messages,
outputs) is text, never markup.
"""

from __future__ import annotations

from datetime import timezone
from functools import lru_cache
from pathlib import PurePath
from types import SimpleNamespace
from typing import Any
from collections.abc import Iterator

from mftrun.durations import format_duration
from mftrun.reports.summary import (
    STATUS_TEXT,
    remote_notes,
    status_label,
    step_note,
    totals_text,
    verdict,
)
from mftrun.reports.timeline import parse_time, ran, short, timeline

__all__ = ["render_html", "render_html_chunks", "timeline"]

OUTPUT_INLINE = 140  # characters of an output value shown before folding it
CHIP_ORDER = (
    "success",
    "failed",
    "error",
    "timed_out",
    "cancelled",
    "skipped",
    "pending",
    "running",
)
_parse = parse_time
_short = short
_ran = ran


def _clock(value: str | None) -> str:
    moment = _parse(value)
    if moment is None:
        return "-"
    # not strftime: at three times per step it was a third of a 10,000-step page's time
    utc = moment.astimezone(timezone.utc)
    return f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"


def _when(value: str | None) -> str:
    moment = _parse(value)
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _output(value: Any) -> dict[str, Any]:
    """Short values inline; long ones (whole remote run objects) folded, pretty-printed."""
    import json

    if isinstance(value, str):
        text, full = value, value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        full = None
    if len(text) <= OUTPUT_INLINE:
        return {"short": text, "full": None}
    if full is None:  # pretty-printing is slow (pure-Python json): only for what gets folded
        full = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2)
    return {"short": text[: OUTPUT_INLINE - 20] + "…", "full": full or text}


def _remote_name(outputs: dict[str, Any]) -> str | None:
    """The task's name as the platform reports it (MFT's run object says `taskName`).

    Shown in the row because people know tasks by name, not UUID; it is platform
    text, so it goes through autoescaping like everything else.
    """
    run = outputs.get("run")
    for value in (outputs.get("task_name"), run.get("taskName") if isinstance(run, dict) else None):
        if isinstance(value, str) and value.strip():
            return _short(value.strip(), 120)
    return None


def _step_view(
    step: dict[str, Any], n: int = 0, critical: set[str] | None = None
) -> dict[str, Any]:
    attempts = []
    for attempt in step.get("attempts") or ():
        a_start, a_end = _parse(attempt.get("started_at")), _parse(attempt.get("ended_at"))
        attempts.append(
            {
                **attempt,
                "status_text": status_label(str(attempt.get("status"))),
                "start": _clock(attempt.get("started_at")),
                "end": _clock(attempt.get("ended_at")),
                "duration": format_duration(max((a_end - a_start).total_seconds(), 0.0))
                if a_start and a_end
                else "unfinished",
                # the step's error usually repeats the last attempt's message: say it once
                "message": None
                if attempt.get("message") == step.get("error")
                else attempt.get("message"),
            }
        )
    status = str(step.get("status") or "pending")
    outputs = step.get("outputs") or {}
    # The task parameters each start sent (report.json since issue 11 §7; older: none).
    sent = [
        (a.get("number"), [(str(k), _output(v)["short"]) for k, v in a["parameters"].items()])
        for a in step.get("attempts") or ()
        if isinstance(a.get("parameters"), dict) and a["parameters"]
    ]
    allowed = step.get("outcome") != step.get("conclusion") and step.get("conclusion") == "success"
    return {
        **step,
        "status": status,
        "status_text": status_label(status),
        "conclusion_text": status_label(str(step.get("conclusion"))),
        "allowed_failure": allowed,
        "start": _clock(step.get("started_at")) if _ran(step) else "-",
        "duration_text": format_duration(step["duration"])
        if step.get("duration") is not None and _ran(step)
        else "-",
        "attempt_views": attempts,
        "sent": sent,
        "outputs_list": [(str(k), _output(v)) for k, v in outputs.items()],
        "remote_name": _remote_name(outputs),
        "notes": remote_notes(step),
        "warnings": list(step.get("warnings") or ()),
        # A plain one-attempt success needs no box: its run id goes in the row.
        "show_attempts": bool(attempts) and (status != "success" or len(attempts) > 1),
        "run_ids": [a["run_id"] for a in attempts if a.get("run_id")],
        "has_details": bool(
            step.get("error")
            or outputs
            or step.get("skipped_reason")
            or step.get("remote_may_continue")
            or sent
            or step.get("warnings")
            or (attempts and (status != "success" or len(attempts) > 1))
        ),
        "note": step_note(step),
        "n": n,  # the row's anchor, #step-<n>
        "critical": step.get("id") in (critical or ()),
        "slow_p95": _slow_text(step),
    }


def _slow_text(step: dict[str, Any]) -> str:
    from mftrun.reports.overview import slower_than_usual

    p95 = slower_than_usual(step)
    return "" if p95 is None else f"slower than usual (p95 {format_duration(p95)})"


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("mftrun.reports", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html", "j2"), default=True, default_for_string=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _batched(pieces: Iterator[str], size: int = 4096) -> Iterator[str]:
    """Jinja yields every text run and every `{{ }}` on its own (700,000 pieces for 10,000
    steps): written in batches, the file gets a few hundred writes instead."""
    batch: list[str] = []
    for piece in pieces:
        batch.append(piece)
        if len(batch) >= size:
            yield "".join(batch)
            batch.clear()
    if batch:
        yield "".join(batch)


def render_html(report: dict[str, Any]) -> str:
    return "".join(render_html_chunks(report))


def _attrs(item: dict[str, Any]) -> SimpleNamespace:
    """A dict as attributes. Jinja looks `x.y` up as an attribute first: on a dict that
    fails (an exception each time) before the key is tried; a namespace answers at once.
    A 10,000-step page makes close to a million such lookups."""
    return SimpleNamespace(**item)


def _fast(part: dict[str, Any], key: str) -> dict[str, Any]:
    """part[key] (a list of step views) as namespaces, their attempts too."""
    items = []
    for item in part[key]:
        if "attempt_views" in item:
            item = {**item, "attempt_views": [_attrs(a) for a in item["attempt_views"]]}
        items.append(_attrs(item))
    return {**part, key: items}


def _with_svg(tl: dict[str, Any]) -> dict[str, Any]:
    from mftrun.reports.svg_rows import rows_svg

    return {**tl, "rows_svg": rows_svg(tl["rows"], tl)}


def _compact_svg(compact: dict[str, Any]) -> dict[str, Any]:
    from mftrun.reports.svg_rows import rows_svg

    parts = [{**part, "rows_svg": rows_svg(part["rows"], compact)} for part in compact["parts"]]
    return {**compact, "parts": parts}


def render_html_chunks(report: dict[str, Any]) -> Iterator[str]:
    """The page in pieces, so a 10,000-step report is written without holding it whole."""
    from mftrun.reports import html_glance, overview
    from mftrun.reports.page_script import SCRIPT, SCRIPT_HASH

    key, words = verdict(report)
    raw_steps = report.get("steps") or []
    big = len(raw_steps) > overview.BIG_RUN
    at_a_glance = html_glance.glance(report)
    critical = {link["id"] for link in at_a_glance["chain"]}
    steps = [_step_view(s, n, critical) for n, s in enumerate(raw_steps, start=1)]
    counts = report.get("totals") or {}
    order = [k for k in CHIP_ORDER if k in counts] + [k for k in counts if k not in CHIP_ORDER]
    totals = [
        {
            "status": k,
            "count": counts[k],
            "symbol": STATUS_TEXT.get(k, ("?", k))[0],
            "words": STATUS_TEXT.get(k, ("?", k))[1],
        }
        for k in order
        if counts[k]
    ]
    still_going = [(s["id"], note) for s in steps for note in s["notes"]]
    sha = str(report.get("sha256") or "")
    return _batched(
        _environment()
        .get_template("report.html.j2")
        .generate(
            report=report,
            verdict_key=key,
            verdict_text=words,
            totals=totals,
            totals_text=totals_text(report),
            steps=steps,
            big=big,
            glance=at_a_glance,
            groups=[_fast(g, "steps") for g in html_glance.table_groups(steps, big=big)],
            timeline=_with_svg(timeline(report, critical=critical)) if not big else None,
            compact=_compact_svg(html_glance.compact_timeline(report, critical)) if big else None,
            script=SCRIPT if big else "",
            script_hash=SCRIPT_HASH if big else "",
            still_going=still_going,
            variables=sorted((str(k), str(v)) for k, v in (report.get("variables") or {}).items()),
            started=_when(report.get("started_at")),
            ended=_when(report.get("ended_at")),
            duration=format_duration(report["duration"])
            if report.get("duration") is not None
            else "-",
            sha_short=sha[:12],
            file_name=PurePath(str(report.get("file") or "")).name,
            file_path=str(report.get("file") or ""),
        )
    )
