"""junit.xml: parses with xml.etree, the expected counts, the common JUnit layout."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mftrun.reports import build_report
from mftrun.reports.junit import render_junit

try:
    from test_reports_samples import (
        XSS,
        failure_run,
        interrupt_run,
        success_run,
        timeout_run,
        xss_run,
    )
except ImportError:
    from tests.test_reports_samples import (
        XSS,
        failure_run,
        interrupt_run,
        success_run,
        timeout_run,
        xss_run,
    )


def parse(result) -> ET.Element:  # type: ignore[no-untyped-def]
    return ET.fromstring(render_junit(build_report(result)).encode("utf-8"))


def counts(element: ET.Element) -> dict[str, str]:
    return {k: element.get(k, "") for k in ("tests", "failures", "errors", "skipped")}


def test_failure_run_counts_and_elements() -> None:
    root = parse(failure_run())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert counts(root) == counts(suite) == {"tests": "4", "failures": "2", "errors": "1", "skipped": "1"}
    assert suite.get("name") == "nightly-transfers" and suite.get("time") == "150.500"
    assert suite.get("timestamp") == "2026-11-23T09:00:00"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["pull-orders", "pull-invoices", "wait-backup", "notify"]
    assert {c.get("classname") for c in cases} == {"nightly-transfers"}
    assert cases[0].get("time") == "150.000"
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("type") == "failed"
    assert failure.get("message") == "task pull-orders failed after 3 attempts: sftp: permission denied"
    assert "attempt 3: failed" in (failure.text or "")
    assert "defined at pipelines/nightly.yaml:12:5" in (failure.text or "")
    assert cases[2].find("error") is not None
    skipped = cases[3].find("skipped")
    assert skipped is not None and skipped.get("message") == "needs pull-orders, which failed"
    assert len(suite.findall("testcase/failure")) == int(suite.get("failures", "-1"))
    assert len(suite.findall("testcase/error")) == int(suite.get("errors", "-1"))
    assert len(suite.findall("testcase/skipped")) == int(suite.get("skipped", "-1"))


def test_success_timeout_and_interrupt_counts() -> None:
    assert counts(parse(success_run()).find("testsuite")) == {  # type: ignore[arg-type]
        "tests": "4", "failures": "0", "errors": "0", "skipped": "0"}
    timeout = parse(timeout_run()).find("testsuite")
    assert timeout is not None
    assert counts(timeout) == {"tests": "3", "failures": "1", "errors": "0", "skipped": "1"}
    assert timeout.find("testcase[@name='big-transfer']/failure").get("type") == "timed_out"  # type: ignore[union-attr]
    # cancelled and never-run steps are errors: the run did not finish them
    interrupted = parse(interrupt_run()).find("testsuite")
    assert interrupted is not None
    assert counts(interrupted) == {"tests": "3", "failures": "0", "errors": "2", "skipped": "0"}


def test_children_follow_the_schema_order() -> None:
    suite = parse(failure_run()).find("testsuite")
    assert suite is not None
    tags = [child.tag for child in suite]
    assert tags[0] == "properties" and set(tags[1:]) == {"testcase"}
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["sha256"] == "ab" * 32 and props["verdict"] == "failed"
    for case in suite.findall("testcase"):
        assert set(case.attrib) == {"name", "classname", "time"}


def test_markup_is_escaped_and_control_characters_removed() -> None:
    result = xss_run()
    result.steps[0].error = f"boom \x1b[31mred\x1b[0m \x00 {XSS} & more"
    text = render_junit(build_report(result))
    assert "<script>" not in text and "&lt;script&gt;" in text
    case = ET.fromstring(text.encode()).find("testsuite/testcase")
    assert case is not None and case.get("name") == f"evil{XSS}"
    message = case.find("failure").get("message")  # type: ignore[union-attr]
    assert message == f"boom \ufffd[31mred\ufffd[0m \ufffd {XSS} & more"
