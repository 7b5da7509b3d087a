"""The executor's vocabulary: what workers answer, what timers wake, each step's live state.

Shared by the executor's parts (mftrun/executor.py and the executor_*.py modules it is
composed of); only the scheduling thread touches a `Live`.
"""

from __future__ import annotations

import contextlib
import enum
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mftrun.http import gate as gates
from mftrun.model import Step
from mftrun.results import StepResult
from mftrun.state.prior import Attach

if TYPE_CHECKING:
    from mftrun.clock import Clock
    from mftrun.events import Listener
    from mftrun.fan_out import Groups
    from mftrun.model import Pipeline
    from mftrun.plan import Plan, Walk
    from mftrun.providers.base import Provider
    from mftrun.results import RunResult, Status
    from mftrun.state.prior import Carried, Prior
    from mftrun.state.history import HistoryBook
    from mftrun.state.recorder import RunRecorder

AFTERMATH_CONDITIONS = frozenset({"failure", "always"})
AFTERMATH_TIMEOUT = (
    600.0  # seconds, for a failure/always step without a timeout after the run's own ran out
)
MAX_WAIT = 0.2  # how long the scheduler sleeps at most, so an interrupt is noticed quickly


class Call(enum.Enum):
    """What a worker did for a step; its answer comes back tagged with it."""

    START = "start"
    ATTACH = "attach"  # resume: the first poll of a recorded remote run
    POLL = "poll"
    NOT_SENT = "not_sent"  # a start withheld (the step ended, or the run is stopping)


class Wake(enum.Enum):
    """Why a step's timer fires."""

    POLL = "poll"
    RESTART = "restart"  # a retry's delay is over


@dataclass(frozen=True, slots=True)
class Answer:
    """A worker's answer to the scheduler: a value or an error, for one generation of a step."""

    step_id: str
    gen: int
    call: Call
    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True, order=True)
class Timer:
    when: float
    seq: int
    step_id: str = field(compare=False)
    wake: Wake = field(compare=False)
    gen: int = field(compare=False)


@dataclass(frozen=True, slots=True, order=True)
class Deadline:
    when: float
    seq: int
    step_id: str = field(compare=False)
    gen: int = field(compare=False)


@dataclass(slots=True)
class Live:
    """The scheduler's private state for one step."""

    step: Step
    result: StepResult
    handle: Any = None
    attempts_started: int = 0
    gen: int = 0  # bumped when the step is finalised: late worker answers are then ignored
    busy: bool = False  # a worker call is in flight
    gap: float = 0.0
    sent: float = 0.0  # clock.monotonic() when this attempt's start (or re-attach) was handed over
    fresh: bool = True  # started here (not re-attached): its elapsed time is the run's
    running_seen: float = 0.0  # seconds after `sent` of the last poll that said "running"
    calls_before: int = 0  # HTTP calls of earlier attempts' handles
    attach: Attach | None = None  # resume: poll this recorded remote run instead of starting
    gate: gates.Gate = field(default_factory=gates.Gate)  # this attempt's; closed at the end


class WorkerPool:
    """Daemon threads: a hung HTTP call must never keep a finished run from exiting."""

    def __init__(self, size: int) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"mftrun-worker-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def submit(self, job: Callable[[], object]) -> None:
        self._jobs.put(job)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


class SchedulerState:
    """What the executor's parts share: its state, set in `Executor.__init__`, and the
    methods one part calls on another (each defined in exactly one part).

    The executor is one object made of parts (executor.py, executor_readiness.py,
    executor_answers.py, executor_endings.py, fan_out.FanOutSteps); each part reads this
    state as its own, and only the scheduling thread touches it.
    """

    pipeline: Pipeline
    plan: Plan
    providers: Mapping[str, Provider]
    clock: Clock
    listener: Listener
    vars: dict[str, Any]
    max_parallel: int
    workers: int
    recorder: RunRecorder
    prior: Mapping[str, Prior]
    refused: Mapping[str, str]
    result: RunResult
    history: HistoryBook
    _answers: queue.SimpleQueue[Answer]
    _timers: list[Timer]
    _deadlines: list[Deadline]
    _seq: Iterator[int]
    _startable: list[tuple[int, str]]  # (file index, step id)
    _newly_ready: deque[str]
    _walk: Walk
    _active: int
    _unfinished: int
    _signal: int | None
    _run_timed_out: bool
    _aftermath: str | None  # why only failure/always steps may still start
    _stopping: threading.Event
    _template_seconds_left: float
    _steps_view: dict[str, Mapping[str, Any]]
    _live: dict[str, Live]
    _groups: Groups
    _pool: WorkerPool

    def template_context(self, **extra: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _ancestors_key(self, step: Step) -> str:
        raise NotImplementedError

    def _carry(self, live: Live, earlier: Carried, *, queue_ready: bool) -> None: ...

    def _emit(self, live: Live, detail: str) -> None: ...

    def _ended(self, live: Live, note: str, *, queue_ready: bool = True) -> None: ...

    def _enter_aftermath(self, why: str) -> None: ...

    def _fan_out(self, live: Any) -> None: ...

    def _finish(
        self,
        live: Live,
        status: Status,
        *,
        error: str | None = None,
        detail: str = "",
        exit_code: int | None = None,
    ) -> None: ...

    def _fire_deadlines(self, now: float) -> None: ...

    def _group_evaluator(self, step: Step) -> Callable[[str], Any]:
        raise NotImplementedError

    def _group_member_ended(self, result: StepResult) -> None: ...

    def _handle_answer(self, answer: Answer) -> None: ...

    def _note_ambiguous_start(self, live: Live, exc: BaseException) -> None: ...

    def _note_remote_left_going(self, live: Live) -> None: ...

    def _settle_ready(self) -> None: ...

    def _stop_all(self, why: str) -> None: ...

    def _template_limits(self, timeout: float | None) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _timer(self, when: float, live: Live, wake: Wake) -> None: ...
