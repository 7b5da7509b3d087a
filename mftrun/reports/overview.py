"""A big run at a glance: groups of steps, the chain that set the duration, the slowest.

Shared by the console's final summary, report.html and the GitHub step summary,
so all three name the same critical path and the same groups. Pure functions
over the report dict (report.json), so `mftrun report show` sees what `apply` saw.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mftrun.critical_path import gating_chain

# A run of more steps than this is "big": summaries stop listing successes one by one and the
# HTML page groups rows. Below it every step is shown as before, so small runs read unchanged.
BIG_RUN = 40
_SEPARATOR = re.compile(r"[-_.:/ ]")


def group_key(step_id: str) -> str:
    """The group a step belongs to: a for_each instance's base id (`push[acme]` -> `push`),
    else its id up to the first separator (`pull-017`, `pull_eu` -> `pull`)."""
    if "[" in step_id:
        return step_id.split("[", 1)[0]
    return _SEPARATOR.split(step_id, 1)[0] or step_id


@dataclass(frozen=True, slots=True)
class Group:
    """Steps sharing a group key, in file order; `key` is None for a step on its own."""

    key: str | None
    steps: tuple[dict[str, Any], ...]


def groups(steps: Sequence[dict[str, Any]]) -> list[Group]:
    """Groups in the order of their first step; a key held by one step only is no group."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_key.setdefault(group_key(str(step.get("id"))), []).append(step)
    out: list[Group] = []
    for key, members in by_key.items():
        out.append(Group(key if len(members) > 1 else None, tuple(members)))
    return out


def _stamp(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Link:
    """One step of the critical path, with what a reader needs next to its id."""

    id: str
    status: str
    duration: float | None
    waited: float  # seconds between the previous link's end and this one's start


def critical_path(report: dict[str, Any]) -> tuple[tuple[Link, ...], float]:
    """The observed chain that set the run's duration (`critical_path.gating_chain`) and its
    span in seconds. Reports without `needs` (older ones) give a chain of one step."""
    steps = [s for s in report.get("steps") or () if s.get("status") not in ("skipped", "pending")]
    needs = {str(s.get("id")): [str(n) for n in s.get("needs") or ()] for s in steps}
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    for step in steps:
        sid = str(step.get("id"))
        begin, end = _stamp(step.get("started_at")), _stamp(step.get("ended_at"))
        if begin is not None and end is not None:
            started[sid], ended[sid] = begin, end
    chain = gating_chain(needs, started, ended)
    by_id = {str(s.get("id")): s for s in steps}
    links = []
    previous_end: float | None = None
    for sid in chain.steps:
        step = by_id[sid]
        waited = max(0.0, started[sid] - previous_end) if previous_end is not None else 0.0
        links.append(Link(sid, str(step.get("status")), step.get("duration"), waited))
        previous_end = ended[sid]
    return tuple(links), chain.seconds


def slowest(report: dict[str, Any], count: int = 5) -> list[dict[str, Any]]:
    """The steps that ran longest, longest first (ties in file order)."""
    timed = [s for s in report.get("steps") or () if isinstance(s.get("duration"), (int, float))]
    return sorted(timed, key=lambda s: -float(s["duration"]))[:count]


def troubled(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step that did not plainly succeed (failures first, then the rest), file order
    within each: what the reader of a big run's summary is looking for."""
    rank = {"failed": 0, "error": 0, "timed_out": 1, "cancelled": 2, "running": 2, "pending": 3}
    bad = [s for s in steps if s.get("status") != "success" or s.get("warnings")]
    return sorted(bad, key=lambda s: rank.get(str(s.get("status")), 4))


def first_troubled(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps to put first in a complete listing (JUnit, step summary): the not-successes in
    the order `troubled` gives, then the successes in file order."""
    bad = troubled(steps)
    seen = {id(s) for s in bad}
    return bad + [s for s in steps if id(s) not in seen]


def slower_than_usual(step: dict[str, Any]) -> float | None:
    """The p95 of earlier runs when this step took longer than it (report.json `history`)."""
    history = step.get("history")
    duration = step.get("duration")
    if not isinstance(history, dict) or not isinstance(duration, (int, float)):
        return None
    p95 = history.get("p95_s")
    return float(p95) if isinstance(p95, (int, float)) and duration > p95 else None
