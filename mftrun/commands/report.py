"""`mftrun report show PATH`: print a finished run's summary again from its report.json."""

from __future__ import annotations

import argparse

HELP = "show the summary of a finished run from its report.json"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command", metavar="SUBCOMMAND")
    show = sub.add_parser(
        "show",
        help="print a run's summary table again",
        description="Print the summary of a finished run from its report.json "
        "(written by `mftrun apply` into --report-dir).",
    )
    show.add_argument(
        "path", metavar="PATH", help="report.json, or the report folder that holds it"
    )
    show.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: the summary table (default); json: the summary as JSON",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from mftrun.errors import UsageError
    from mftrun.reports import FILENAMES, load_report
    from mftrun.reports.summary import print_summary, summary_console, summary_data

    if getattr(args, "report_command", None) != "show":
        raise UsageError("say what to do: mftrun report show PATH")
    path = Path(args.path)
    if path.is_dir() and (path / FILENAMES["json"]).is_file():
        path = path / FILENAMES["json"]
    report = load_report(path)
    from mftrun.inert import inert_json

    if args.format == "json":
        text = json.dumps(summary_data(report), indent=2, ensure_ascii=False)
        sys.stdout.write(inert_json(text) + "\n")
        return 0

    print_summary(report, console=summary_console(sys.stdout))
    return 0
