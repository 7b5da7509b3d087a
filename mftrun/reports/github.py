"""GitHub Actions: `::error` annotations on the YAML line of each failed step, and a job summary.

Only when GITHUB_ACTIONS == "true". The annotation format and its escaping follow
@actions/core (command.ts): in the message % CR LF are percent-encoded, in
properties also `:` and `,`. Escaping newlines is also what stops a platform's
error text from starting a workflow command of its own on a new line; text from
outside first passes `mftrun.inert` (no terminal escapes reach the log either).
The job summary is Markdown, so text from outside is written with every ASCII
punctuation character backslash-escaped (CommonMark's rule for a literal): a
platform message renders as text, never as an image, a link, a heading or HTML.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mftrun.inert import inert, inert_lines
from mftrun.reports.summary import (
    STATUS_TEXT,
    SharedCause,
    duration_text,
    remote_notes,
    shared_causes,
    status_label,
    totals_text,
    verdict,
)

if TYPE_CHECKING:
    from mftrun.credentials import Redactor
    from mftrun.results import RunResult

ANNOTATED = ("failed", "error", "timed_out")
VERDICT_ICON = {
    "success": "✅",
    "failed": "❌",
    "timed_out": "⏱️",
    "interrupted": "⏹️",
    "error": "❌",
}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties: object) -> str:
    props = ",".join(
        f"{k}={escape_property(str(v))}" for k, v in properties.items() if v not in (None, "", 0)
    )
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"


def _relative(file: str, environ: Mapping[str, str], cwd: str | None = None) -> str:
    """GitHub matches annotation paths against the repository root (the workspace).

    A relative path is relative to where mftrun was started, which need not be the
    workspace (`cd work && mftrun apply night.yaml` must annotate `work/night.yaml`), so
    it is made absolute from the working folder first. Symlinks (a workspace reached
    through one) are tried resolved as well."""
    workspace = environ.get("GITHUB_WORKSPACE")
    path = Path(file)
    if not workspace or not file:
        return path.as_posix()
    absolute = Path(os.path.normpath(Path(cwd or os.getcwd()) / path))
    for candidate, root in (
        (absolute, Path(os.path.normpath(workspace))),
        (Path(os.path.realpath(absolute)), Path(os.path.realpath(workspace))),
    ):
        try:
            return candidate.relative_to(root).as_posix()
        except ValueError:
            continue
    return path.as_posix()  # outside the workspace: GitHub cannot place it anyway


def annotation_lines(report: dict[str, Any], environ: Mapping[str, str] = os.environ) -> list[str]:
    file = _relative(str(report.get("file") or ""), environ)
    lines = []
    steps = list(report.get("steps") or ())
    # One cause, one message: steps failed for the same reason on one environment (a refused
    # token) get one annotation, at the first of them, naming every step it affected.
    shared: dict[str, SharedCause] = {}
    for group in shared_causes(steps):
        for sid in group.step_ids:
            shared[sid] = group
    for step in steps:
        status = step.get("status")
        position = {
            "file": file,
            "line": step.get("line") or None,
            "col": step.get("column") or None,
        }
        cause = shared.get(str(step.get("id")))
        if status in ANNOTATED and cause is not None:
            if cause.step_ids[0] == str(step.get("id")):
                allowed = step.get("conclusion") == "success"
                title = inert(
                    f"mftrun: {len(cause.step_ids)} steps on environment {cause.environment} "
                    f"{STATUS_TEXT.get(status, ('', status))[1]}"
                    + (" (allowed to fail)" if allowed else "")
                )
                message = inert_lines(
                    f"{step.get('error')}\naffected steps: {', '.join(cause.step_ids)}"
                )
                lines.append(
                    command("warning" if allowed else "error", message, **position, title=title)
                )
        elif status in ANNOTATED:
            allowed = step.get("conclusion") == "success"
            title = inert(
                f"mftrun: step {step.get('id')} {STATUS_TEXT.get(status, ('', status))[1]}"
            )
            message = inert_lines(step.get("error") or status_label(str(status)))
            if allowed:
                title += " (allowed to fail)"
            lines.append(
                command("warning" if allowed else "error", message, **position, title=title)
            )
        for warning in step.get("warnings") or ():
            lines.append(
                command(
                    "warning",
                    inert_lines(str(warning)),
                    **position,
                    title=inert(f"mftrun: step {step.get('id')} succeeded with a warning"),
                )
            )
        for note in remote_notes(step):
            lines.append(
                command(
                    "warning",
                    inert(f"{note}; the platform offers no cancel"),
                    **position,
                    title=inert(f"mftrun: step {step.get('id')} left remote work going"),
                )
            )
    return lines


# The ASCII punctuation that can begin Markdown or HTML: links, images, emphasis, code,
# headings, tables, entities, autolinks (`:` of a URL, `.` of www., `@` of an e-mail).
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_{}\[\]()<>#!|~&:@.])")


def _cell(value: object) -> str:
    """Text from outside as literal Markdown text on one line (also safe in a table cell):
    each active character backslash-escaped, which CommonMark renders as the character."""
    text = " ".join(inert(value).split())
    return _MARKDOWN_ACTIVE.sub(r"\\\1", text) or " "


def markdown_summary(report: dict[str, Any]) -> str:
    key, words = verdict(report)
    emulated = " (emulated)" if report.get("emulated") else ""
    out = [
        f"### {VERDICT_ICON.get(key, '')} mftrun · {_cell(report.get('pipeline'))}: "
        f"{words}{emulated}",
        "",
    ]
    out.append(
        f"{totals_text(report)} in {duration_text(report.get('duration'))}"
        f" · exit code {report.get('exit_code')}"
    )
    if emulated:
        out += ["", "> Emulated run (`--emulate`): no real platform was called."]
    if report.get("message"):
        out += ["", f"> {_cell(report['message'])}"]
    from mftrun.reports.github_summary import step_lines

    out += step_lines(report, _cell)
    return "\n".join(out) + "\n\n"


def annotate(
    result: RunResult,
    *,
    environ: Mapping[str, str] = os.environ,
    stream: TextIO | None = None,
    redactor: Redactor | None = None,
) -> None:
    """Print annotations and append the job summary, when running under GitHub Actions."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return
    from mftrun.reports import build_report

    annotate_report(
        build_report(result, redactor),
        environ=environ,
        stream=stream if stream is not None else sys.stdout,
        redactor=redactor,
    )


def annotate_report(
    report: dict[str, Any],
    *,
    environ: Mapping[str, str] = os.environ,
    stream: TextIO = sys.stdout,
    redactor: Redactor | None = None,
) -> None:
    if environ.get("GITHUB_ACTIONS") != "true":
        return

    if redactor is not None:  # masked in the text from outside only, never mftrun's words
        from mftrun.reports import scrub_report

        report = scrub_report(report, redactor)
    stream.writelines(line + "\n" for line in annotation_lines(report, environ))
    stream.flush()
    summary_path = environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        try:
            with open(summary_path, "a", encoding="utf-8") as handle:
                handle.write(markdown_summary(report))
        except OSError as exc:  # the summary is a nicety; never fail the run over it
            stream.write(
                command("warning", f"mftrun could not write the job summary: {exc.strerror or exc}")
                + "\n"
            )
