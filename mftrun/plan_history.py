"""What `plan` says about time: each step's recorded durations, the night's expected length
and worst case, and the settings that contradict them (warnings with the file's positions).

Why in `plan` and not only in reports: a timeout below a task's p95 fails about one night
in twenty, and that is cheaper to learn at review time than at 3 a.m. Pure functions over
the pipeline and a `HistoryBook`; the command only opens the store and prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mftrun.critical_path import longest_path
from mftrun.durations import format_duration
from mftrun.model import Pipeline, Position, Step
from mftrun.poll_schedule import Expectation, preview, window
from mftrun.state.history import HistoryBook


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """A contradiction between the file's settings and what history (or arithmetic) says."""

    position: Position
    message: str
    step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.position.file,
            "line": self.position.line,
            "column": self.position.column,
            "step": self.step,
            "message": self.message,
        }

    def text(self) -> str:
        return f"{self.position}: warning: {self.message}"


def retries_budget(step: Step, run_seconds: float) -> float:
    """Seconds the step needs if every attempt runs `run_seconds` and every retry is used."""
    r = step.retries
    delays = sum(r.delay * r.backoff**i for i in range(r.attempts))
    return (r.attempts + 1) * run_seconds + delays


# Where a setting is written: (step or None for the run, setting name) -> its position.
Locator = Callable[[Step | None, str], Position]


def _at_step(step: Step | None, setting: str) -> Position:
    raise LookupError  # no document to look in: the step's (or the run's) own position


def locator_of(path: str) -> Locator:
    """Finds the key that holds a setting in the file as written: the step's own `timeout`
    or `retries`, else the one in `defaults` (also inside an included file), else the
    top-level `timeout` for the run; a warning points there, not at the step."""
    from mftrun import include, loader

    try:
        with open(path, "rb") as handle:
            doc, _ = loader.load_bytes(handle.read(), path)
    except OSError:
        return _at_step
    if doc is None:
        return _at_step
    doc, _ = include.resolve(doc)
    by_place: dict[tuple[int, int], int] = {}
    steps = doc.data.get("steps") if isinstance(doc.data, dict) else None
    for i in range(len(steps) if isinstance(steps, list) else 0):
        place = doc.position(("steps", i))
        by_place[(place.line, place.column)] = i

    def locate(step: Step | None, setting: str) -> Position:
        candidates: list[tuple[Any, ...]] = [(setting,)]
        if step is not None:
            i = by_place.get((step.position.line, step.position.column))
            candidates = [("steps", i, setting)] if i is not None else []
            candidates.append(("defaults", setting))
        for where in candidates:
            if where in doc.key_positions:
                found = doc.position(where, key=True)
                return Position(found.file, found.line, found.column)
        raise LookupError(setting)

    return locate


def warnings(
    pipeline: Pipeline, book: HistoryBook, locate: Locator = _at_step
) -> list[PlanWarning]:
    """Every contradiction, once: the instances of a for_each group share their settings, so
    a warning they all earn is said once for the group, naming how many it concerns."""
    found = _warnings(pipeline, book, locate)
    out: list[PlanWarning] = []
    by_group: dict[tuple[str, str], list[PlanWarning]] = {}
    groups = {s.id: s.group for s in pipeline.steps if s.group is not None}
    for warning in found:
        group = groups.get(warning.step or "")
        if group is None:
            out.append(warning)
            continue
        kind = "timeout" if "is below its task's p95" in warning.message else "retries"
        first = by_group.setdefault((group, kind), [])
        if not first:
            out.append(warning)
        first.append(warning)
    for (group, _), same in by_group.items():
        if len(same) > 1:
            i = out.index(same[0])
            out[i] = PlanWarning(
                same[0].position,
                f"{same[0].message} (and {len(same) - 1} more instance(s) of {group})",
                same[0].step,
            )
    return out


def _where(locate: Locator, step: Step | None, setting: str, fallback: Position) -> Position:
    try:
        return locate(step, setting)
    except LookupError:
        return fallback


def _warnings(pipeline: Pipeline, book: HistoryBook, locate: Locator) -> list[PlanWarning]:
    out: list[PlanWarning] = []
    for step in pipeline.steps:
        expected = book.expect(step.id)
        timeout = step.timeout
        if timeout is None:
            continue
        if expected is not None and timeout < expected.p95:
            out.append(
                PlanWarning(
                    _where(locate, step, "timeout", step.position),
                    f"step {step.id}: timeout {format_duration(timeout)} is below its task's "
                    f"p95 of {format_duration(expected.p95)} ({expected.runs} run(s)): "
                    "expect it to time out on slow nights",
                    step.id,
                )
            )
        if step.retries.attempts:
            run = expected.p50 if expected is not None else 0.0
            need = retries_budget(step, run)
            if need > timeout:
                basis = (
                    f"{step.retries.attempts + 1} attempts of the typical "
                    f"{format_duration(run)} plus the retry delays"
                    if expected is not None
                    else "the retry delays alone"
                )
                out.append(
                    PlanWarning(
                        _where(locate, step, "retries", step.position),
                        f"step {step.id}: retries {step.retries.attempts} cannot fit the step "
                        f"timeout {format_duration(timeout)}: {basis} take "
                        f"{format_duration(need)}",
                        step.id,
                    )
                )
    worst = worst_case(pipeline, book)
    if pipeline.timeout is not None and worst is not None and pipeline.timeout < worst[1]:
        out.append(
            PlanWarning(
                _where(locate, None, "timeout", pipeline.position),
                f"run timeout {format_duration(pipeline.timeout)} is below the worst-case "
                f"critical path of {format_duration(worst[1])} ({' -> '.join(worst[0])})",
            )
        )
    return out


def _needs(pipeline: Pipeline) -> dict[str, tuple[str, ...]]:
    return {step.id: step.needs for step in pipeline.steps}


def expected_path(pipeline: Pipeline, book: HistoryBook) -> tuple[tuple[str, ...], float] | None:
    """The critical path over p50 durations (None without any history)."""
    if not book.expected:
        return None
    chain = longest_path(_needs(pipeline), {k: e.p50 for k, e in book.expected.items()})
    return chain.steps, chain.seconds


def worst_case(pipeline: Pipeline, book: HistoryBook) -> tuple[tuple[str, ...], float] | None:
    """The critical path over the longest recorded durations (None without any history)."""
    if not book.expected:
        return None
    chain = longest_path(_needs(pipeline), {k: e.latest for k, e in book.expected.items()})
    return chain.steps, chain.seconds


def schedule_dict(step: Step, expected: Expectation | None) -> dict[str, Any]:
    """The poll schedule the executor will follow, as data (poll times after the start)."""
    if step.poll.history == 0 or expected is None:
        kind = "off" if step.poll.history == 0 else "no history"
        return {"history": kind, "polls": preview(step.poll, None)}
    w = window(step.poll, expected)
    return {
        "history": "used",
        "window": {"opens_s": round(w.opens, 3), "closes_s": round(w.closes, 3), "gap_s": w.gap},
        "polls": preview(step.poll, expected),
    }


def plan_history_dict(
    pipeline: Pipeline, book: HistoryBook, store: str | None, locate: Locator = _at_step
) -> dict[str, Any]:
    """The part of `plan --format json` that history adds."""
    per_step: dict[str, Any] = {}
    for step in pipeline.steps:
        expected = book.expect(step.id)
        per_step[step.id] = {
            "history": expected.to_dict() if expected is not None else None,
            "poll_schedule": schedule_dict(step, expected),
        }
    path, worst = expected_path(pipeline, book), worst_case(pipeline, book)
    return {
        "history": {
            "store": store,
            "steps_with_history": len(book.expected),
            "expected": {"steps": list(path[0]), "seconds": round(path[1], 3)} if path else None,
            "worst_case": {"steps": list(worst[0]), "seconds": round(worst[1], 3)}
            if worst
            else None,
        },
        "warnings": [w.to_dict() for w in warnings(pipeline, book, locate)],
        "steps": per_step,
    }


def step_line(expected: Expectation | None) -> str:
    if expected is None:
        return "history: none"
    return (
        f"history: typical {format_duration(expected.p50)}, p95 {format_duration(expected.p95)}, "
        f"max {format_duration(expected.latest)} ({expected.runs} run(s))"
    )


def summary_lines(
    pipeline: Pipeline,
    book: HistoryBook,
    store: str | None,
    why_none: str | None,
    locate: Locator = _at_step,
) -> list[str]:
    lines: list[str] = []
    path, worst = expected_path(pipeline, book), worst_case(pipeline, book)
    if path is None or worst is None:
        lines.append(f"history: {why_none or 'no earlier runs recorded'}; durations unknown")
    else:
        with_history = len(book.expected)
        lines.append(
            f"expected: {format_duration(path[1])} (critical path {' -> '.join(path[0])}); "
            f"worst case {format_duration(worst[1])}; from {store} "
            f"({with_history} of {len(pipeline.steps)} step(s) with history)"
        )
    lines.extend(w.text() for w in warnings(pipeline, book, locate))
    return lines


def open_book(
    pipeline: Pipeline,
    state: str | None,
    no_state: bool,
    environ: Mapping[str, str],
    *,
    emulated: bool = False,
) -> tuple[HistoryBook, str | None, str | None]:
    """(book, store shown, why there is none): `plan` reads an existing store, never makes one."""
    if no_state:
        return HistoryBook(), None, "--no-state"
    from mftrun.errors import StateError
    from mftrun.state.history import read_book
    from mftrun.state.lock import sqlite_path
    from mftrun.state.url import choose, open_store, shown

    url = choose(state, environ)
    db = sqlite_path(url, pipeline.path)
    if db is not None and not db.is_file():
        return HistoryBook(), None, f"no state store at {db}"
    try:
        store = open_store(url, pipeline.path)
    except StateError as exc:
        return HistoryBook(), None, exc.message
    try:
        name = shown(store.name)
        book = read_book(store, pipeline, environ, emulated=emulated)
    finally:
        store.close()
    if not book.expected:
        rehearsals = "" if emulated else "; the history of apply --emulate runs: plan --emulate"
        return book, name, f"no earlier successful runs of these tasks in {name}{rehearsals}"
    return book, name, None
