"""The report's timeline geometry: bars for steps and attempts on one shared time axis.

Computed in Python so the template stays declarative and the page needs no
script to draw it. One `Axis` per report; rows are laid out for any subset of
steps (a whole small run, or one group of a big one) with a row height of their
own, so a collapsed group and its expanded members share the same time scale.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mftrun.durations import format_duration
from mftrun.reports.summary import STATUS_TEXT, status_label

# In SVG user units (the viewBox is WIDTH wide).
WIDTH = 1000
LABEL_X = 8  # step id column
TRACK_X0 = 200  # time axis starts
TRACK_X1 = 850  # and ends
STATUS_X = 862  # status words column
AXIS = 28  # room for the tick labels above the rows
TAIL = 40  # room after the run's end for "may still be going" tails
MAX_ID_CHARS = 26
NICE_STEPS: tuple[float, ...] = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900)
NICE_STEPS += (1800, 3600, 7200, 10800, 21600, 43200, 86400)
HATCHED = ("failed", "error", "timed_out", "cancelled")


@dataclass(frozen=True, slots=True)
class Geometry:
    """Row and bar height: 26/16 for a normal run, thin rows for a big one."""

    row: float = 26
    bar: float = 16
    font: float = 12.5


NORMAL = Geometry()
THIN = Geometry(row=12, bar=8, font=9.5)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    # Mixed naive/aware values cannot be subtracted; naive ones are taken as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ran(step: dict[str, Any]) -> bool:
    """Skipped steps get start = end stamps from the executor; they did not run."""
    if step.get("attempts"):
        return True
    return bool(step.get("started_at")) and step.get("status") not in ("skipped", "pending")


def _nice_step(span: float) -> float:
    for step in NICE_STEPS:
        if span / step <= 8:
            return float(step)
    return float(NICE_STEPS[-1] * max(1, round(span / NICE_STEPS[-1] / 8)))


def _tick_label(seconds: float) -> str:
    return "0" if seconds == 0 else "+" + format_duration(round(seconds, 1))


@dataclass(frozen=True, slots=True)
class Axis:
    """The run's time axis: where a moment falls on the track."""

    start: datetime | None
    span: float
    track_end: float
    tails: bool

    @property
    def scale(self) -> float:
        return (self.track_end - TRACK_X0) / self.span

    def x(self, moment: datetime | None, default: float) -> float:
        if moment is None or self.start is None:
            return default
        offset = min(max((moment - self.start).total_seconds(), 0.0), self.span)
        return round(TRACK_X0 + offset * self.scale, 2)

    def at(self, value: str | None, default: float) -> float:
        return self.x(parse_time(value), default)

    def offset_x(self, moment: datetime | None, seconds: float) -> float | None:
        """x of a moment plus some seconds, or None when it falls past the track."""
        if moment is None or self.start is None:
            return None
        offset = (moment - self.start).total_seconds() + seconds
        return round(TRACK_X0 + min(max(offset, 0.0), self.span) * self.scale, 2)

    def ticks(self) -> list[dict[str, Any]]:
        tick = _nice_step(self.span)
        out = []
        value = 0.0
        while value <= self.span + 1e-9:
            out.append({"x": round(TRACK_X0 + value * self.scale, 2), "label": _tick_label(value)})
            value += tick
        return out


def axis_of(report: dict[str, Any]) -> Axis:
    steps = report.get("steps") or []
    known: list[datetime] = []
    for value in (report.get("started_at"), report.get("ended_at")):
        if (moment := parse_time(value)) is not None:
            known.append(moment)
    for step in steps:
        for value in (step.get("started_at"), step.get("ended_at")):
            if (moment := parse_time(value)) is not None:
                known.append(moment)
        for attempt in step.get("attempts") or ():
            for value in (attempt.get("started_at"), attempt.get("ended_at")):
                if (moment := parse_time(value)) is not None:
                    known.append(moment)
    start = parse_time(report.get("started_at")) or (min(known) if known else None)
    end = max(known) if known else start
    span = max((end - start).total_seconds(), 0.001) if start and end else 1.0
    # Remote runs left going get a dashed tail past the run's end: keep room for it.
    tails = any(step.get("remote_may_continue") for step in steps)
    return Axis(start, span, TRACK_X1 - TAIL if tails else TRACK_X1, tails)


def _segments(step: dict[str, Any], axis: Axis, status: str) -> list[dict[str, Any]]:
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
        if ran(step)
        else []
    )
    segments = []
    for attempt in spans:
        a_start, a_end = parse_time(attempt.get("started_at")), parse_time(attempt.get("ended_at"))
        x0 = axis.x(a_start, TRACK_X0)
        x1 = axis.x(a_end, axis.track_end)
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
                "unfinished": a_end is None,
                "number": number or 0,
            }
        )
    return segments


def _typical(step: dict[str, Any], axis: Axis) -> dict[str, Any] | None:
    """The p50..p95 band of earlier runs (report.json `history`), from the step's start."""
    history = step.get("history")
    if not isinstance(history, dict) or not ran(step):
        return None
    try:
        p50, p95 = float(history["p50_s"]), float(history["p95_s"])
    except (KeyError, TypeError, ValueError):
        return None
    start = parse_time(step.get("started_at"))
    x0, x1 = axis.offset_x(start, p50), axis.offset_x(start, max(p95, p50))
    if x0 is None or x1 is None:
        return None
    duration = step.get("duration")
    slow = isinstance(duration, (int, float)) and duration > p95
    title = (
        f"typical: {format_duration(p50)} to {format_duration(p95)} "
        f"over {history.get('runs', '?')} earlier runs"
    )
    return {"x": x0, "width": max(round(x1 - x0, 2), 1.5), "slow": slow, "title": title}


def rows(
    steps: Sequence[dict[str, Any]],
    axis: Axis,
    geometry: Geometry = NORMAL,
    *,
    critical: Collection[str] = (),
    top: float = AXIS,
) -> list[dict[str, Any]]:
    """One row per step, from y = top down, `geometry` high each."""
    out = []
    for index, step in enumerate(steps):
        y = top + index * geometry.row
        status = str(step.get("status") or "pending")
        segments = _segments(step, axis, status)
        tail = None
        if step.get("remote_may_continue") and segments:
            last = segments[-1]
            tail = {"x": float(last["x"]) + float(last["width"]), "x2": TRACK_X1 - 4}
        words = STATUS_TEXT.get(status, ("?", status))
        sid = str(step.get("id"))
        typical = _typical(step, axis)
        out.append(
            {
                "id": sid,
                "short_id": short(sid, MAX_ID_CHARS),
                "y": y,
                "bar_y": y + (geometry.row - geometry.bar) / 2,
                "text_y": y + geometry.row / 2 + geometry.font / 3,
                "status": status,
                "status_text": f"{words[0]} {words[1]}",
                "segments": segments,
                "not_run": not segments,
                "tail": tail,
                "still_going": bool(step.get("remote_may_continue")),
                "stripe": index % 2 == 1,
                "critical": sid in critical,
                "typical": typical,
                "slow": bool(typical and typical["slow"]),
            }
        )
    return out


def frame(axis: Axis, count: int, geometry: Geometry = NORMAL) -> dict[str, Any]:
    """What the template needs around `count` rows: ticks, size, columns."""
    return {
        "ticks": axis.ticks(),
        "height": AXIS + count * geometry.row + 8,
        "width": WIDTH,
        "track_x0": TRACK_X0,
        "track_x1": axis.track_end,
        "tails": axis.tails,
        "status_x": STATUS_X,
        "label_x": LABEL_X,
        "bar": geometry.bar,
        "row": geometry.row,
        "font": geometry.font,
        "axis": AXIS,
        "span": format_duration(axis.span),
    }


def timeline(report: dict[str, Any], *, critical: Collection[str] = ()) -> dict[str, Any]:
    """Rows of bars for every step and attempt, positioned on one shared time axis."""
    axis = axis_of(report)
    steps = report.get("steps") or []
    return {"rows": rows(steps, axis, critical=critical), **frame(axis, len(steps))}
