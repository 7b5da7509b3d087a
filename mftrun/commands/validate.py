"""`mftrun validate PATH...`: every problem of every pipeline file, positioned; exit 0 or 2."""

from __future__ import annotations

import argparse

HELP = "check pipeline files (files or folders of *.yaml/*.yml) without running anything"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="pipeline files or folders")
    parser.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text for people, json for tools, github for workflow annotations "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--skip-scenarios",
        action="store_true",
        help="leave out emulator scenario files (recognised by their $schema modeline or "
        "their keys) instead of validating them as scenarios; the pre-commit hook uses it",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out files matching GLOB (the path, the path below the folder given, or "
        "the name; * also crosses /); repeatable, e.g. --exclude 'drafts/*'",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys

    from mftrun.errors import EXIT_INVALID, EXIT_OK, UsageError
    from mftrun.inert import inert, inert_json, inert_lines
    from mftrun.validation import check_paths, pipeline_files

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        raise UsageError(
            f"no such file or folder: {', '.join(inert(m) for m in missing)}",
            hint="give pipeline files or folders that contain *.yaml files",
        )
    from mftrun.filekinds import check_scenario, is_scenario, looks_like_scenario

    found, problems = pipeline_files(args.paths, args.exclude)
    if not found and not problems:
        raise UsageError(
            "every file was left out by --exclude", hint="check the --exclude patterns"
        )
    skipped = 0
    if args.skip_scenarios:
        kept = [f for f in found if not is_scenario(f)]
        skipped = len(found) - len(kept)
        scenarios: list = []
    else:
        scenarios = [f for f in found if looks_like_scenario(f)]
        kept = [f for f in found if f not in scenarios]
    shared: list = []
    files, more = check_paths([str(f) for f in kept], shared) if kept else ([], [])
    problems = problems + more
    for scenario in scenarios:
        problems.extend(check_scenario(scenario))
    files = sorted(files + scenarios)
    out = sys.stdout
    if args.format == "json":
        by_file: dict[str, list[dict[str, object]]] = {str(f): [] for f in files}
        for problem in problems:
            by_file.setdefault(problem.file, []).append(problem.to_dict())
        text = json.dumps(
            {
                "version": 1,
                "valid": not problems,
                "problem_count": len(problems),
                "files": [
                    {"file": name, "valid": not found, "problems": found}
                    for name, found in by_file.items()
                ],
            },
            indent=2,
        )
        out.write(inert_json(text) + "\n")
    elif args.format == "github":
        for problem in sorted(problems, key=lambda p: (p.file, p.line, p.column)):
            text = inert_lines(problem.message) + (
                f"\n hint: {inert_lines(problem.hint)}" if problem.hint else ""
            )
            out.write(
                f"::error file={_prop(inert(problem.file))},line={problem.line},"
                f"col={problem.column},title=mftrun validate::{_data(text)}\n"
            )
        out.write(_summary(files, problems, skipped, len(scenarios), len(shared)) + "\n")
    else:
        for problem in sorted(problems, key=lambda p: (p.file, p.line, p.column)):
            out.write(f"{problem}\n")
        out.write(_summary(files, problems, skipped, len(scenarios), len(shared)) + "\n")
    return EXIT_INVALID if problems else EXIT_OK


def _summary(
    files: list, problems: list, skipped: int = 0, scenarios: int = 0, shared: int = 0
) -> str:
    note = f" ({skipped} scenario file{'s' if skipped != 1 else ''} skipped)" if skipped else ""
    kinds = []
    if scenarios:
        kinds.append(f"{scenarios} of them scenario{'s' if scenarios != 1 else ''}")
    if shared:
        kinds.append(f"{shared} shared definitions file{'s' if shared != 1 else ''}")
    if kinds:
        note += f" ({', '.join(kinds)})"
    return _counts(files, problems) + note


def _counts(files: list, problems: list) -> str:
    import os

    bad = {p.file for p in problems}
    count = len(problems)
    # A problem inside an included file names that file: it counts among the files checked.
    checked = {str(f) for f in files} | {os.path.normpath(f) for f in bad}
    total = len({os.path.normpath(f) for f in checked})
    noun = "file" if total == 1 else "files"
    if not problems:
        return f"{len(files)} {'file' if len(files) == 1 else 'files'} valid"
    return (
        f"{count} problem{'s' if count != 1 else ''} in {len(bad)} of {total} {noun}"
        if files
        else f"{count} problem{'s' if count != 1 else ''}"
    )


def _data(text: str) -> str:
    """GitHub workflow-command escaping of a message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
