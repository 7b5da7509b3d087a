"""`wait_tasks`: wait until no Acronis task matches the filters, then judge the tasks seen.

Written as `wait_tasks: {<documented task manager v2 filters>, accept_results, limit, lod,
min_count, settle}` (../shared/docs/api-contracts.md, section 2). It only reads: a wait
starts nothing, and a failed wait is final (its tasks already ended; a fresh attempt would
find none left and pass at once, hiding the failed backup).
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mftrun.actions.base import EmulatorSeeds, Path, Problems, Where, string_list, unknown

NAME = "wait_tasks"
DEFAULT_ACCEPT = ("ok", "warning")
DEFAULT_LIMIT = 100
OPTIONS = ("accept_results", "limit", "lod", "min_count", "settle")  # everything else filters
MULTI_FILTERS = (
    "id",
    "uuid",
    "type",
    "queue",
    "priority",
    "startedBy",
    "policyId",
    "policyName",
    "policyType",
    "resourceId",
    "resourceName",
    "resourceType",
    "workflowId",
    "tag",
    "state",
    "resultCode",
    "executorId",
)
TIME_FILTERS = ("enqueuedAt", "assignedAt", "startedAt", "updatedAt", "completedAt")
FILTER_ENUMS: Mapping[str, tuple[str, ...]] = {
    "state": ("enqueued", "assigned", "started", "paused", "completed"),
    "resultCode": ("ok", "error", "warning", "cancelled", "abandoned", "timedout"),
    "priority": ("low", "belowNormal", "normal", "aboveNormal", "high"),
}
# Filters whose values never contain a comma (enums, ids, UUIDs): a comma is a list written wrong.
NO_COMMA = frozenset({"id", "uuid", "state", "resultCode", "priority", "policyId", "resourceId"})
_TIME_FILTER = re.compile(r"(gt|lt|ge|le|eq)\((.+)\)")


@dataclass(frozen=True, slots=True)
class WaitTasksSpec:
    filters: tuple[tuple[str, str], ...]  # (name, value): a list is repeated parameters
    accept_results: tuple[str, ...] = DEFAULT_ACCEPT
    limit: int = DEFAULT_LIMIT
    lod: str | None = None
    min_count: int = 0  # the wait may not pass before this many matching tasks were seen
    settle: float = 0.0  # seconds during which "nothing matches" is not final yet


class WaitTasks:
    name = NAME
    summary = "wait until no Acronis task matches the filters; fail on unaccepted results"
    late_keys: frozenset[str] = frozenset()
    # every task seen (id, type, state, result_code, ...), id -> result code, how many
    outputs = frozenset({"tasks", "result_codes", "count"})
    retry_can_help = False  # see the module docstring

    def parse(self, raw: Any, path: Path, problems: Problems, where: Where) -> WaitTasksSpec | None:
        if not isinstance(raw, Mapping):
            if problems.rendered:
                problems.problem(path, "wait_tasks must be a mapping of filters")
            return None
        filters: list[tuple[str, str]] = []
        for key, value in raw.items():
            if key not in OPTIONS:
                filters.extend(_filter(str(key), value, path + (key,), problems))
        if not any(k in raw for k in MULTI_FILTERS + TIME_FILTERS):
            problems.problem(
                path,
                "wait_tasks needs at least one filter",
                "without a filter it would wait for every task of the tenant; "
                "e.g. state: [started, paused] or policyId: ...",
            )
        spec = WaitTasksSpec(
            filters=tuple(filters),
            accept_results=_accept(raw.get("accept_results"), path, problems),
            limit=_whole(raw, "limit", DEFAULT_LIMIT, 1, path, problems),
            lod=str(raw["lod"]) if raw.get("lod") else None,
            min_count=_whole(raw, "min_count", 0, 0, path, problems),
            settle=_settle(raw.get("settle"), path + ("settle",), problems),
        )
        problems.templates_in(raw, path)
        return spec

    def starts_remote_work(self, spec: WaitTasksSpec) -> bool:
        return False  # it only reads

    def target(self, spec: WaitTasksSpec) -> str | None:
        return None  # its filters are in the file

    def plan_target(self, spec: WaitTasksSpec) -> str:
        grouped: dict[str, list[str]] = {}
        for name, value in spec.filters:
            grouped.setdefault(name, []).append(value)
        shown = [f"{name}={','.join(values)}" for name, values in grouped.items()]
        held = []
        if spec.min_count:
            held.append(f"at least {spec.min_count} task(s)")
        if spec.settle:
            from mftrun.durations import format_duration

            held.append(f"settle {format_duration(spec.settle)}")
        return "tasks " + " ".join(shown) + (f" ({', '.join(held)})" if held else "")

    def parameters(self, spec: WaitTasksSpec) -> Mapping[str, Any]:
        return {}

    def seed_emulator(self, spec: WaitTasksSpec, emulator: EmulatorSeeds) -> None:
        emulator.ensure_acronis_activity()


ACTION = WaitTasks()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _filter(name: str, value: Any, path: Path, problems: Problems) -> list[tuple[str, str]]:
    values = string_list(value)
    if values is None:
        if isinstance(value, (int, float)):  # numbers and booleans are sent as text
            values = [value]
        else:
            if problems.rendered:
                problems.problem(
                    path, f"wait_tasks: filter {name!r} must be a string or a list of strings"
                )
            return []
    out = []
    for i, item in enumerate(values):
        ipath = path if not isinstance(value, (list, tuple)) else path + (i,)
        if item is None or isinstance(item, (dict, list)):
            problems.problem(
                ipath, f"wait_tasks: filter {name!r} must be a string or a list of strings"
            )
            continue
        text = _text(item)
        out.append((name, text))
        if unknown(text, problems):
            continue
        allowed = FILTER_ENUMS.get(name)
        if allowed and not problems.rendered and text not in allowed and "," not in text:
            close = difflib.get_close_matches(text, allowed, n=1)
            problems.problem(
                ipath,
                f"wait_tasks.{name}: {text!r} is not one of {', '.join(allowed)}",
                f"did you mean {close[0]!r}?" if close else None,
            )
        elif name in NO_COMMA and "," in text:
            # The API takes one value per parameter; "started,paused" would match no task and
            # the step would pass at once without waiting for anything.
            parts = [p.strip() for p in text.split(",") if p.strip()]
            problems.problem(
                ipath,
                f"wait_tasks: filter {name!r} has the comma-separated value {text!r}",
                f"write a list, sent as repeated parameters: {name}: [{', '.join(parts)}]",
            )
        elif (
            name in TIME_FILTERS
            and not problems.rendered
            and not _TIME_FILTER.fullmatch(text.strip())
        ):
            problems.problem(
                ipath,
                f"wait_tasks.{name} {text!r} is not a time filter",
                f"write e.g. {name}: gt(2020-04-22T11:00:00Z) (gt, lt, ge, le or eq)",
            )
    return out


def _accept(value: Any, path: Path, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_ACCEPT
    values = string_list(value)
    if not values:
        problems.problem(
            path + ("accept_results",),
            "wait_tasks: 'accept_results' must be a non-empty list of result codes",
        )
        return DEFAULT_ACCEPT
    return tuple(_text(v) for v in values)


def _whole(
    raw: Mapping[str, Any], key: str, default: int, least: int, path: Path, problems: Problems
) -> int:
    value = raw.get(key, default)
    if unknown(value, problems):
        return default
    if key == "limit" and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        what = "a number, at least 1" if key == "limit" else "a whole number >= 0"
        problems.problem(path + (key,), f"wait_tasks: {key!r} must be {what}, not {value!r}")
        return default
    return value


def _settle(value: Any, path: Path, problems: Problems) -> float:
    if value is None or unknown(value, problems):
        return 0.0
    return problems.duration(value, path) or 0.0
