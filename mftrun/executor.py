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

import contextlib
import enum
import heapq
import itertools
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterator, Mapping

from mftrun import actions, fan_out, template_limits, templating
from mftrun.clock import Clock, SystemClock
from mftrun.concurrency import worker_count
from mftrun.conditions import FAILED_CONCLUSIONS, should_run, step_view
from mftrun.credentials import mask_secret_names
from mftrun.durations import format_duration
from mftrun.errors import (
    AuthError,
    CredentialError,
    InputError,
    RemoteError,
    EXIT_INVALID,
    EXIT_PLATFORM,
    MftrunError,
    TemplateError,
)
from mftrun.events import Listener, NullListener, StepEvent
from mftrun.http import gate as gates
from mftrun.http.session import NotSentError
from mftrun.model import Pipeline, Step, step_hash
from mftrun import poll_schedule
from mftrun.plan import Plan
from mftrun.providers.base import Observation, Provider
from mftrun.results import Attempt, RunResult, Status, StepResult, exit_code_of
from mftrun.state.prior import Attach, Carried, Prior
from mftrun.state.history import HistoryBook
from mftrun.state.recorder import NullRecorder, RunRecorder

AFTERMATH_CONDITIONS = frozenset({"failure", "always"})
AFTERMATH_TIMEOUT = (
    600.0  # seconds, for a failure/always step without a timeout after the run's own ran out
)
_MAX_WAIT = 0.2  # how long the scheduler sleeps at most, so an interrupt is noticed quickly


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
class _Answer:
    """A worker's answer to the scheduler: a value or an error, for one generation of a step."""

    step_id: str
    gen: int
    call: Call
    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True, order=True)
class _Timer:
    when: float
    seq: int
    step_id: str = field(compare=False)
    wake: Wake = field(compare=False)
    gen: int = field(compare=False)


@dataclass(frozen=True, slots=True, order=True)
class _Deadline:
    when: float
    seq: int
    step_id: str = field(compare=False)
    gen: int = field(compare=False)


@dataclass(slots=True)
class _Live:
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


class _WorkerPool:
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


class Executor:
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
        self._answers: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        self._timers: list[_Timer] = []
        self._deadlines: list[_Deadline] = []
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
        self._live: dict[str, _Live] = {}
        self._groups = fan_out.Groups.of(pipeline.steps)  # for_each instances, per group
        for step in pipeline.steps:
            step_result = StepResult(
                id=step.id,
                environment=step.environment,
                action=step.action.kind,
                line=step.position.line,
                column=step.position.column,
                definition_hash=step_hash(step),
            )
            self.result.steps.append(step_result)
            self._live[step.id] = _Live(step, step_result)
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
        pool = _WorkerPool(self.workers)
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
                    + [now + self.clock.from_real(_MAX_WAIT)]
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

    def _carry(self, live: _Live, earlier: Carried, *, queue_ready: bool) -> None:
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

    def template_context(self, **extra: Any) -> dict[str, Any]:
        """What templates see now: vars, the finished steps, and `extra` (result, response)."""
        return {"vars": self.vars, "steps": self._steps_view, **extra}

    _context = template_context

    def _settle_ready(self) -> None:
        """Decide, for every step whose needs are all final, whether it will run or is skipped."""
        while self._newly_ready:
            live = self._live[self._newly_ready.popleft()]
            step = live.step
            if self.refused and self._refuse(live):
                continue
            needs = [self._live[n].result for n in step.needs]
            ancestry = self.plan.ancestors(fan_out.ancestors_key(self, step))
            ancestors = [self._live[a].result for a in ancestry]
            condition = fan_out.group_condition(step)  # a dynamic group's is per instance
            evaluate = fan_out.evaluator(self, step)
            try:
                with self._template_limits(step.timeout):
                    run, reason = should_run(condition, needs, ancestors, evaluate)
            except TemplateError as exc:
                # An expression over outputs that an upstream failure or skip never produced is
                # not a mistake in the file: the step is skipped, as skips flow downstream.
                missing = [r for r in ancestors if r.conclusion != Status.SUCCESS]
                if missing:
                    # name the root cause (a failure rather than the skip it caused),
                    # deterministically
                    cause = min(
                        missing,
                        key=lambda r: (r.outcome == Status.SKIPPED, self._live[r.id].step.index),
                    )
                    reason = (
                        f"run_if could not be evaluated ({exc.message}) because upstream step "
                        f"{cause.id} ended {cause.outcome.value}"
                    )
                    live.result.skipped_reason = reason
                    self._finish(live, Status.SKIPPED, detail=reason)
                    continue
                self._finish(live, Status.ERROR, error=f"run_if: {exc}", exit_code=EXIT_INVALID)
                continue
            if run and self._aftermath and step.run_if.kind not in AFTERMATH_CONDITIONS:
                run, reason = False, f"not started: {self._aftermath}"
            if run:
                heapq.heappush(self._startable, (step.index, step.id))
            else:
                live.result.skipped_reason = reason
                self._finish(live, Status.SKIPPED, detail=reason)

    @contextlib.contextmanager
    def _template_limits(self, timeout: float | None) -> Iterator[None]:
        """Templates rendered here block the scheduler: each is bounded by the step's timeout
        (and template_limits.MAX_SECONDS), ended at once when the run is stopping, and all of
        one run's together by template_limits.RUN_SECONDS, so many steps cannot add up."""
        if self._template_seconds_left <= 0:
            raise TemplateError(
                "not rendered: this run's templates have used their "
                f"{template_limits.RUN_SECONDS:g} s in all",
                hint="templates are bounded; compute big values before the run, pass them as vars",
            )
        started = time.monotonic()
        allowed = min(timeout or template_limits.MAX_SECONDS, self._template_seconds_left)
        try:
            with templating.limits(seconds=allowed, stop=self._stopping.is_set):
                yield
        finally:
            self._template_seconds_left -= time.monotonic() - started

    def _refuse(self, live: _Live) -> bool:
        """After a failed login check: end the step `error` (exit 3) without starting it, unless
        it is a failure/always step whose own environment logged in. Refused steps end `error`,
        not `skipped`, so the alert that reacts to them sees the run as failed."""
        step = live.step
        own = self.refused.get(step.environment)
        if own is None and step.run_if.kind in AFTERMATH_CONDITIONS:
            return False
        if own is not None:
            why = f"not started: the login check failed: {own}"
        else:
            names = ", ".join(repr(n) for n in sorted(self.refused))
            why = f"not started: the login check failed for {names}"
        self._finish(live, Status.ERROR, error=why, exit_code=EXIT_PLATFORM)
        return True

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
                fan_out.fan_out(self, live)
                continue
            self._active += 1
            timeout = live.step.timeout
            if self._aftermath and not timeout:
                timeout = AFTERMATH_TIMEOUT  # the run is already over its deadline: stay bounded
            if timeout:
                deadline = _Deadline(now + timeout, next(self._seq), step_id, live.gen)
                heapq.heappush(self._deadlines, deadline)
            self._launch_attempt(live)
        for entry in held:
            heapq.heappush(self._startable, entry)

    def _where(self, step: Step) -> actions.Where:
        env = self.pipeline.environments.get(step.environment)
        return actions.Where(step.id, env.provider if env is not None else None)

    def _launch_attempt(self, live: _Live) -> None:
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
                    self._context(**fan_out.item_names(step)),
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

    def _submit(self, live: _Live, kind: Call, call: Callable[[], Any]) -> None:
        live.busy = True
        step_id, gen, step_gate = live.step.id, live.gen, live.gate
        answers, stopping = self._answers, self._stopping

        def job() -> None:
            if kind is Call.START and (stopping.is_set() or step_gate.closed):
                # never send a start after an interrupt, a whole-run timeout or the step's end
                answers.put(_Answer(step_id, gen, Call.NOT_SENT))
                return
            try:
                with gates.entered(step_gate):
                    value = call()
                answers.put(_Answer(step_id, gen, kind, value))
            except BaseException as exc:  # noqa: BLE001 - every failure is reported on the step
                answers.put(_Answer(step_id, gen, kind, error=exc))

        self._pool.submit(job)

    def _drain_answers(self) -> None:
        while True:
            try:
                answer = self._answers.get_nowait()
            except queue.Empty:
                return
            self._handle_answer(answer)

    def _handle_answer(self, answer: _Answer) -> None:
        live = self._live[answer.step_id]
        gen, kind, value, exc = answer.gen, answer.call, answer.value, answer.error
        number = live.attempts_started
        if kind is Call.NOT_SENT:
            self._start_not_sent(live, number)
            return
        if kind is Call.START and exc is not None and not _may_have_started(exc):
            self._start_not_sent(live, number)
        if kind in (Call.START, Call.ATTACH) and value is not None:
            handle, obs = value
            if kind is Call.START:  # the answer arrived (the worker recorded it already)
                ref = self.providers[live.step.environment].ref(handle) if obs.run_id else {}
                live.result.attempts[-1].ref = ref or None
                live.result.start_unconfirmed = False
            if gen != live.gen:  # the step ended (timeout, interrupt) while the start was in flight
                if (
                    obs.run_id
                    and not obs.terminal
                    and obs.run_id not in live.result.remote_may_continue
                ):
                    live.result.remote_may_continue.append(obs.run_id)
                return
            live.handle = handle
            live.result.attempts[-1].run_id = obs.run_id
        elif gen != live.gen:
            return
        live.busy = False
        if exc is not None:
            if kind is Call.START and live.result.start_unconfirmed:
                self._note_ambiguous_start(live, exc)
            self._fail_with_exception(live, exc)
            return
        obs = value[1] if kind in (Call.START, Call.ATTACH) else value
        self._observe(live, obs)

    def _start_not_sent(self, live: _Live, number: int) -> None:
        if live.result.start_unconfirmed:
            live.result.start_unconfirmed = False
            self.recorder.start_not_sent(live.step.id, number)

    def _fail_with_exception(self, live: _Live, exc: BaseException) -> None:
        if isinstance(exc, MftrunError):
            message, code = str(exc), exc.exit_code
        else:
            message, code = f"unexpected {exc.__class__.__name__}: {exc}", EXIT_PLATFORM
        self._note_remote_left_going(live)
        self._finish(live, Status.ERROR, error=message, exit_code=code)

    def _observe(self, live: _Live, obs: Observation) -> None:
        attempt = live.result.attempts[-1]
        provider = self.providers[live.step.environment]
        if obs.run_id and not attempt.run_id:
            attempt.run_id = obs.run_id
        live.result.http_calls = live.calls_before + provider.http_calls(live.handle)
        if obs.remote_status != attempt.remote_status:
            attempt.remote_status = obs.remote_status
            if not obs.terminal:
                self._emit(live, f"remote status: {obs.remote_status}")
        if not obs.terminal:
            # Retry-After is the platform's, in wall seconds; the schedule is in the clock's own
            now = self.clock.monotonic()
            elapsed = now - live.sent
            live.running_seen = max(live.running_seen, elapsed)
            delay = poll_schedule.next_delay(
                live.step.poll,
                elapsed,
                self.history.expect(live.step.id) if live.fresh else None,
                self.clock.from_real(obs.retry_after) if obs.retry_after is not None else None,
            )
            live.gap = delay
            self._timer(now + delay, live, Wake.POLL)
            return
        attempt.ended_at = self.clock.now()
        attempt.message = obs.message
        if obs.state == "success":
            attempt.status = Status.SUCCESS
            if live.fresh and attempt.run_id:  # a remote run: its duration is history
                self.history.learned(
                    live.step.id,
                    attempt.number,
                    self.clock.monotonic() - live.sent,
                    live.running_seen,
                    self.clock.now().isoformat(),
                )
            live.result.warnings = list(obs.warnings)
            said = [f"warning: {w}" for w in obs.warnings]
            # a success may have something to say (a wait that matched nothing, warnings): the
            # console shows it with the step's end
            detail = "; ".join([obs.message or "", *said]).strip("; ")
            self._finish_with_outputs(live, Status.SUCCESS, obs, detail=detail)
            return
        attempt.status = Status.FAILED
        retries = live.step.retries
        if (
            live.attempts_started <= retries.attempts
            and actions.action_type(live.step.action.kind).retry_can_help
            and not self._stopping.is_set()
        ):
            delay = retries.delay * (retries.backoff ** (live.attempts_started - 1))
            self._emit(
                live,
                f"attempt {live.attempts_started} failed ({obs.message or obs.remote_status}); "
                f"retrying in {format_duration(delay)}",
            )
            self._timer(self.clock.monotonic() + delay, live, Wake.RESTART)
            return
        self._finish_with_outputs(
            live, Status.FAILED, obs, error=obs.message or f"remote status {obs.remote_status}"
        )

    def _finish_with_outputs(
        self,
        live: _Live,
        status: Status,
        obs: Observation,
        error: str | None = None,
        detail: str = "",
    ) -> None:
        outputs = dict(obs.outputs)
        context = self._context(
            result=obs.outputs, response=obs.outputs, **fan_out.item_names(live.step)
        )
        try:
            with self._template_limits(live.step.timeout):
                for name, template in live.step.outputs.items():
                    outputs[name] = templating.render(template, context)
        except TemplateError as exc:
            live.result.outputs = outputs
            if status == Status.SUCCESS:
                self._finish(live, Status.ERROR, error=f"outputs: {exc}", exit_code=EXIT_INVALID)
                return
            error = f"{error}; outputs: {exc}"
        live.result.outputs = outputs
        self._finish(live, status, error=error, detail=detail)

    # -- timers and deadlines ------------------------------------------------------------------

    def _timer(self, when: float, live: _Live, wake: Wake) -> None:
        heapq.heappush(self._timers, _Timer(when, next(self._seq), live.step.id, wake, live.gen))

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

    def _fire_deadlines(self, now: float) -> None:
        while self._deadlines and self._deadlines[0].when <= now:
            deadline = heapq.heappop(self._deadlines)
            live = self._live[deadline.step_id]
            if deadline.gen != live.gen or live.result.outcome != Status.RUNNING:
                continue
            self._time_out(
                live, f"step timeout of {format_duration(live.step.timeout or 0)} reached"
            )

    def _time_out(self, live: _Live, why: str) -> None:
        left = self._cancel_remote(live, Status.TIMED_OUT)
        message = why + (f"; {left}" if left else "")
        self._finish(live, Status.TIMED_OUT, error=message)

    def _cancel_remote(self, live: _Live, status: Status) -> str:
        """Cancel where the platform can; otherwise record and say the run may still be going.

        The attempt is recorded as what happened to it (`timed_out` for a timeout, `cancelled`
        for an interrupt), never as a remote cancel that neither platform offers."""
        attempt = live.result.attempts[-1] if live.result.attempts else None
        waiting_for = live.gate.waiting_for
        sent = live.gate.close(status.value)  # from here on nothing is sent for this step
        if attempt is None or attempt.status != Status.RUNNING:
            return ""
        attempt.status = status
        attempt.ended_at = self.clock.now()
        provider = self.providers[live.step.environment]
        run_id = attempt.run_id
        if provider.can_cancel and live.handle is not None:
            handle = live.handle
            self._pool.submit(lambda: provider.cancel(handle))
            return f"cancel requested for remote run {run_id}" if run_id else "cancel requested"
        if run_id:
            if run_id not in live.result.remote_may_continue:
                live.result.remote_may_continue.append(run_id)
            return (
                f"remote run {run_id} may still be going "
                f"({provider.name} has no public cancel call)"
            )
        if live.busy and live.result.start_unconfirmed and not sent:
            # Truthfully: the start never left (it was sleeping in a retry loop or waiting for
            # a token), and the closed gate guarantees it never will.
            live.result.start_unconfirmed = False
            waited = f" (it was waiting for {waiting_for})" if waiting_for else ""
            return (
                f"nothing was started: the start request had not been sent{waited} and will not be"
            )
        if live.busy and live.result.start_unconfirmed:
            target = _target_of(live.step)
            entry = f"unknown run of {target}"
            if entry not in live.result.remote_may_continue:
                live.result.remote_may_continue.append(entry)
            return f"the start request was in flight: {target} may have started"
        return ""

    def _note_ambiguous_start(self, live: _Live, exc: BaseException) -> None:
        """A start that may have been processed but named no run: the report must still say
        that something may be running remotely (issue 15 item 14)."""
        target = getattr(exc, "target", None) or _target_of(live.step)
        entry = f"unknown run of {target}"
        if entry not in live.result.remote_may_continue:
            live.result.remote_may_continue.append(entry)

    def _note_remote_left_going(self, live: _Live) -> None:
        attempt = live.result.attempts[-1] if live.result.attempts else None
        if attempt and attempt.run_id and attempt.status == Status.RUNNING:
            live.result.remote_may_continue.append(attempt.run_id)

    def _enter_aftermath(self, why: str) -> None:
        """Whole-run timeout: end what runs, start nothing new, except the steps written to
        react to trouble (run_if failure or always): the alert an operator wrote for a
        stuck night must still go out. They keep their own timeout (or AFTERMATH_TIMEOUT)."""
        self._aftermath = why
        for live in list(self._live.values()):
            if live.result.outcome == Status.RUNNING:
                self._time_out(live, why)
        startable, self._startable = self._startable, []
        for index, step_id in startable:
            live = self._live[step_id]
            if live.step.run_if.kind in AFTERMATH_CONDITIONS:
                heapq.heappush(self._startable, (index, step_id))
            else:
                live.result.skipped_reason = f"not started: {why}"
                self._finish(live, Status.SKIPPED, detail=live.result.skipped_reason)

    def _stop_all(self, why: str) -> None:
        """Interrupt: end every unfinished step (running ones `cancelled`), start nothing new.
        (A whole-run timeout is `_enter_aftermath`: failure/always steps still run.)"""
        self._stopping.set()
        for live in self._live.values():
            if live.result.outcome == Status.RUNNING:
                left = self._cancel_remote(live, Status.CANCELLED)
                self._finish(live, Status.CANCELLED, error=why + (f"; {left}" if left else ""))
        for live in self._live.values():
            if not live.result.outcome.is_final:
                live.result.skipped_reason = f"not started: {why}"
                self._finish(live, Status.SKIPPED, detail=live.result.skipped_reason)
        self._newly_ready.clear()

    # -- endings -------------------------------------------------------------------------------

    def _finish(
        self,
        live: _Live,
        status: Status,
        *,
        error: str | None = None,
        detail: str = "",
        exit_code: int | None = None,
    ) -> None:
        result = live.result
        if result.outcome.is_final:
            return
        was_running = result.outcome == Status.RUNNING
        live.gate.close(status.value)  # a step that has ended sends nothing more
        live.gen += 1
        result.outcome = status
        result.conclusion = (
            Status.SUCCESS
            if status in FAILED_CONCLUSIONS and live.step.continue_on_error
            else status
        )
        result.error = error
        if status == Status.ERROR:
            result.error_exit_code = exit_code or EXIT_PLATFORM
        now = self.clock.now()
        result.ended_at = now
        if result.started_at is None:
            result.started_at = now
        if result.attempts:
            attempt = result.attempts[-1]
            if attempt.status == Status.RUNNING:
                attempt.status = status
                attempt.ended_at = now
                attempt.message = attempt.message or error
        if was_running and not fan_out.is_dynamic(live.step):  # a dynamic group holds no slot
            self._active -= 1
        self._ended(live, detail or error or "")

    def _ended(self, live: _Live, note: str, *, queue_ready: bool = True) -> None:
        """Record the end (durably, before any dependent may start), tell, release dependents."""
        result = live.result
        self._unfinished -= 1
        self._steps_view[result.id] = step_view(result)
        fan_out.ended(self, result)  # for_each: steps.<group>, and a dynamic group's end
        self.recorder.step_finished(result)
        if result.conclusion != result.outcome:
            note = f"{note} (continue_on_error: concluded success)".strip()
        self._emit(live, note)
        if not queue_ready:  # carried over before the run: run() hands these out
            self._walk.done_later(result.id)
            return
        for dependent in self._walk.done(result.id):
            if not self._live[dependent].result.outcome.is_final and not self._stopping.is_set():
                self._newly_ready.append(dependent)

    def _emit(self, live: _Live, detail: str) -> None:
        self.listener.step_changed(StepEvent(live.result, detail))


def _target_of(step: Step) -> str:
    """What a step's start may have set going, in words, when the platform named no run."""
    action = step.action
    return actions.action_type(action.kind).target(actions.spec_of(action)) or action.kind


def _may_have_started(exc: BaseException) -> bool:
    """Only an answer that proves the start was not processed clears the intent; anything
    else (a lost answer, a 5xx, an unexpected error) leaves it, so resume never guesses."""
    if isinstance(exc, (NotSentError, InputError, TemplateError, CredentialError, AuthError)):
        return False
    if isinstance(exc, RemoteError) and exc.status is not None:
        return not 400 <= exc.status < 500
    return True


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
