"""The small interface between the executor and a platform.

The executor never blocks on a remote run: it calls `start` once, then `poll`
whenever the run's next poll time comes up in its heap. Each call is one short
piece of HTTP work done on a worker thread, so no thread waits per task.
Failures to talk to the platform are raised as `mftrun.errors.PlatformError`
subclasses; a start that may have been processed raises `AmbiguousStartError`
and is never replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from collections.abc import Mapping

from mftrun.model import Poll

RunState = Literal["running", "success", "failed"]


@dataclass(slots=True)
class Observation:
    """What one start or poll learned about a remote run."""

    state: RunState
    remote_status: str | None = None  # the platform's own word, shown as-is
    run_id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str | None = None  # why it failed, in the platform's words (already truncated)
    retry_after: float | None = None  # the server asked us to wait this long before the next poll
    # An accepted success that the platform qualified (an Acronis task ending `warning`): one
    # line each, in the platform's words, so a success with warnings is never shown as plain.
    warnings: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.state != "running"


class StepContext(Protocol):
    """What a provider may ask of the executor while running one step."""

    step_id: str
    poll: Poll  # the step's polling settings, failures tolerated while polling included

    def evaluate(self, expression: str, **names: Any) -> Any:
        """Evaluate a `{{ ... }}` template/expression in the step's sandbox plus `names`."""
        ...


class Provider(Protocol):
    name: str  # provider id, e.g. "automate-mft"
    can_cancel: bool

    def start(self, kind: str, spec: Any, ctx: StepContext) -> tuple[Any, Observation]:
        """Begin the action; return an opaque handle for later polls and the first observation."""
        ...

    def poll(self, handle: Any, ctx: StepContext) -> Observation: ...

    def ref(self, handle: Any) -> dict[str, str]:
        """What `attach` needs to find this handle's remote run again ({} when nothing can)."""
        ...

    def attach(self, kind: str, spec: Any, ref: Mapping[str, str], ctx: StepContext) -> Any:
        """A handle that polls the recorded remote run; never starts anything (resume)."""
        ...

    def cancel(self, handle: Any) -> bool:
        """Ask the platform to stop the run; False when the platform has no such call."""
        ...

    def http_calls(self, handle: Any) -> int:
        """How many HTTP requests this handle has made so far (for reports)."""
        ...

    def close(self) -> None: ...
