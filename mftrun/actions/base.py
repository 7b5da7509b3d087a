"""What an action is, and the one parser contract every action follows.

An action (start_task, wait_tasks, http, ...) lives in one module of this package: its
typed, frozen spec; one `parse` that turns the mapping written in the file into that
spec; what `plan` and the reports say about it; whether its first request may start
remote work. The same `parse` runs twice:

- at validate time on the mapping as written, with a `Problems` sink that collects
  positioned problems and checks templates (`rendered` is False: a template string is
  a value not known yet, so value checks skip it);
- at run time on the mapping after its templates were rendered, with a sink that
  raises `InputError` naming the step (`rendered` is True: every value is final).

So a rule is written once and holds before and after rendering. Providers receive
the typed spec; no `Mapping[str, Any]` of an action goes past the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mftrun import templating
from mftrun.durations import parse_duration
from mftrun.errors import InputError

Path = tuple[Any, ...]

# Top-level template names the executor provides (Executor.template_context and its callers).
BASE_NAMES = frozenset({"vars", "steps"})


class Problems(Protocol):
    """Where `parse` reports what is wrong; the validate and run sinks differ (module doc)."""

    rendered: bool

    def problem(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False
    ) -> None: ...

    def template(
        self, path: Path, text: str, *, expression: bool = False, names: frozenset[str] = ...
    ) -> None: ...

    def templates_in(self, value: Any, path: Path) -> None: ...

    def duration(self, value: Any, path: Path) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Where:
    """What a parse may need to know about the step beyond its own mapping."""

    step_id: str
    provider: str | None = None  # of the step's environment; None when unknown


class EmulatorSeeds(Protocol):
    """What an action may ask of the embedded emulator before a rehearsal (`--emulate`)."""

    def ensure_mft_task(self, *, task_id: str | None = None, name: str | None = None) -> Any: ...

    def ensure_acronis_activity(self) -> Any: ...


class ActionType(Protocol):
    """One action. Registered in `mftrun.actions.REGISTRY` under its name."""

    name: str
    summary: str  # one line for `mftrun schema`/docs: what the action does
    late_keys: frozenset[str]  # keys rendered at each poll, not when the step starts
    outputs: frozenset[str]  # what `steps.<id>.outputs` holds after the step (and `result`)
    retry_can_help: bool  # whether `retries` may start the action afresh

    def parse(self, raw: Any, path: Path, problems: Problems, where: Where) -> Any | None:
        """The typed spec, or None when `raw` is not of a shape this action can read."""

    def starts_remote_work(self, spec: Any) -> bool:
        """Whether the first request could start something on the platform (not idempotent)."""

    def target(self, spec: Any) -> str | None:
        """What an attempt sends, in words for the reports (None: nothing beyond the file)."""

    def plan_target(self, spec: Any) -> str:
        """What `plan` shows the action touches."""

    def parameters(self, spec: Any) -> Mapping[str, Any]:
        """Values the reports and `plan` list as the action's parameters."""

    def seed_emulator(self, spec: Any, emulator: EmulatorSeeds) -> None:
        """Prepare the embedded emulator so a rehearsal of this spec finds what it needs."""


class RunProblems:
    """The run-time sink: the first problem of a rendered spec stops the step (exit 2)."""

    rendered = True

    def __init__(self, step_id: str) -> None:
        self.step_id = step_id

    def problem(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        raise InputError(f"step {self.step_id!r}: {message}", hint=hint)

    def template(
        self,
        path: Path,
        text: str,
        *,
        expression: bool = False,
        names: frozenset[str] = BASE_NAMES,
    ) -> None:
        return None  # rendered already: what is left is data

    def templates_in(self, value: Any, path: Path) -> None:
        return None

    def duration(self, value: Any, path: Path) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return None


def unknown(value: Any, problems: Problems) -> bool:
    """True while a value is still a template (validate time): its checks wait for run time."""
    return not problems.rendered and isinstance(value, str) and templating.is_template(value)


def string_list(value: Any) -> list[Any] | None:
    """One value or a list of them, as a list; None for any other shape."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    return None
