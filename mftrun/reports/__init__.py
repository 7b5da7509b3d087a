"""Reports: one scrubbed dict (the JSON report) rendered as JSON, HTML and JUnit.

Everything is built from `build_report(result, redactor)`, so the three files can
never disagree, and scrubbing happens once, on data, before any escaping could
hide a secret from the redactor (the rendered text is scrubbed again anyway).
Files are written atomically (temp file in the same folder + os.replace) so a
CI job that collects the folder after a crash never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import contextlib

from mftrun.errors import InputError, MftrunError, UsageError

if TYPE_CHECKING:
    from mftrun.credentials import Redactor
    from mftrun.results import RunResult

FORMATS = ("json", "html", "junit")
FILENAMES = {"json": "report.json", "html": "report.html", "junit": "junit.xml"}


def build_report(result: RunResult, redactor: Redactor | None = None) -> dict[str, Any]:
    """The JSON report as plain data: `RunResult.to_dict()`, made JSON-safe and encodable
    (a lone surrogate from a platform's JSON is spelled `\\ud800`, so every writer can
    write it), then scrubbed where text came from outside."""
    from mftrun.inert import encodable_data

    text = json.dumps(result.to_dict(), default=str)
    data = json.loads(text)
    # json.dumps (ensure_ascii) spells every surrogate `\udxxx`: without one in the text there
    # is nothing to mend, and the walk over every string (1 s for 10,000 steps) is skipped.
    if "\\ud" in text:
        data = encodable_data(data)
    if redactor is not None:
        data = scrub_report(data, redactor)
    return data


# What mftrun writes itself in a report: never scrubbed, so a secret that spells "success"
# cannot turn a status into "***" (and make the report unreadable by `report show`).
_RUN_FIELDS_KEPT = frozenset(
    {
        "report_version",
        "mftrun_version",
        "pipeline",
        "file",
        "sha256",
        "started_at",
        "ended_at",
        "duration",
        "exit_code",
        "interrupted",
        "emulated",
        "run_id",
        "resumed_from",
        "lock",
        "totals",
    }
)
_STEP_FIELDS_KEPT = frozenset(
    {
        "id",
        "environment",
        "action",
        "line",
        "column",
        "status",
        "outcome",
        "conclusion",
        "started_at",
        "ended_at",
        "duration",
        "http_calls",
        "hash",
        "carried_from",
        "reattached",
        "start_unconfirmed",
        "needs",
        "history",
    }
)
_ATTEMPT_FIELDS_KEPT = frozenset({"number", "started_at", "ended_at", "status"})


def scrub_step(step: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A step dict (as in report.json) with secrets masked in what came from outside only:
    errors, messages, remote statuses and run ids, outputs."""
    out: dict[str, Any] = {}
    for key, value in step.items():
        if key in _STEP_FIELDS_KEPT:
            out[key] = value
        elif key == "attempts" and isinstance(value, list):
            out[key] = [
                {
                    k: v if k in _ATTEMPT_FIELDS_KEPT else redactor.scrub_data(v)
                    for k, v in attempt.items()
                }
                if isinstance(attempt, dict)
                else redactor.scrub_data(attempt)
                for attempt in value
            ]
        else:
            out[key] = redactor.scrub_data(value)
    return out


def scrub_report(report: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """The report with secrets masked in text from outside, never in mftrun's own fields."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key in _RUN_FIELDS_KEPT:
            out[key] = value
        elif key == "steps" and isinstance(value, list):
            out[key] = [
                scrub_step(s, redactor) if isinstance(s, dict) else redactor.scrub_data(s)
                for s in value
            ]
        else:
            out[key] = redactor.scrub_data(value)
    return out


def render(report: dict[str, Any], fmt: str) -> str:
    """Render one format from the report dict, exactly as write_reports writes it."""
    return "".join(_chunks(report, fmt))


def write_reports(
    result: RunResult,
    *,
    report_dir: Path,
    formats: Collection[str] = FORMATS,
    redactor: Redactor | None = None,
) -> dict[str, Path]:
    """Write each requested format into report_dir; return {format: path}.

    Every format is attempted even if one fails (a run that crashed still wants
    whatever can be written); failures are raised together afterwards.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(f"unknown report format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    report = build_report(result, redactor)
    report_dir = Path(report_dir)
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MftrunError(
            f"cannot create report folder {report_dir}: {exc.strerror or exc}"
        ) from None
    written: dict[str, Path] = {}
    problems: list[str] = []
    for fmt in FORMATS:  # fixed order: the JSON, the source of truth, first
        if fmt not in formats:
            continue
        path = report_dir / FILENAMES[fmt]
        try:
            # The data is scrubbed already; the rendered text is not scrubbed again, as that
            # would mask mftrun's own words (a status, a template's labels).
            atomic_write(path, _chunks(report, fmt))
        except OSError as exc:
            problems.append(f"cannot write {path}: {exc.strerror or exc}")
            continue
        written[fmt] = path
    if problems:
        raise MftrunError("; ".join(problems))
    return written


def _chunks(report: dict[str, Any], fmt: str) -> Iterable[str]:
    """Each format as a stream of pieces: HTML and JSON are never held whole, so the peak
    memory of a 10,000-step run is the run's own, not the run plus a page (measured: +187 MB)."""
    if fmt == "html":
        from mftrun.reports.html import render_html_chunks

        return render_html_chunks(report)
    if fmt == "json":
        return _json_chunks(report)
    if fmt == "junit":
        from mftrun.reports.junit import render_junit

        return [render_junit(report)]
    raise UsageError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")


def _json_chunks(report: dict[str, Any]) -> Iterator[str]:
    """report.json with one step per line. `indent=` would switch json to its pure-Python
    encoder (3 s for 10,000 steps); compact objects use the C one, and a diff or grep
    still sees one step per line."""
    encode = json.JSONEncoder(ensure_ascii=False).encode
    items = list(report.items())
    yield "{\n"
    for i, (key, value) in enumerate(items):
        end = ",\n" if i < len(items) - 1 else "\n"
        if key == "steps" and isinstance(value, list) and value:
            yield f"  {encode(key)}: [\n"
            last = len(value) - 1
            for j, step in enumerate(value):
                yield "    " + encode(step) + (",\n" if j < last else "\n")
            yield "  ]" + end
        else:
            yield f"  {encode(key)}: {encode(value)}{end}"
    yield "}\n"


def atomic_write(path: Path, text: str | Iterable[str]) -> None:
    """Write text to path so readers see the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # backslashreplace: text that still holds a lone surrogate is written as `\\ud800`
        # rather than failing the one write that must not fail (the crash path uses it too).
        with os.fdopen(
            fd, "w", encoding="utf-8", errors="backslashreplace", newline="\n"
        ) as handle:
            if isinstance(text, str):
                handle.write(text)
            else:
                handle.writelines(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    """The packaged JSON Schema of report.json."""
    text = resources.files("mftrun").joinpath("schemas/report.schema.json").read_text("utf-8")
    return json.loads(text)


def load_report(path: Path) -> dict[str, Any]:
    """Read and check a report.json; InputError (exit 2) with a clear reason if it is not one."""
    import jsonschema

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such file",
            hint="give the report.json written by `mftrun apply` (default folder mftrun-report/)",
        ) from None
    except IsADirectoryError:
        raise InputError(
            f"{path} is a folder, not a report file", hint=f"try {path / FILENAMES['json']}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or exc.__class__.__name__}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}",
            hint="report show reads report.json, not report.html or junit.xml",
        ) from None
    validator = jsonschema.Draft202012Validator(report_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        raise InputError(
            f"{path} is not an mftrun report: at {where}: {message}",
            hint="it must match schemas/report.schema.json "
            f"(report_version {report_schema()['properties']['report_version']['const']})",
        )
    return data
