"""`mftrun apply FILE`: validate, plan, run against the platforms, report, exit with the truth."""

from __future__ import annotations

import argparse

HELP = "run a pipeline: start the tasks, watch them to the end, write reports"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML file")
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a template variable (overrides the file's vars); repeatable",
    )
    parser.add_argument(
        "--max-parallel",
        type=int,
        metavar="N",
        help="run at most N steps at once (overrides the file)",
    )
    parser.add_argument(
        "--emulate",
        action="store_true",
        help="run against an in-process emulator instead of the real platforms",
    )
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="with --emulate: the emulator scenario (task durations, outcomes, faults)",
    )
    parser.add_argument(
        "--report-dir",
        default="mftrun-report",
        metavar="DIR",
        help="where report.json, report.html and junit.xml go (default: %(default)s)",
    )
    parser.add_argument(
        "--report",
        default="json,html,junit",
        metavar="FORMATS",
        help="comma-separated report formats among json, html, junit (default: %(default)s)",
    )
    parser.add_argument("--no-report", action="store_true", help="write no report files")
    parser.add_argument(
        "--no-login-check",
        action="store_true",
        help="do not log in to every environment before the first step (e.g. an API key "
        "without read access to the check's call); a wrong key is then found by its first step",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only failures and the final summary"
    )
    memory = parser.add_argument_group("run memory (state store, resume, lock)")
    memory.add_argument(
        "--state",
        metavar="URL",
        help="state store: sqlite:///path/state.db, a path, or postgresql://user@host/db "
        "(default: $MFTRUN_STATE, else .mftrun/state.db next to the pipeline file)",
    )
    memory.add_argument(
        "--no-state", action="store_true", help="record nothing and take no lock (as before 0.2)"
    )
    memory.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN_ID",
        help="continue the most recent unfinished or failed run of this pipeline (or RUN_ID): "
        "successes are carried over, remote runs still going are re-attached, never restarted",
    )
    memory.add_argument(
        "--resume-from",
        metavar="REPORT",
        help="resume from an earlier report.json instead of the store (CI without a store)",
    )
    memory.add_argument(
        "--restart",
        action="append",
        default=[],
        metavar="STEP",
        help="with --resume: start STEP again although its earlier start may have reached the "
        "platform (you checked that it did not); repeatable",
    )
    memory.add_argument(
        "--wait-lock",
        metavar="DURATION",
        help="if another apply of this pipeline holds the lock, wait up to DURATION (e.g. 10m) "
        "instead of exiting 4",
    )


def run(args: argparse.Namespace) -> int:
    from mftrun.run import ApplyOptions, apply

    return apply(ApplyOptions.from_args(args))
