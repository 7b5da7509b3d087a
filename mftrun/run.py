"""`apply` as one readable sequence of stages: load, plan, connect, execute, report."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from mftrun.errors import EXIT_FAILED, UsageError
from mftrun.preflight import preflight_credentials
from mftrun.rehearsal import emulated
from mftrun.signal_guard import signals_interrupt

if TYPE_CHECKING:  # imported where used: a losing apply (exit 4) should not pay for them
    from mftrun.credentials import Redactor
    from mftrun.model import Pipeline
    from mftrun.results import RunResult

REPORT_FORMATS = ("json", "html", "junit")


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ApplyOptions:
    file: str
    variables: Mapping[str, str]
    max_parallel: int | None = None
    emulate: bool = False
    scenario: str | None = None
    report_dir: Path | None = Path("mftrun-report")
    formats: tuple[str, ...] = REPORT_FORMATS
    quiet: bool = False
    state: str | None = None  # --state URL (else MFTRUN_STATE, else SQLite beside the file)
    no_state: bool = False
    resume: str | None = None  # "latest" or a run id
    resume_from: str | None = None  # an earlier report.json
    restart: tuple[str, ...] = ()
    wait_lock: float | None = None
    login_check: bool = True  # --no-login-check turns it off

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ApplyOptions:
        variables = {}
        for item in args.var:
            key, sep, value = item.partition("=")
            key = key.strip(" ")
            if not sep or not key:
                raise UsageError(f"--var {item!r}: write KEY=VALUE")
            if not _VAR_NAME.fullmatch(key):
                raise UsageError(
                    f"--var {key!r}: a var name is a letter or _ and then letters, digits or _",
                    hint="templates read it as vars.<name>; vars.b-ig would be a subtraction",
                )
            variables[key] = value
        formats = tuple(f.strip() for f in args.report.split(",") if f.strip())
        unknown = [f for f in formats if f not in REPORT_FORMATS]
        if unknown:
            raise UsageError(
                f"--report: unknown format {', '.join(unknown)}; "
                f"choose among {', '.join(REPORT_FORMATS)}"
            )
        if args.scenario and not args.emulate:
            raise UsageError("--scenario only makes sense with --emulate")
        if args.max_parallel is not None and args.max_parallel < 1:
            raise UsageError("--max-parallel must be at least 1")
        wait_lock = None
        if getattr(args, "wait_lock", None):
            from mftrun.durations import parse_duration

            try:
                wait_lock = parse_duration(args.wait_lock)
            except ValueError as exc:
                raise UsageError(f"--wait-lock {args.wait_lock!r}: {exc}") from None
        return cls(
            file=args.file,
            variables=variables,
            max_parallel=args.max_parallel,
            emulate=args.emulate,
            scenario=args.scenario,
            report_dir=None if args.no_report else Path(args.report_dir),
            formats=formats,
            quiet=args.quiet,
            state=getattr(args, "state", None),
            no_state=bool(getattr(args, "no_state", False)),
            resume=getattr(args, "resume", None),
            resume_from=getattr(args, "resume_from", None),
            restart=tuple(getattr(args, "restart", None) or ()),
            wait_lock=wait_lock,
            login_check=not getattr(args, "no_login_check", False),
        )


def apply(options: ApplyOptions, *, environ: Mapping[str, str] = os.environ) -> int:
    from mftrun import phases

    phases.mark("started")
    try:
        return _apply(options, environ)
    finally:
        phases.mark("exit")
        phases.write(dict(environ))


def _apply(options: ApplyOptions, environ: Mapping[str, str]) -> int:
    from mftrun import phases
    from mftrun.state import lock as run_lock

    check_memory_options(options)
    # The guard outlives the stack: a signal while the stack unwinds (providers, emulator, lock)
    # after the outcome was decided must not change the exit code the reports already state.
    with signals_interrupt(None) as guard, contextlib.ExitStack() as stack:
        # The lock before anything else: a second apply exits 4 having touched nothing, and
        # (SQLite) having imported little more than the standard library.
        key = None if options.no_state else run_lock.quick_lock_key(options.file)
        run_id = run_lock.new_run_id()
        meta = run_lock.run_meta(run_id, environ)
        if key is not None:
            db = run_lock.sqlite_path(options.state or environ.get("MFTRUN_STATE"), options.file)
            if db is not None:
                held = run_lock.hold(run_lock.lock_file(db, key), key, meta, options.wait_lock)
                stack.enter_context(held)
        from mftrun.credentials import SECRET_NAME, Redactor, mask_secret_names
        from mftrun.state import memory as run_memory

        memory = run_memory.Memory(meta=meta)
        if key is not None:
            memory = lock_store(stack, options, key, environ, meta)
        from mftrun.validation import load_pipeline

        phases.mark("imported")
        pipeline = load_pipeline(options.file)
        phases.mark("validated")
        redactor = Redactor()
        if key is None:
            memory = lock_store(stack, options, pipeline.lock or pipeline.name, environ, meta)
        # the right lock and what to resume, before anything is sent: a losing or mistaken
        # apply exits having asked the platform nothing
        run_memory.plan_memory(
            stack,
            memory,
            pipeline,
            resume=options.resume,
            resume_from=options.resume_from,
            restart=options.restart,
            wait_lock=options.wait_lock,
        )
        from mftrun.clock import Clock, ScaledClock, SystemClock

        clock: Clock = SystemClock()
        as_written = pipeline  # history is keyed by the environments as written
        if options.emulate:
            emulation = stack.enter_context(emulated(pipeline, options.scenario, redactor))
            pipeline = emulation.pipeline
            if emulation.speed != 1:  # mftrun's own timers at the scenario's pace
                clock = ScaledClock(emulation.speed)
        from mftrun.locations import locate

        pipeline, unlocated = locate(pipeline, environ)
        warnings = preflight_credentials(pipeline, environ, unlocated)
        prepare_report_dir(options)
        providers = connect(
            pipeline,
            redactor=redactor,
            environ=environ,
            max_parallel=options.max_parallel or pipeline.max_parallel,
        )
        stack.callback(lambda: [p.close() for p in providers.values()])
        phases.mark("connected")
        login = None
        if options.login_check:  # the token is fetched while the run is prepared below
            from mftrun.early_login import LoginInFlight

            login = LoginInFlight(
                providers, pipeline.environments, redactor=redactor, quiet=options.quiet
            )
        from mftrun.plan import build_plan

        plan = build_plan(pipeline)
        phases.mark("planned")
        from mftrun.console import make_console
        from mftrun.executor import Executor

        console = make_console(quiet=options.quiet, redactor=redactor)
        for note in [*warnings, *memory.notes]:
            console.note(note)
        run_memory.start_recording(memory, pipeline, redactor, console.note)
        from mftrun.state.history import read_book

        book = read_book(
            memory.store,
            as_written,
            environ,
            run_id=memory.run_id,
            warn=console.note,
            emulated=options.emulate,
        )
        stack.callback(book.flush)  # before the store closes (registered after it)
        # the live progress line's expected end: the critical path over each step's p50
        console.expected_seconds = book.expected_total(plan.needs)
        executor = Executor(
            pipeline,
            plan,
            providers,
            clock=clock,
            listener=console,
            variables=options.variables,
            max_parallel=options.max_parallel,
            recorder=memory.recorder,
            prior=memory.prior,
            history=book,
        )
        phases.mark("prepared")
        # nothing is started before this: the check's verdict decides what may start
        refused = login.wait(console.note) if login is not None else {}
        executor.refused = refused
        phases.mark("logged_in")
        if refused:
            from mftrun.login import refusal_message

            executor.result.message = refusal_message(refused)
        executor.result.emulated = options.emulate
        executor.result.run_id = memory.run_id
        executor.result.resumed_from = memory.resumed_from
        executor.result.lock = memory.lock_key
        for name, value in options.variables.items():
            if SECRET_NAME.search(name):  # --var api_token=...: masked wherever it is echoed
                redactor.add(value)
        executor.result.variables = {
            k: str(v) for k, v in mask_secret_names(options.variables).items()
        }
        # In force until the reports are written and the exit code is decided (issue 15
        # item 17): a signal just after the last step still gives a full, truthful report.
        guard.executor = executor  # from here on a signal stops the run gracefully
        phases.mark("ready")
        try:
            result = executor.run()
        except BaseException:
            report(executor.result, options, redactor, crashed=True)
            memory.finish(exit_code=1, verdict="crashed", warn=console.note)
            raise
        guard.finished = True
        guard.decide(result)
        memory.finish(
            exit_code=result.exit_code,
            verdict=run_memory.verdict_of(result.exit_code),
            warn=console.note,
        )
        phases.mark("ran")
        written = report(result, options, redactor)
        phases.mark("reported")
        if not written and result.exit_code == 0:
            return 1  # the run went well but the evidence CI asked for is missing
        return result.exit_code


def check_memory_options(options: ApplyOptions) -> None:
    if options.resume and options.resume_from:
        raise UsageError("--resume and --resume-from: choose one source")
    if options.restart and not (options.resume or options.resume_from):
        raise UsageError("--restart only makes sense with --resume or --resume-from")
    if options.no_state and options.resume:
        raise UsageError(
            "--resume reads the state store, which --no-state turns off",
            hint="drop --no-state, or resume from an earlier report with --resume-from",
        )


def lock_store(
    stack: contextlib.ExitStack,
    options: ApplyOptions,
    key: str,
    environ: Mapping[str, str],
    meta: dict[str, Any],
) -> Any:
    from mftrun.state.memory import take_lock

    return take_lock(
        stack,
        options.file,
        key,
        meta=meta,
        state_url=options.state,
        no_state=options.no_state,
        wait_lock=options.wait_lock,
        environ=environ,
    )


def prepare_report_dir(options: ApplyOptions) -> None:
    """Find out before the first task starts that the reports cannot be written."""
    folder = options.report_dir
    if folder is None or not options.formats:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--report-dir {folder}: cannot create the folder: {exc.strerror or exc}",
            hint="choose a folder you can write to, or --no-report",
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(
            f"--report-dir {folder}: the folder is not writable",
            hint="choose a folder you can write to, or --no-report",
        )


def connect(
    pipeline: Pipeline, *, redactor: Redactor, environ: Mapping[str, str], max_parallel: int
) -> dict[str, Any]:
    """One provider (one authenticated session) per environment that a step uses."""
    from mftrun.providers.registry import create_provider

    used = {step.environment for step in pipeline.steps}
    return {
        name: create_provider(env, max_parallel=max_parallel, redactor=redactor, environ=environ)
        for name, env in pipeline.environments.items()
        if name in used
    }


def report(
    result: RunResult, options: ApplyOptions, redactor: Redactor, *, crashed: bool = False
) -> bool:
    """Write the report files, CI annotations and the final summary; never lose the run's result.

    A report that cannot be written is said after the summary, so the run's outcome
    is still on the console; returns False then.
    """

    from mftrun.errors import MftrunError

    if crashed:
        result.message = result.message or "mftrun crashed during the run; this report is partial"
        if result.exit_code == 0:
            result.exit_code = EXIT_FAILED  # what the process exits with (cli's crash handler)
    if result.ended_at is None:
        result.ended_at = datetime.now(timezone.utc) if crashed else result.started_at
    written: dict[str, Path] = {}
    failure: MftrunError | None = None
    if options.report_dir is not None and options.formats:
        from mftrun.reports import write_reports

        try:
            written = write_reports(
                result, report_dir=options.report_dir, formats=options.formats, redactor=redactor
            )
        except MftrunError as exc:
            failure = exc
    from mftrun.reports.github import annotate

    annotate(result, redactor=redactor)
    from mftrun.inert import inert, inert_lines

    if crashed:
        if failure is not None:
            print(f"mftrun: {inert_lines(redactor.scrub(str(failure)))}", file=sys.stderr)
        return failure is None
    from mftrun.reports import build_report
    from mftrun.reports.summary import print_summary, summary_console

    print_summary(build_report(result, redactor), console=summary_console(sys.stdout))
    for kind, path in written.items():
        print(f"{kind} report: {inert(path)}")
    if failure is not None:
        print(f"mftrun: error: {inert_lines(redactor.scrub(str(failure)))}", file=sys.stderr)
        return False
    return True
