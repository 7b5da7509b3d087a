"""`mftrun check FILE`: authenticate every environment the steps use and make one cheap call.

Why a separate command: a nightly pipeline should not discover at 02:00 that a
key was deleted or an allow-list changed. `check` reads the credentials, gets a
token and makes one read-only call per environment (licenses for Automate MFT,
a one-item task query for Acronis); it starts nothing. Exit 0, or 3 if any
environment fails.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from mftrun.login import LoginRow, check_providers

HELP = "authenticate every environment a pipeline uses and make one cheap read-only call"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML file")
    parser.add_argument(
        "--emulate",
        action="store_true",
        help="check against an in-process emulator instead of the real platforms",
    )
    parser.add_argument("--scenario", metavar="FILE", help="with --emulate: the emulator scenario")


CheckRow = LoginRow  # the same row `apply` makes when it logs in before the first step


def check_environments(
    pipeline: Any, *, redactor: Any, environ: Mapping[str, str] = os.environ, clock: Any = None
) -> list[CheckRow]:
    """One row per environment used by a step, checked in parallel; never raises for a platform."""
    from mftrun.providers.registry import create_provider
    from mftrun.preflight import credential_problems

    used = sorted({step.environment for step in pipeline.steps})
    envs = {name: pipeline.environments[name] for name in used if name in pipeline.environments}
    # Every unreadable credential of an environment at once, as apply lists them; nothing
    # is sent for an environment that cannot authenticate anyway.
    unreadable: dict[str, CheckRow] = {}
    for name, env in envs.items():
        if problems := credential_problems(env, environ):
            detail = "credentials cannot be read, nothing was sent:\n" + "\n".join(problems)
            unreadable[name] = CheckRow(name, env.provider, env.base_url, False, detail, 0.0)
    providers = {
        name: create_provider(env, max_parallel=1, redactor=redactor, environ=environ, clock=clock)
        for name, env in envs.items()
        if name not in unreadable
    }
    try:
        rows = check_providers(providers, envs, redactor=redactor, clock=clock)
    finally:
        for provider in providers.values():
            provider.close()
    return sorted([*rows, *unreadable.values()], key=lambda row: row.environment)


def print_table(rows: list[CheckRow], *, file: Any = None) -> None:
    """The table gives one line per environment; failures are then spelled out in full below it."""
    import sys

    from rich.console import Console
    from rich.table import Table

    from rich.text import Text

    from mftrun.inert import guarded, inert, inert_lines

    out = file or sys.stdout
    width = None if getattr(out, "isatty", lambda: False)() else 120
    # Every cell is Text through inert (a platform's answer, a URL or a name from the file
    # cannot carry markup, an escape or a workflow command), and each printed line is
    # guarded: a wrapped cell starts a line too.
    console = Console(file=guarded(out), highlight=False, soft_wrap=False, width=width)
    table = Table(title="mftrun check", title_justify="left")
    for column in ("environment", "provider", "base URL", "result", "time", "detail"):
        table.add_column(
            column, overflow="fold", no_wrap=column in ("environment", "result", "time")
        )
    for row in rows:
        result = Text("ok", style="green") if row.ok else Text("FAILED", style="red")
        first_line = row.detail.splitlines()[0] if row.detail else ""
        table.add_row(
            Text(inert(row.environment)),
            Text(inert(row.provider)),
            Text(inert(row.base_url)),
            result,
            f"{row.seconds:.1f}s",
            Text(inert(first_line)),
        )
    console.print(table)
    for row in rows:
        if not row.ok:
            line = Text(inert(row.environment), style="red")
            line.append(": " + inert_lines(row.detail))
            console.print(line)
    failed = sum(not r.ok for r in rows)
    console.print(
        f"{len(rows) - failed} of {len(rows)} environment(s) ok"
        if rows
        else "no environment is used by any step"
    )


def run(args: argparse.Namespace, *, environ: Mapping[str, str] = os.environ) -> int:
    import contextlib

    from mftrun.credentials import Redactor
    from mftrun.errors import EXIT_OK, EXIT_PLATFORM, UsageError
    from mftrun.validation import load_pipeline

    if getattr(args, "scenario", None) and not getattr(args, "emulate", False):
        raise UsageError("--scenario only makes sense with --emulate")
    pipeline = load_pipeline(args.file)
    redactor = Redactor()
    with contextlib.ExitStack() as stack:
        if getattr(args, "emulate", False):
            from mftrun.rehearsal import emulated

            pipeline = stack.enter_context(emulated(pipeline, args.scenario, redactor)).pipeline
        from mftrun.locations import resolve_locations

        pipeline = resolve_locations(pipeline, environ)
        rows = check_environments(pipeline, redactor=redactor, environ=environ)
    print_table(rows)
    _print_key_warnings(pipeline)
    return EXIT_OK if all(r.ok for r in rows) else EXIT_PLATFORM


def _print_key_warnings(pipeline: Any) -> None:
    """Private key files that other users can read (what OpenSSH would refuse)."""
    import sys

    from mftrun.inert import inert_lines
    from mftrun.preflight import key_file_warnings

    for warning in key_file_warnings(pipeline):
        print(inert_lines(warning), file=sys.stderr)
