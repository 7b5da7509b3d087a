"""Command line: parse, dispatch to `mftrun.commands.<name>`, map errors to exit codes.

Kept thin and light: `mftrun --help` and `--version` import nothing but argparse.
Each command module exposes `HELP`, `configure(parser)` and `run(args) -> int`
and does its heavy imports inside `run`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mftrun import __version__
from mftrun.interrupts import after_imports, deliver_held

COMMANDS = (
    "validate",
    "plan",
    "graph",
    "schema",
    "apply",
    "check",
    "emulate",
    "report",
    "runs",
    "state",
    "completion",
)

EPILOG = """exit codes:
  0    everything succeeded
  1    a task failed or timed out
  2    invalid input or usage
  3    a platform could not be reached or authenticated (or the state store)
  4    another run of this pipeline holds its lock; nothing was started
  130  interrupted (143 for SIGTERM)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mftrun",
        description="Declarative job runner for managed-file-transfer and backup platforms.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mftrun {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        # Every listed command must exist: a missing module is a packaging bug, not an option.
        module = importlib.import_module(f"mftrun.commands.{name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(command)
        command.set_defaults(_module=module)
    return parser


class _Terminated(BaseException):
    """SIGTERM before a command installed its own handling: unwind (locks released), exit 143."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    _quick_exit()

    try:
        previous_int = signal.getsignal(signal.SIGINT)
        if callable(previous_int):  # a Ctrl-C inside an import is raised after it
            signal.signal(signal.SIGINT, after_imports(previous_int))
        previous = signal.signal(signal.SIGTERM, after_imports(_on_sigterm))
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        return _main(argv)
    try:
        return _main(argv)
    except _Terminated:
        print("mftrun: terminated (SIGTERM)", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)  # a command may have left an acknowledger


def _quick_exit() -> None:
    """Freeze the heap when the interpreter exits: its final collection then skips every
    object (imports, the run's results), which took 80-120 ms after the last line was written
    (bench/fixed_costs.py). Registered once; an embedding program exits no slower."""
    global _QUICK_EXIT
    if not _QUICK_EXIT:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _QUICK_EXIT = True


_QUICK_EXIT = False


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()  # imports every command module: Ctrl-C may land here
        deliver_held()  # a Ctrl-C held during those imports is raised here, before any work
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
            return int(exc.code or 0)
        if not getattr(args, "_module", None):
            parser.print_help(sys.stderr)
            return 2
    except KeyboardInterrupt:
        return interrupted()
    return run_command(args)


def interrupted() -> int:
    """Ctrl-C before a command ran (imports, parser): nothing started; exit 130, no traceback."""
    print("mftrun: interrupted", file=sys.stderr)
    return 130


def run_command(args: argparse.Namespace) -> int:
    from mftrun.errors import EXIT_INTERRUPTED, MftrunError

    try:
        return int(args._module.run(args))
    except MftrunError as exc:
        from mftrun.inert import inert_lines

        # The message may quote a platform or a file name: each line inert, none a command.
        print(f"mftrun: error: {inert_lines(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mftrun: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `mftrun plan | head`); not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:  # a bug in mftrun, not the user's input
        import tempfile
        import traceback

        from mftrun.credentials import scrub_everywhere

        fd, path = tempfile.mkstemp(prefix="mftrun-crash-", suffix=".log")
        # backslashreplace: a lone surrogate in the traceback must not fail the crash log.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as log:
            log.write(scrub_everywhere(traceback.format_exc()))
        print(
            f"mftrun: internal error (a bug in mftrun {__version__}); details in {path}",
            file=sys.stderr,
        )
        return 1
