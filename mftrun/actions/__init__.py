"""The actions a step can do, one module each, registered here by the name used in YAML.

To add an action: write `mftrun/actions/<name>.py` with its frozen spec and an `ACTION`
object following `mftrun.actions.base.ActionType` (parse, plan target, report target,
whether it starts remote work), register it below, describe its mapping in
`schemas/pipeline.schema.json`, and offer it on the platforms that run it (their
`PLATFORM.actions` in `mftrun/providers/<name>/`, and `start_action`/`poll_action`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mftrun.actions import http, start_task, wait_tasks
from mftrun.actions.base import ActionType, Problems, RunProblems, Where

REGISTRY: Mapping[str, ActionType] = MappingProxyType(
    {
        start_task.NAME: start_task.ACTION,
        wait_tasks.NAME: wait_tasks.ACTION,
        http.NAME: http.ACTION,
    }
)
NAMES = tuple(REGISTRY)


def action_type(kind: str) -> ActionType:
    return REGISTRY[kind]


def parse_rendered(kind: str, rendered: Any, where: Where) -> Any:
    """The run-time parse of a rendered mapping: the typed spec, or InputError naming the step."""
    spec = REGISTRY[kind].parse(rendered, (), RunProblems(where.step_id), where)
    if spec is None:  # pragma: no cover - the run sink raises before returning None
        RunProblems(where.step_id).problem((), f"{kind} cannot be read")
    return spec


def spec_of(action: Any) -> Any:
    """The validate-time spec of a model `Action`: parsed here if a hand-made model has none."""
    if action.spec is not None:
        return action.spec
    return REGISTRY[action.kind].parse(action.written, (), _Quiet(), Where("", None))


class _Quiet:
    """A validate-time sink that keeps nothing: for models built without the builder."""

    rendered = False

    def problem(self, *args: Any, **kwargs: Any) -> None:
        return None

    def template(self, *args: Any, **kwargs: Any) -> None:
        return None

    def templates_in(self, *args: Any, **kwargs: Any) -> None:
        return None

    def duration(self, value: Any, path: Any) -> float | None:
        return RunProblems("").duration(value, path) if value is not None else None


__all__ = [
    "NAMES",
    "REGISTRY",
    "ActionType",
    "Problems",
    "Where",
    "action_type",
    "parse_rendered",
    "spec_of",
]
