"""JUnit XML from the report dict: one testsuite per pipeline, one testcase per step.

Follows the common JUnit schema that Jenkins (junit-10.xsd), GitLab and most CI
parsers accept: only the usual attributes, children in the schema's order
(properties, testcase*, system-out), times in seconds, a timestamp without a
zone (UTC). ElementTree escapes text; characters XML 1.0 forbids (ANSI escape
codes in a platform's message, NUL) are replaced, or parsers reject the file.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any

from mftrun.reports.summary import STATUS_TEXT, remote_notes, verdict

_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
FAILURE = ("failed", "timed_out")
ERROR = ("error", "cancelled", "pending", "running")  # pending/running: the run stopped under it


def clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", "" if text is None else str(text))


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def _timestamp(value: str | None) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def _details(step: dict[str, Any], pipeline_file: str) -> str:
    """Everything a person needs in the CI test view, as plain text."""
    lines = [f"step {step.get('id')} ({step.get('action')} on {step.get('environment')})"]
    if step.get("line"):
        lines.append(f"defined at {pipeline_file}:{step['line']}:{step.get('column') or 1}")
    lines.append(f"outcome: {step.get('outcome')}, conclusion: {step.get('conclusion')}")
    for attempt in step.get("attempts") or ():
        lines.append(
            f"attempt {attempt.get('number')}: {attempt.get('status')}"
            f" (remote run {attempt.get('run_id') or '-'},"
            f" remote status {attempt.get('remote_status') or '-'},"
            f" {attempt.get('started_at')} -> {attempt.get('ended_at') or '?'})"
            + (f": {attempt['message']}" if attempt.get("message") else "")
        )
    if step.get("error"):
        lines.append(f"error: {step['error']}")
    lines.extend(remote_notes(step))
    lines.extend(f"warning: {w}" for w in step.get("warnings") or ())
    for name, value in (step.get("outputs") or {}).items():
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"output {name} = {shown}")
    lines.append(f"HTTP calls: {step.get('http_calls', 0)}")
    return "\n".join(lines)


def _junit_status(step: dict[str, Any]) -> str | None:
    """continue_on_error: the step failed but concluded success. CI test views judge the
    build by <failure>/<error> (Jenkins turns the build unstable), so such a step passes
    here, as it does for the exit code; its details, in system-out, say it failed."""
    if step.get("conclusion") == "success":
        return "success"
    return step.get("status")


EMULATED_TEXT = "emulated run (--emulate): no real platform was called"


def _property_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return clean(value)


def build_junit(report: dict[str, Any]) -> ET.Element:
    pipeline = clean(report.get("pipeline") or "pipeline")
    steps = report.get("steps") or []
    counts = {"tests": len(steps), "failures": 0, "errors": 0, "skipped": 0}
    for step in steps:
        status = _junit_status(step)
        if status in FAILURE:
            counts["failures"] += 1
        elif status in ERROR:
            counts["errors"] += 1
        elif status == "skipped":
            counts["skipped"] += 1
    totals = {k: str(v) for k, v in counts.items()}
    time = _seconds(report.get("duration"))

    root = ET.Element("testsuites", {"name": pipeline, **totals, "time": time})
    suite_attrs = {"name": pipeline, **totals, "time": time, "id": "0"}
    if stamp := _timestamp(report.get("started_at")):
        suite_attrs["timestamp"] = stamp
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    properties = ET.SubElement(suite, "properties")
    for name in ("file", "sha256", "mftrun_version", "report_version", "exit_code", "emulated"):
        if report.get(name) is not None:
            ET.SubElement(
                properties, "property", {"name": name, "value": _property_value(report[name])}
            )
    ET.SubElement(properties, "property", {"name": "verdict", "value": verdict(report)[0]})

    file = str(report.get("file") or "")
    # CI test views show the texts, rarely the properties: a rehearsal must not pass for a run
    # against the platforms, so every testcase and the suite say it.
    emulated_note = f"\n{EMULATED_TEXT}" if report.get("emulated") else ""
    # Complete, but what did not pass first: a CI test view of hundreds of cases opens at the
    # top, and its reader is looking for the failures (file order within each part).
    ordered = sorted(steps, key=lambda s: _junit_status(s) not in FAILURE + ERROR)
    for step in ordered:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "name": clean(step.get("id")),
                "classname": pipeline,
                "time": _seconds(step.get("duration")),
            },
        )
        status = _junit_status(step)
        words = STATUS_TEXT.get(status or "", ("", str(status)))[1]
        first_line = clean((str(step.get("error") or "").strip().splitlines() or [words])[0])[:500]
        details = clean(_details(step, file) + emulated_note)
        if status in FAILURE:
            ET.SubElement(case, "failure", {"message": first_line, "type": status}).text = details
        elif status in ERROR:
            ET.SubElement(case, "error", {"message": first_line, "type": status}).text = details
        elif status == "skipped":
            ET.SubElement(
                case, "skipped", {"message": clean(step.get("skipped_reason") or "skipped")}
            )
        if status not in FAILURE + ERROR:  # those carry the details already
            ET.SubElement(case, "system-out").text = details
    suite_out = [EMULATED_TEXT] if report.get("emulated") else []
    if report.get("message"):
        suite_out.append(str(report["message"]))
    if suite_out:
        ET.SubElement(suite, "system-out").text = clean("\n".join(suite_out))
    return root


def render_junit(report: dict[str, Any]) -> str:
    root = build_junit(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
