"""`mftrun runs [FILE]` and `mftrun runs show RUN_ID`: what the state store remembers."""

from __future__ import annotations

import argparse

HELP = "list the runs the state store recorded, or show one (runs show RUN_ID)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="*",
        metavar="FILE | show RUN_ID",
        help="a pipeline file (its runs, from the store next to it), or `show RUN_ID`",
    )
    parser.add_argument("--state", metavar="URL", help="state store (default: as apply)")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys

    from mftrun.errors import UsageError
    from mftrun.state.url import choose, open_store

    target = list(args.target)
    show = bool(target) and target[0] == "show"
    if show and len(target) != 2:
        raise UsageError("say which run: mftrun runs show RUN_ID")
    if not show and len(target) > 1:
        raise UsageError("mftrun runs takes at most one pipeline file")
    pipeline_file = target[0] if target and not show else None
    pipeline_name = None
    if pipeline_file:
        from mftrun.validation import load_pipeline

        pipeline_name = load_pipeline(pipeline_file).name
    store = open_store(choose(args.state, os.environ), pipeline_file)
    try:
        if show:
            return _show(store, target[1], args.format)
        runs = store.runs(pipeline_name, limit=max(1, args.limit))
        counts = store.step_counts([r.id for r in runs])
        if args.format == "json":
            data = [{**r.to_dict(), "steps": counts[r.id]} for r in runs]
            from mftrun.inert import inert_json

            sys.stdout.write(inert_json(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")
            return 0
        _table(runs, counts, store.name)
        return 0
    finally:
        store.close()


def _show(store: object, run_id: str, fmt: str) -> int:
    import json
    import sys

    from mftrun.errors import UsageError
    from mftrun.reports.summary import print_summary, summary_console, summary_data
    from mftrun.state.store import SqlStore

    assert isinstance(store, SqlStore)
    info = store.run(run_id)
    if info is None:
        raise UsageError(f"no run {run_id!r} in {store.name}", hint="list them: mftrun runs")
    from datetime import datetime

    from mftrun.results import Status

    steps = store.steps(run_id)
    totals = {s.value: 0 for s in Status}  # as report.json counts them: by outcome
    for step in steps:
        outcome = step.get("outcome") or step.get("status")
        if outcome in totals:
            totals[outcome] += 1
    duration = None
    if info.ended_at:
        started = datetime.fromisoformat(info.started_at)
        duration = round((datetime.fromisoformat(info.ended_at) - started).total_seconds(), 3)
    report = {
        **info.to_dict(),
        "run_id": info.id,
        "exit_code": info.exit_code if info.exit_code is not None else 1,
        "duration": duration,
        "totals": totals,
        "message": None if info.ended_at else "the run never recorded its end (crash or kill)",
        "steps": steps,
    }
    if fmt == "json":
        from mftrun.inert import inert_json

        sys.stdout.write(inert_json(json.dumps(report, indent=2, ensure_ascii=False)) + "\n")
        return 0
    summary_data(report)

    print_summary(report, console=summary_console(sys.stdout))
    return 0


def _table(runs: list, counts: dict[str, dict[str, int]], where: str) -> None:
    import sys

    from rich.table import Table
    from rich.text import Text

    from mftrun.inert import inert

    from mftrun.reports.summary import summary_console

    console = summary_console(sys.stdout)  # the terminal's width; unwrapped in a pipe or log
    if not runs:
        console.print(Text(f"no runs recorded in {inert(where)}"))
        return
    table = Table(title=Text(f"runs in {inert(where)}"), title_justify="left")
    table.add_column("run", no_wrap=True)
    for column in ("pipeline", "started", "duration", "verdict", "steps", "where"):
        table.add_column(column, overflow="fold")
    for info in runs:
        table.add_row(
            Text(inert(info.id)),
            Text(inert(info.pipeline)),
            info.started_at[:19].replace("T", " "),
            _duration(info.started_at, info.ended_at),
            Text(inert(info.verdict or "unfinished")),
            ", ".join(f"{n} {s}" for s, n in sorted(counts[info.id].items())),
            " ".join(
                str(x)
                for x in (info.meta.get("host"), f"pid {info.meta.get('pid')}", info.meta.get("ci"))
                if x
            ),
        )
    console.print(table)


def _duration(start: str, end: str | None) -> str:
    from datetime import datetime

    from mftrun.durations import format_duration

    if not end:
        return "-"
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return "?"
    return format_duration(max(0.0, seconds))
