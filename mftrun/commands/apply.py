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
        "-q", "--quiet", action="store_true", help="print only failures and the final summary"
    )


def run(args: argparse.Namespace) -> int:
    from mftrun.run import ApplyOptions, apply

    return apply(ApplyOptions.from_args(args))
