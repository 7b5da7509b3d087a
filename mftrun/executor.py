"""Run a planned pipeline: a ready set, a timer heap and a small worker pool.

Why this shape: a remote run that is waiting costs nothing but an entry in a
heap ordered by its next poll time; a handful of worker threads make the HTTP
calls (provider.start / provider.poll), and one scheduling thread (the caller's)
owns every piece of state, so there are no locks around the pipeline's state
and events come out in order. One process can track thousands of runs in flight.

Rules it enforces: at most `max_parallel` steps active; conditions per
`mftrun.conditions`; per-step deadlines from the step's start to the remote
terminal status; a whole-run deadline; retries only after the platform said a
run *failed* (never after an ambiguous start); on interrupt, no new starts, the
running steps are cancelled (remotely where the platform allows) and the
result still comes back so reports can be written.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import signal
import threading
from collections import deque
from typing import Any
from collections.abc import Callable, Mapping

from mftrun import actions, fan_out, template_limits, templating
from mftrun.clock import Clock, SystemClock
from mftrun.concurrency import worker_count
from mftrun.credentials import mask_secret_names
from mftrun.durations import format_duration
from mftrun.errors import (
    InputError,
    EXIT_INVALID,
    TemplateError,
)
from mftrun.events import Listener, NullListener
from mftrun.http import gate as gates
from mftrun.model import Pipeline, Step, step_hash
from mftrun.plan import Plan
from mftrun.providers.base import Observation, Provider
from mftrun.results import Attempt, RunResult, Status, StepResult, exit_code_of
from mftrun.state.prior import Attach, Carried, Prior
from mftrun.state.history import HistoryBook
from mftrun.state.recorder import NullRecorder, RunRecorder

from mftrun.executor_answers import Answers
from mftrun.executor_endings import Endings
from mftrun.executor_readiness import Readiness
from mftrun.executor_state import (
    AFTERMATH_TIMEOUT,
    MAX_WAIT,
    Answer,
    Call,
    Deadline,
    Live,
    Timer,
    Wake,
    WorkerPool,
)


class Executor(Readiness, Answers, Endings, fan_out.FanOutSteps):
    def __init__(
        self,
        pipeline: Pipeline,
        plan: Plan,
        providers: Mapping[str, Provider],
        *,
        clock: Clock | None = None,
        listener: Listener | None = None,
        variables: Mapping[str, Any] | None = None,
        workers: int | None = None,
        max_parallel: int | None = None,
        recorder: RunRecorder | None = None,
        prior: Mapping[str, Prior] | None = None,
        refused: Mapping[str, str] | None = None,
        history: HistoryBook | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.plan = plan
        self.providers = providers
        self.clock = clock or SystemClock()
        self.listener = listener or NullListener()
        self.vars = {**pipeline.vars, **(variables or {})}
        self.max_parallel = max_parallel or pipeline.max_parallel
        self.workers = workers or worker_count(self.max_parallel)
        self.recorder: RunRecorder = recorder or NullRecorder()
        self.prior: Mapping[str, Prior] = prior or {}
        self.history = history or HistoryBook()  # poll_schedule's input; learns successes
        self._answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self._timers: list[Timer] = []
        self._deadlines: list[Deadline] = []
        self._seq = itertools.count()
        self._startable: list[tuple[int, str]] = []  # (file index, step id)
        self._newly_ready: deque[str] = deque()
        self._walk = plan.walk()  # readiness: the plan's own get_ready/done
        self._active = 0
        self._unfinished = len(pipeline.steps)
        self._signal: int | None = None
        self._run_timed_out = False
        self._aftermath: str | None = None  # why only failure/always steps may still start
        # Environments the login check refused (name -> problem): the run is refused, only
        # failure/always steps on the other environments may start (issue 11 section 1).
        self.refused: Mapping[str, str] = dict(refused or {})
        self._stopping = threading.Event()
        self._template_seconds_left = template_limits.RUN_SECONDS
        self._steps_view: dict[str, Mapping[str, Any]] = {}
        self.result = RunResult(
            pipeline=pipeline.name,
            file=pipeline.path,
            sha256=pipeline.sha256,
            started_at=self.clock.now(),
        )
        self._live: dict[str, Live] = {}
        self._groups = fan_out.Groups.of(pipeline.steps)  # for_each instances, per group
        for step in pipeline.steps:
            step_result = StepResult(
                id=step.id,
                environment=step.environment,
                action=step.action.kind,
                line=step.position.line,
                column=step.position.column,
                definition_hash=step_hash(step),
                needs=list(plan.needs.get(step.id, ())),
            )
            self.result.steps.append(step_result)
            self._live[step.id] = Live(step, step_result)
            if (expected := self.history.expect(step.id)) is not None:
                step_result.history = expected.to_dict()
            earlier = self.prior.get(step.id)
            if isinstance(earlier, Attach):
                self._live[step.id].attach = earlier

    # -- public -------------------------------------------------------------------------------

    @property
    def signal_received(self) -> int | None:
        """The first signal `interrupt` was called with, or None."""
        return self._signal

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Safe to call from a signal handler: it only sets flags."""
        if self._signal is None:
            self._signal = signum
        self._stopping.set()

    def run(self) -> RunResult:
        self.listener.run_started(self.result)
        start = self.clock.monotonic()
        run_deadline = start + self.pipeline.timeout if self.pipeline.timeout else None
        pool = WorkerPool(self.workers)
        self._pool = pool
        try:
            self._carry_prior()
            for step_id in self._walk.get_ready():  # roots, and what carried steps unlocked
                if not self._live[step_id].result.outcome.is_final:
                    self._newly_ready.append(step_id)
            while True:
                self._drain_answers()
                self._settle_ready()
                now = self.clock.monotonic()
                if self._signal is not None:
                    self._stop_all("interrupted")
                    break
                if run_deadline is not None and now >= run_deadline:
                    self.result.message = (
                        f"whole-run timeout of {format_duration(self.pipeline.timeout or 0)}"
                        " reached"
                    )
                    self.listener.note(self.result.message)
                    run_deadline = None
                    self._run_timed_out = True
                    self._enter_aftermath("whole-run timeout reached")
                    continue
                self._fire_deadlines(now)
                self._fire_timers(now)
                self._start_ready(now)
                self._settle_ready()
                if self._unfinished == 0:
                    break
                wake = min(
                    [t.when for t in self._timers[:1]]
                    + [d.when for d in self._deadlines[:1]]
                    + ([run_deadline] if run_deadline else [])
                    + [now + self.clock.from_real(MAX_WAIT)]
                )
                try:
                    left = self.clock.real_seconds(wake - self.clock.monotonic())
                    answer = self._answers.get(timeout=max(0.0, left))
                except queue.Empty:
                    continue
                self._handle_answer(answer)
        finally:
            self._stopping.set()
            pool.close()
        self.result.ended_at = self.clock.now()
        self.result.interrupted = self._signal is not None
        self.result.exit_code = exit_code_of(
            self.result.steps, signal_received=self._signal, run_timed_out=self._run_timed_out
        )
        self.listener.run_finished(self.result)
        return self.result

    # -- resume ------------------------------------------------------------------------------

    def _carry_prior(self) -> None:
        """Steps that succeeded in an earlier run end at once with that run's outputs."""
        for step_id in self.plan.order:
            earlier = self.prior.get(step_id)
            if not isinstance(earlier, Carried) or fan_out.is_dynamic(self._live[step_id].step):
                continue  # a dynamic group is expanded afresh; its instances carry their own
            self._carry(self._live[step_id], earlier, queue_ready=False)

    def _carry(self, live: Live, earlier: Carried, *, queue_ready: bool) -> None:
        """End one step at once with the outputs of the earlier run it succeeded in."""
        old = earlier.result
        result = live.result
        result.attempts = list(old.attempts)
        result.started_at, result.http_calls = old.started_at, 0
        result.carried_from = earlier.from_run
        result.outputs = dict(old.outputs)
        live.gen += 1
        result.outcome, result.conclusion = old.outcome, old.conclusion
        result.ended_at = old.ended_at
        self._ended(live, f"carried over from run {earlier.from_run}", queue_ready=queue_ready)

    # -- readiness and conditions --------------------------------------------------------------

    def _start_ready(self, now: float) -> None:
        held: list[tuple[int, str]] = []  # instances whose group is at its own max_parallel
        while self._startable and self._active < self.max_parallel and not self._stopping.is_set():
            entry = heapq.heappop(self._startable)
            live = self._live[entry[1]]
            step_id = entry[1]
            if not self._groups.may_start(live.step):
                held.append(entry)
                continue
            self._groups.started(live.step)
            live.result.outcome = live.result.conclusion = Status.RUNNING
            live.result.started_at = self.clock.now()
            if fan_out.is_dynamic(live.step):  # starts nothing itself: no slot, no deadline
                self._fan_out(live)
                continue
            self._active += 1
            timeout = live.step.timeout
            if self._aftermath and not timeout:
                timeout = AFTERMATH_TIMEOUT  # the run is already over its deadline: stay bounded
            if timeout:
                deadline = Deadline(now + timeout, next(self._seq), step_id, live.gen)
                heapq.heappush(self._deadlines, deadline)
            self._launch_attempt(live)
        for entry in held:
            heapq.heappush(self._startable, entry)

    def _where(self, step: Step) -> actions.Where:
        env = self.pipeline.environments.get(step.environment)
        return actions.Where(step.id, env.provider if env is not None else None)

    def _launch_attempt(self, live: Live) -> None:
        step = live.step
        attach, live.attach = live.attach, None
        live.attempts_started = attach.attempt if attach else live.attempts_started + 1
        number = live.attempts_started
        attempt = Attempt(number=number, started_at=self.clock.now())
        live.result.attempts.append(attempt)
        live.gate = gates.Gate(f"step {step.id} attempt {number}")
        self.recorder.step_started(step.id, number, live.result.definition_hash)
        if attach is not None:
            attempt.ref, attempt.run_id = dict(attach.ref), attach.ref.get("run_id")
            live.result.reattached = True
            self._emit(live, f"re-attached to remote run {attempt.run_id} of run {attach.from_run}")
        else:
            self._emit(live, "started")  # the console and reports show which attempt
        action = actions.action_type(step.action.kind)
        try:
            with self._template_limits(step.timeout):
                rendered = templating.render_data(
                    step.action.written,
                    self.template_context(**fan_out.item_names(step)),
                    skip=action.late_keys,
                )
            spec = actions.parse_rendered(step.action.kind, rendered, self._where(step))
        except (TemplateError, InputError) as exc:
            self._finish(live, Status.ERROR, error=str(exc), exit_code=EXIT_INVALID)
            return
        attempt.target = live.result.target = action.target(spec)
        if params := action.parameters(spec):
            attempt.parameters = mask_secret_names(params)
        provider = self.providers[step.environment]
        if live.handle is not None:
            live.calls_before += provider.http_calls(live.handle)
            live.handle = None
        live.gap = step.poll.interval
        # a re-attached run started in another process: no history for it, nothing learned
        live.sent, live.running_seen, live.fresh = self.clock.monotonic(), 0.0, attach is None
        ctx = _StepContext(self, step.id)
        if attach is not None:
            ref = attach.ref

            def reattach() -> tuple[Any, Observation]:
                handle = provider.attach(step.action.kind, spec, ref, ctx)
                return handle, provider.poll(handle, ctx)

            self._submit(live, Call.ATTACH, reattach)
            return
        kind, recorder, step_id = step.action.kind, self.recorder, step.id
        if not action.starts_remote_work(spec):
            self._submit(live, Call.START, lambda: provider.start(kind, spec, ctx))
            return
        live.result.start_unconfirmed = True

        step_gate = live.gate

        def start() -> tuple[Any, Observation]:
            # On the worker that sends it: durable before the request leaves, without holding
            # up the scheduler; the remote run as soon as the answer is read. Under the gate:
            # an intent is never written after the step ended.
            with step_gate.admit():
                recorder.start_intent(step_id, number)
            handle, obs = provider.start(kind, spec, ctx)
            recorder.remote_run(step_id, number, provider.ref(handle) if obs.run_id else {})
            return handle, obs

        self._submit(live, Call.START, start)

    # -- worker traffic ------------------------------------------------------------------------

    def _submit(self, live: Live, kind: Call, call: Callable[[], Any]) -> None:
        live.busy = True
        step_id, gen, step_gate = live.step.id, live.gen, live.gate
        answers, stopping = self._answers, self._stopping

        def job() -> None:
            if kind is Call.START and (stopping.is_set() or step_gate.closed):
                # never send a start after an interrupt, a whole-run timeout or the step's end
                answers.put(Answer(step_id, gen, Call.NOT_SENT))
                return
            try:
                with gates.entered(step_gate):
                    value = call()
                answers.put(Answer(step_id, gen, kind, value))
            except BaseException as exc:  # noqa: BLE001 - every failure is reported on the step
                answers.put(Answer(step_id, gen, kind, error=exc))

        self._pool.submit(job)

    def _drain_answers(self) -> None:
        while True:
            try:
                answer = self._answers.get_nowait()
            except queue.Empty:
                return
            self._handle_answer(answer)

    def _timer(self, when: float, live: Live, wake: Wake) -> None:
        heapq.heappush(self._timers, Timer(when, next(self._seq), live.step.id, wake, live.gen))

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0].when <= now:
            timer = heapq.heappop(self._timers)
            step_id = timer.step_id
            live = self._live[step_id]
            if timer.gen != live.gen or self._stopping.is_set():
                continue
            if timer.wake is Wake.RESTART:
                self._launch_attempt(live)
            else:
                provider, handle = self.providers[live.step.environment], live.handle
                self._submit(
                    live,
                    Call.POLL,
                    # defaults bind this iteration's values; mypy cannot infer such a lambda
                    lambda p=provider, h=handle, s=step_id: p.poll(h, _StepContext(self, s)),  # type: ignore[misc]
                )


class _StepContext:
    """Handed to providers: lets them evaluate the step's late templates (e.g. http `until`)."""

    __slots__ = ("_context", "_item", "poll", "step_id")

    def __init__(self, executor: Executor, step_id: str) -> None:
        self._context = executor.template_context
        self.step_id = step_id
        step = executor._live[step_id].step  # a dynamic for_each instance is not in the file
        self.poll = step.poll
        self._item = fan_out.item_names(step)

    def evaluate(self, expression: str, **names: Any) -> Any:
        return templating.evaluate(expression, self._context(**self._item, **names))
