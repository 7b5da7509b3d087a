"""A step's duration against its history (report.json's optional `history`), in words.

Why its own module: the console summary, `report show --format json` and the HTML timeline
(its faint band) all ask the same two questions of a step: what is its typical range, and
did tonight go beyond its p95? One answer here keeps them agreeing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mftrun.durations import format_duration


def history_of(step: Mapping[str, Any]) -> Mapping[str, Any] | None:
    found = step.get("history")
    if not isinstance(found, Mapping):
        return None
    try:
        if int(found["runs"]) >= 1 and float(found["p95_s"]) >= 0:
            return found
    except (KeyError, TypeError, ValueError):
        pass
    return None


def beyond_p95(step: Mapping[str, Any]) -> bool:
    """A success or failure that took longer than its task's p95: a slow night for it."""
    found, duration = history_of(step), step.get("duration")
    if found is None or not isinstance(duration, (int, float)):
        return False
    return float(duration) > float(found["p95_s"])


def typical_text(step: Mapping[str, Any]) -> str:
    """'typical 9m50s, p95 10m40s (30 runs)', or '' without history."""
    found = history_of(step)
    if found is None:
        return ""
    return (
        f"typical {format_duration(float(found['p50_s']))}, "
        f"p95 {format_duration(float(found['p95_s']))} ({int(found['runs'])} run(s))"
    )


def slow_note(step: Mapping[str, Any]) -> str:
    """The line the summary prints under its table for a step beyond its p95."""
    if not beyond_p95(step):
        return ""
    return f"took {format_duration(float(step['duration']))}, beyond its {typical_text(step)}"
