"""Events the executor emits, all from its one scheduling thread, in order.

Listeners (the console, a test recorder) must be quick: they run inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mftrun.results import RunResult, StepResult


@dataclass(frozen=True, slots=True)
class StepEvent:
    step: StepResult
    detail: str = ""  # a human note: remote status change, skip reason, error, retry


class Listener(Protocol):
    def run_started(self, result: RunResult) -> None: ...
    def step_changed(self, event: StepEvent) -> None: ...
    def note(self, text: str) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class NullListener:
    def run_started(self, result: RunResult) -> None:
        pass

    def step_changed(self, event: StepEvent) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass


class Recorder(NullListener):
    """Keeps every event; for tests."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (step id, status, detail)
        self.notes: list[str] = []

    def step_changed(self, event: StepEvent) -> None:
        self.events.append((event.step.id, event.step.outcome.value, event.detail))

    def note(self, text: str) -> None:
        self.notes.append(text)
