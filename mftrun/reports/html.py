"""report.html: one self-contained page rendered from the report dict.

Geometry for the timeline is computed here, in Python, so the template stays
declarative and the page needs no script. Jinja2 autoescaping is on for the
template: every string from the report (step ids, platform error messages,
outputs) is text, never markup.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import PurePath
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

# Timeline geometry, in SVG user units (the viewBox is WIDTH wide).
WIDTH = 1000
LABEL_X = 8  # step id column
TRACK_X0 = 200  # time axis starts
TRACK_X1 = 850  # and ends
STATUS_X = 862  # status words column
ROW = 26
BAR = 16
AXIS = 28  # room for the tick labels above the rows
TAIL = 40  # room after the run's end for "may still be going" tails
MAX_ID_CHARS = 26
NICE_STEPS = (
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)
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
HATCHED = ("failed", "error", "timed_out", "cancelled")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    # Mixed naive/aware values cannot be subtracted; naive ones are taken as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _clock(value: str | None) -> str:
    moment = _parse(value)
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%H:%M:%S")


def _when(value: str | None) -> str:
    moment = _parse(value)
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nice_step(span: float) -> float:
    for step in NICE_STEPS:
        if span / step <= 8:
            return float(step)
    return float(NICE_STEPS[-1] * max(1, round(span / NICE_STEPS[-1] / 8)))


def _tick_label(seconds: float) -> str:
    return "0" if seconds == 0 else "+" + format_duration(round(seconds, 1))


def timeline(report: dict[str, Any]) -> dict[str, Any]:
    """Rows of bars for every step and attempt, positioned on one shared time axis."""
    steps = report.get("steps") or []
    times = [_parse(report.get("started_at")), _parse(report.get("ended_at"))]
    for step in steps:
        times += [_parse(step.get("started_at")), _parse(step.get("ended_at"))]
        for attempt in step.get("attempts") or ():
            times += [_parse(attempt.get("started_at")), _parse(attempt.get("ended_at"))]
    known = [t for t in times if t is not None]
    start = _parse(report.get("started_at")) or (min(known) if known else None)
    end = max(known) if known else start
    span = max((end - start).total_seconds(), 0.001) if start and end else 1.0
    # Remote runs left going get a dashed tail past the run's end: keep room for it.
    tails = any(step.get("remote_may_continue") for step in steps)
    track_end = TRACK_X1 - TAIL if tails else TRACK_X1
    scale = (track_end - TRACK_X0) / span

    def x(value: str | None, default: float) -> float:
        moment = _parse(value)
        if moment is None or start is None:
            return default
        offset = min(max((moment - start).total_seconds(), 0.0), span)
        return round(TRACK_X0 + offset * scale, 2)

    rows = []
    for index, step in enumerate(steps):
        y = AXIS + index * ROW
        status = str(step.get("status") or "pending")
        segments: list[dict[str, Any]] = []
        attempts = step.get("attempts") or []
        spans = attempts or (
            [
                {
                    "number": None,
                    "started_at": step.get("started_at"),
                    "ended_at": step.get("ended_at"),
                    "status": status,
                }
            ]
            if _ran(step)
            else []
        )
        for attempt in spans:
            x0 = x(attempt.get("started_at"), TRACK_X0)
            unfinished = not attempt.get("ended_at")
            x1 = x(attempt.get("ended_at"), track_end)
            width = max(round(x1 - x0, 2), 2.0)  # a zero-length run still shows
            a_status = str(attempt.get("status") or status)
            number = attempt.get("number")
            title = [
                f"{step.get('id')}" + (f" attempt {number}" if number else ""),
                status_label(a_status),
            ]
            if attempt.get("run_id"):
                title.append(f"remote run {attempt['run_id']}")
            if attempt.get("remote_status"):
                title.append(f"remote status {attempt['remote_status']}")
            a_start, a_end = _parse(attempt.get("started_at")), _parse(attempt.get("ended_at"))
            if a_start and a_end:
                title.append(format_duration(max((a_end - a_start).total_seconds(), 0.0)))
            segments.append(
                {
                    "x": x0,
                    "width": width,
                    "status": a_status,
                    "hatched": a_status in HATCHED,
                    "label": f"#{number}" if number and len(attempts) > 1 and width >= 26 else "",
                    "title": " · ".join(title),
                    "unfinished": unfinished,
                    "number": number or 0,
                }
            )
        still_going = step.get("remote_may_continue") or []
        tail = None
        if still_going and segments:
            last = segments[-1]
            tail_x = float(last["x"]) + float(last["width"])
            tail = {"x": tail_x, "x2": TRACK_X1 - 4}
        words = STATUS_TEXT.get(status, ("?", status))
        rows.append(
            {
                "id": str(step.get("id")),
                "short_id": _short(str(step.get("id")), MAX_ID_CHARS),
                "y": y,
                "bar_y": y + (ROW - BAR) / 2,
                "text_y": y + ROW / 2 + 4,
                "status": status,
                "status_text": f"{words[0]} {words[1]}",
                "segments": segments,
                "not_run": not segments,
                "tail": tail,
                "still_going": bool(still_going),
                "stripe": index % 2 == 1,
            }
        )

    tick = _nice_step(span)
    ticks = []
    value = 0.0
    while value <= span + 1e-9:
        ticks.append({"x": round(TRACK_X0 + value * scale, 2), "label": _tick_label(value)})
        value += tick
    height = AXIS + len(steps) * ROW + 8
    return {
        "rows": rows,
        "ticks": ticks,
        "height": height,
        "width": WIDTH,
        "track_x0": TRACK_X0,
        "track_x1": track_end,
        "tails": tails,
        "status_x": STATUS_X,
        "label_x": LABEL_X,
        "bar": BAR,
        "row": ROW,
        "axis": AXIS,
        "span": format_duration(span),
    }


def _ran(step: dict[str, Any]) -> bool:
    """Skipped steps get start = end stamps from the executor; they did not run."""
    if step.get("attempts"):
        return True
    return bool(step.get("started_at")) and step.get("status") not in ("skipped", "pending")


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


def _step_view(step: dict[str, Any]) -> dict[str, Any]:
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
    }


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


def render_html(report: dict[str, Any]) -> str:
    return "".join(render_html_chunks(report))


def render_html_chunks(report: dict[str, Any]) -> Iterator[str]:
    """The page in pieces, so a 10,000-step report is written without holding it whole."""
    key, words = verdict(report)
    steps = [_step_view(s) for s in report.get("steps") or []]
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
    return (
        _environment()
        .get_template("report.html.j2")
        .generate(
            report=report,
            verdict_key=key,
            verdict_text=words,
            totals=totals,
            totals_text=totals_text(report),
            steps=steps,
            timeline=timeline(report),
            still_going=still_going,
            variables=sorted((str(k), str(v)) for k, v in (report.get("variables") or {}).items()),
            started=_when(report.get("started_at")),
            ended=_when(report.get("ended_at")),
            duration=format_duration(report["duration"])
            if report.get("duration") is not None
            else "-",
            sha_short=sha[:12],
            file_name=PurePath(str(report.get("file") or "")).name,
        )
    )
