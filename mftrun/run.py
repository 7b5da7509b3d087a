"""`apply` as one readable sequence of stages: load, plan, connect, execute, report."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Iterator, Mapping

from mftrun.errors import EXIT_FAILED, InputError, UsageError

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
        if args.max_parallel is not None and not 1 <= args.max_parallel <= 1000:
            raise UsageError("--max-parallel must be between 1 and 1000")
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
        from mftrun.console import make_console
        from mftrun.executor import Executor
        from mftrun.plan import build_plan
        from mftrun.validation import load_pipeline

        pipeline = load_pipeline(options.file)
        plan = build_plan(pipeline)
        redactor = Redactor()
        if key is None:
            memory = lock_store(stack, options, pipeline.lock or pipeline.name, environ, meta)
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
        console = make_console(quiet=options.quiet, redactor=redactor)
        for note in [*warnings, *memory.notes]:
            console.note(note)
        refused: dict[str, str] = {}
        if options.login_check:
            from mftrun.login import login_before_first_step

            refused = login_before_first_step(
                providers,
                pipeline.environments,
                redactor=redactor,
                note=console.note,
                quiet=options.quiet,
            )
        run_memory.start_recording(memory, pipeline, redactor, console.note)
        from mftrun.state.history import read_book

        book = read_book(memory.store, pipeline, environ, run_id=memory.run_id, warn=console.note)
        stack.callback(book.flush)  # before the store closes (registered after it)
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
            refused=refused,
            history=book,
        )
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
        written = report(result, options, redactor)
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


def preflight_credentials(
    pipeline: Pipeline, environ: Mapping[str, str], unlocated: list[str] | None = None
) -> list[str]:
    """Read every credential reference (and find every ca_bundle) before anything starts.

    A missing variable or key file is a set-up mistake, not a platform answer: finding it
    after half the pipeline has run (and the failure branch has paged someone) helps nobody.
    All of them are listed at once, so one edit of the CI secrets fixes them all.
    Returns the warnings (a private key file other users can read) to show.
    """
    from mftrun.errors import CredentialError

    used = {step.environment for step in pipeline.steps}
    problems: list[str] = list(unlocated or [])  # base_url/region from unset variables
    warnings = key_file_warnings(pipeline)
    for name, env in pipeline.environments.items():
        if name in used:
            problems.extend(f"environment {name!r}: {p}" for p in credential_problems(env, environ))
    if problems:
        what = (
            "some environments cannot be located or their credentials read"
            if unlocated
            else "some credentials cannot be read"
        )
        raise CredentialError(f"{what}, so nothing was started:\n" + "\n".join(warnings + problems))
    return warnings


def key_file_warnings(pipeline: Pipeline) -> list[str]:
    """Private key files of the used environments that other users can read or write (what
    OpenSSH would refuse), one warning each; `apply` and `check` show the same ones."""
    from mftrun.credentials import key_file_warning

    used = {step.environment for step in pipeline.steps}
    return [
        f"environment {name!r}: {warning}"
        for name, env in pipeline.environments.items()
        if name in used
        for field, ref in env.credentials.items()
        if (warning := key_file_warning(field, ref)) is not None
    ]


def credential_problems(env: Any, environ: Mapping[str, str]) -> list[str]:
    """Every credential, webhook URL/header and ca_bundle of one environment that cannot be
    read or used, each in words (never the value); `apply` and `check` both list them all."""
    from mftrun.credentials import resolve, too_short_to_mask
    from mftrun.errors import CredentialError

    problems: list[str] = []
    if env.provider == "webhook":
        from mftrun.providers.webhook import read_target

        try:
            read_target(env, environ=environ, redactor=None)
        except CredentialError as exc:
            prefix = f"environment {env.name!r}: "
            problems.extend(line.removeprefix(prefix) for line in str(exc).split("\n" + prefix))
            problems[0] = problems[0].removeprefix(prefix)
    for field, ref in env.credentials.items():
        try:
            value = resolve(field, ref, environ=environ, secret=False)
            if (short := too_short_to_mask(field, ref, value)) is not None:
                problems.append(short)
                continue
            if field == "private_key":  # unreadable keys are found now too, not at the first step
                from mftrun.http.auth import load_private_key

                where = f", declared at {ref.position}" if ref.position.line else ""
                load_private_key(value, source=f"{ref.kind} {ref.ref}{where}")
        except CredentialError as exc:
            problems.append(str(exc))
    if env.ca_bundle and not os.path.isfile(os.path.expanduser(env.ca_bundle)):
        problems.append(
            f"ca_bundle {env.ca_bundle} does not exist or "
            "is not a file\n  hint: point ca_bundle at a PEM file of trusted CA certificates"
        )
    return problems


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


@dataclass(frozen=True)
class Emulated:
    """The pipeline pointed at the emulator, and the scenario's speed (the run's clock)."""

    pipeline: Pipeline
    speed: float


@contextlib.contextmanager
def emulated(
    pipeline: Pipeline, scenario_path: str | None, redactor: Redactor
) -> Iterator[Emulated]:
    """Point every environment at an in-process emulator with generated credentials."""
    import tempfile

    from mftrun.emulator import Emulator, Scenario, load_scenario
    from mftrun.model import CredentialRef
    from mftrun.templating import is_template
    from types import MappingProxyType

    scenario = load_scenario(scenario_path) if scenario_path else Scenario.default()
    with Emulator(scenario) as emu, tempfile.TemporaryDirectory(prefix="mftrun-emulate-") as folder:
        env_vars = emu.write_credentials(Path(folder))
        creds = emu.credentials
        if "MFT_PRIVATE_KEY_FILE" not in env_vars and any(
            e.provider == "automate-mft" for e in pipeline.environments.values()
        ):
            raise InputError(
                f"scenario {scenario_path}: every Automate MFT key in it is a public key "
                "only, so mftrun cannot sign its client assertion under --emulate",
                hint="give one key a private_key, or leave keys out to have one generated",
            )
        for secret in (creds.private_key_pem, creds.client_secret):
            redactor.add(secret)
        environments = {}
        for name, env in pipeline.environments.items():
            if env.provider == "webhook":
                # The emulator's webhook sink receives the calls (journal: "webhooks"); no
                # variable or file of yours is read, and nothing leaves this machine.
                headers = {
                    header: ref if ref.kind == "value" else CredentialRef("value", "emulated")
                    for header, ref in env.headers.items()
                }
                environments[name] = replace(
                    env,
                    base_url=f"{emu.url}/_emulator/webhooks/{name}",
                    url_ref=None,
                    headers=MappingProxyType(headers),
                    ca_bundle=None,
                )
                continue
            if env.provider == "automate-mft":
                refs = {
                    "tenant_id": CredentialRef("value", creds.tenant_id),
                    "key_id": CredentialRef("value", creds.key_id),
                    "private_key": CredentialRef("file", env_vars["MFT_PRIVATE_KEY_FILE"]),
                }
            else:
                refs = {
                    "client_id": CredentialRef("value", creds.client_id),
                    "client_secret": CredentialRef("value", creds.client_secret),
                }
            environments[name] = replace(env, base_url=emu.url, credentials=refs, ca_bundle=None)
        for step in pipeline.steps:
            spec = step.action.spec
            if step.action.kind == "start_task":
                task_id, task_name = spec.get("task_id"), spec.get("name")
                if task_id and not is_template(task_id):
                    emu.ensure_mft_task(task_id=str(task_id))
                elif task_name and not is_template(task_name):
                    emu.ensure_mft_task(name=str(task_name))
            elif step.action.kind == "wait_tasks":
                emu.ensure_acronis_activity()
        yield Emulated(replace(pipeline, environments=environments), scenario.speed)


class SignalGuard:
    """SIGINT/SIGTERM while a run is going, while it is being concluded, and after.

    - setting up (no executor yet): stop at once, as Ctrl-C always did; nothing was started;
    - running: the first signal stops gracefully (nothing new starts, reports are written);
    - after the last step, before `decide`: the signal is part of the outcome: the run is
      reported interrupted, with the exit code of the signal and a message saying every step
      had already ended;
    - after `decide` (reports being written, then the lock and sessions released): the outcome
      stands, so the reports and the exit code agree; the signal is only acknowledged.
    A second Ctrl-C exits at once, whatever the phase.
    """

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.finished = False  # executor.run() returned
        self.decided = False
        self.late: int | None = None  # a signal that came after the last step, before decide

    def handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.executor is None:  # still setting up: nothing was started, just stop
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            from mftrun.errors import EXIT_TERMINATED, Interrupted

            error = Interrupted(f"{name} received before the run began: nothing was started")
            error.exit_code = EXIT_TERMINATED
            raise error
        first = self.executor.signal_received is None and self.late is None
        if not first and signum == signal.SIGINT:
            os._exit(130)
        if self.decided:
            print(
                f"\nmftrun: {name} received while writing the reports: finishing them "
                "(Ctrl-C again to exit at once)",
                file=sys.stderr,
                flush=True,
            )
            return
        if self.finished:
            self.late = self.late or signum
            print(
                f"\nmftrun: {name} received after the last step ended: writing the reports",
                file=sys.stderr,
                flush=True,
            )
            return
        print(
            f"\nmftrun: {name} received: starting nothing new, "
            "cancelling running steps (Ctrl-C again to exit at once)",
            file=sys.stderr,
            flush=True,
        )
        self.executor.interrupt(signum)

    def decide(self, result: RunResult) -> None:
        """Fix the outcome the reports will say; signals after this do not change it."""
        from mftrun.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

        self.finished = True
        late = self.late
        if late is None and self.executor.signal_received is not None and not result.interrupted:
            late = self.executor.signal_received  # came as the run ended, after it took its verdict
        self.decided = True
        if late is not None and not result.interrupted:
            name = signal.Signals(late).name
            result.interrupted = True
            was = result.exit_code
            result.exit_code = EXIT_TERMINATED if late == signal.SIGTERM else EXIT_INTERRUPTED
            note = (
                f"{name} received after every step had ended (the run alone would have "
                f"exited {was})"
            )
            result.message = f"{result.message}; {note}" if result.message else note


@contextlib.contextmanager
def signals_interrupt(executor: Any | None) -> Iterator[SignalGuard]:
    """Install the guard's handler for SIGINT and SIGTERM; restore the previous ones after."""
    guard = SignalGuard(executor)
    previous = {sig: signal.signal(sig, guard.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        for sig, old in previous.items():
            # Once the outcome is decided, a signal must not change it on the way out (a
            # raising handler would fire anywhere, even in a garbage-collector callback):
            # acknowledge only; the caller (cli.main) restores its own handlers after.
            signal.signal(sig, _acknowledge if guard.decided else old)


def _acknowledge(signum: int, frame: object) -> None:
    """After the exit code is decided: the run's outcome stands; the signal is noted only."""


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
