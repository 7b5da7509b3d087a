"""`start_task`: start one Automate MFT task (by id or by name) and watch its run to the end.

Written as `start_task: <task id>` or `start_task: {task_id | name, parameters,
success_statuses, failure_statuses}`. Starting is not idempotent: the executor records
the intent before the request and never re-sends a start it is unsure of.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mftrun.actions.base import EmulatorSeeds, Path, Problems, Where, string_list, unknown

NAME = "start_task"
DEFAULT_SUCCESS = ("success",)
DEFAULT_FAILURE = ("failed",)
TASK_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)  # a UUID


@dataclass(frozen=True, slots=True)
class StartTaskSpec:
    task_id: str | None  # exactly one of task_id and name
    name: str | None
    parameters: Mapping[str, Any]
    success_statuses: tuple[str, ...] = DEFAULT_SUCCESS
    failure_statuses: tuple[str, ...] = DEFAULT_FAILURE

    @property
    def label(self) -> str:
        """How messages name the task: "task <id>" or "task named '<name>'"."""
        return f"task {self.task_id}" if self.task_id else f"task named {self.name!r}"

    @property
    def ident(self) -> dict[str, str]:
        """{"task_id": ...} or {"name": ...}: copied into the step's outputs."""
        return {"task_id": self.task_id} if self.task_id else {"name": str(self.name)}


class StartTask:
    name = NAME
    summary = "start an Automate MFT task by id or name and wait for its run to end"
    late_keys: frozenset[str] = frozenset()
    # the run's id and last status, the task as written (task_id or name), the run object
    outputs = frozenset({"run_id", "task_id", "name", "status", "run"})
    retry_can_help = True  # a retry is a new task run, which may succeed

    def parse(self, raw: Any, path: Path, problems: Problems, where: Where) -> StartTaskSpec | None:
        if isinstance(raw, str):
            if not raw.strip():
                if problems.rendered:
                    problems.problem(path, "start_task needs exactly one of 'task_id' or 'name'")
                return None
            problems.template(path, raw)
            _task_id_problem(raw, path, problems, short=True)
            return StartTaskSpec(task_id=raw, name=None, parameters=MappingProxyType({}))
        if not isinstance(raw, Mapping):
            if problems.rendered:
                problems.problem(path, "start_task must be a task id or a mapping")
            return None
        task_id, name = raw.get("task_id"), raw.get("name")
        has_id = "task_id" in raw and (not problems.rendered or task_id not in (None, ""))
        has_name = "name" in raw and (not problems.rendered or name not in (None, ""))
        if has_id and has_name:
            problems.problem(
                path + ("name",),
                "start_task takes task_id or name, not both",
                "keep task_id (stable) or name",
                key=True,
            )
            return None
        if not has_id and not has_name:
            problems.problem(
                path,
                "start_task needs task_id or name",
                "e.g. start_task: {task_id: 02115928-16fe-4493-949b-d77d302a88ee}",
            )
            return None
        if has_id:
            _task_id_problem(task_id, path + ("task_id",), problems, short=False)
        label = f"task {task_id}" if has_id else f"task named {str(name)!r}"
        params = raw.get("parameters")
        if params is not None and not isinstance(params, Mapping) and problems.rendered:
            problems.problem(
                path + ("parameters",),
                f"start_task {label}: 'parameters' must be a mapping of names to values",
            )
        success = _statuses(raw, "success_statuses", DEFAULT_SUCCESS, path, problems, label)
        failure = _statuses(raw, "failure_statuses", DEFAULT_FAILURE, path, problems, label)
        both = {s.casefold() for s in success} & {s.casefold() for s in failure}
        if both:
            problems.problem(
                path + ("failure_statuses",),
                f"status {sorted(both)[0]!r} is listed as both success and failure",
                "list each status once",
            )
        problems.templates_in(raw, path)
        return StartTaskSpec(
            task_id=str(task_id) if has_id else None,
            name=None if has_id else str(name),
            parameters=MappingProxyType(dict(params) if isinstance(params, Mapping) else {}),
            success_statuses=success,
            failure_statuses=failure,
        )

    def starts_remote_work(self, spec: StartTaskSpec) -> bool:
        return True

    def target(self, spec: StartTaskSpec) -> str:
        return spec.label

    def plan_target(self, spec: StartTaskSpec) -> str:
        return spec.label

    def parameters(self, spec: StartTaskSpec) -> Mapping[str, Any]:
        return spec.parameters

    def seed_emulator(self, spec: StartTaskSpec, emulator: EmulatorSeeds) -> None:
        from mftrun.templating import is_template

        if spec.task_id and not is_template(spec.task_id):
            emulator.ensure_mft_task(task_id=spec.task_id)
        elif spec.name and not is_template(spec.name):
            emulator.ensure_mft_task(name=spec.name)


ACTION = StartTask()


def _statuses(
    raw: Mapping[str, Any],
    key: str,
    default: tuple[str, ...],
    path: Path,
    problems: Problems,
    label: str,
) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None or value == [] or value == ():  # `[]` as written: the default
        return default
    values = string_list(value)
    if not values:
        problems.problem(
            path + (key,), f"start_task {label}: {key!r} must be a non-empty list of statuses"
        )
        return default
    return tuple(str(v) for v in values)


def _task_id_problem(value: Any, path: Path, problems: Problems, *, short: bool) -> None:
    """A task id is a UUID (api-contracts: "Task ids are UUIDs"). Anything else, typically a
    task's name in the short form, would be sent as an id and answered 404 at run time,
    possibly hours in: say so at validate time, with the form that takes a name. (Checked on
    the file only: what a template renders is the platform's to judge.)"""
    if problems.rendered or not isinstance(value, str) or unknown(value, problems):
        return
    if TASK_ID.match(value):
        return
    written = "start_task" if short else "start_task.task_id"
    problems.problem(
        path,
        f"{written} {value!r} is not a task id: Automate MFT task ids are UUIDs "
        "such as 02115928-16fe-4493-949b-d77d302a88ee",
        f"to start the task by its name, write start_task: {{name: {value}}}",
    )
