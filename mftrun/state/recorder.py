"""The executor's side of run memory: the transitions it reports, in the order it reports them.

Why synchronous calls and not events: a start is not idempotent and neither platform can
cancel, so "a start is about to be sent" must be durable *before* the request leaves, and
"this is the remote run" as soon as the answer arrives. Each call returns only once it is
committed; the executor does the dependent action afterwards. A SIGKILL at any instant then
leaves a record from which resume never starts a task twice:

- intent without a remote reference: the start may have been sent -> ambiguous, never resent
  on a guess (`--restart STEP` is the explicit way);
- a remote reference without a terminal status: re-attach and poll it;
- a terminal status: done (success carried over, anything else run again).

Threads: `start_intent` and `remote_run` are called on the worker thread that sends the
start, immediately before the request and immediately after its answer (so the scheduler
never waits on the store for them); the other calls on the scheduler's thread. An
implementation must therefore be thread-safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from mftrun.results import StepResult


class RunRecorder(Protocol):
    def step_started(self, step_id: str, attempt: int, definition_hash: str) -> None:
        """An attempt of the step begins (before anything is sent for it)."""
        ...

    def start_intent(self, step_id: str, attempt: int) -> None:
        """Called immediately before a non-idempotent request is handed to a worker."""
        ...

    def remote_run(self, step_id: str, attempt: int, ref: Mapping[str, str]) -> None:
        """The start's answer named a remote run: what the action needs to re-attach."""
        ...

    def start_not_sent(self, step_id: str, attempt: int) -> None:
        """The start certainly did not reach the platform: resume may send it."""
        ...

    def step_finished(self, result: StepResult) -> None:
        """The step's terminal status, outcome, outputs, attempts and remote ids."""
        ...


class NullRecorder:
    """`--no-state`: remembers nothing."""

    def step_started(self, step_id: str, attempt: int, definition_hash: str) -> None:
        pass

    def start_intent(self, step_id: str, attempt: int) -> None:
        pass

    def remote_run(self, step_id: str, attempt: int, ref: Mapping[str, str]) -> None:
        pass

    def start_not_sent(self, step_id: str, attempt: int) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass
