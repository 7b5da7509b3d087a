"""junit.xml: parses with xml.etree, the expected counts, the common JUnit layout."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from mftrun.reports import build_report
from mftrun.reports.junit import render_junit

try:
    from test_reports_samples import (
        ALL,
        XSS,
        failure_run,
        interrupt_run,
        success_run,
        timeout_run,
        xss_run,
    )
except ImportError:
    from tests.test_reports_samples import (
        ALL,
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
    # pull-invoices failed under continue_on_error: it concluded success, so no <failure>
    # (Jenkins would mark a green run unstable); its details still say it failed.
    assert (
        counts(root)
        == counts(suite)
        == {"tests": "4", "failures": "1", "errors": "1", "skipped": "1"}
    )
    assert suite.get("name") == "nightly-transfers" and suite.get("time") == "150.500"
    assert suite.get("timestamp") == "2026-11-23T09:00:00"
    cases = suite.findall("testcase")
    # every step, those that did not pass first (file order within each part)
    assert [c.get("name") for c in cases] == [
        "pull-orders",
        "wait-backup",
        "pull-invoices",
        "notify",
    ]
    assert {c.get("classname") for c in cases} == {"nightly-transfers"}
    assert cases[0].get("time") == "150.000"
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("type") == "failed"
    assert (
        failure.get("message")
        == "task pull-orders failed after 3 attempts: sftp: permission denied"
    )
    assert "attempt 3: failed" in (failure.text or "")
    assert "defined at pipelines/nightly.yaml:12:5" in (failure.text or "")
    assert cases[2].find("failure") is None and cases[2].find("error") is None
    assert "outcome: failed, conclusion: success" in (cases[2].findtext("system-out") or "")
    assert cases[1].find("error") is not None
    skipped = cases[3].find("skipped")
    assert skipped is not None and skipped.get("message") == "needs pull-orders, which failed"
    assert len(suite.findall("testcase/failure")) == int(suite.get("failures", "-1"))
    assert len(suite.findall("testcase/error")) == int(suite.get("errors", "-1"))
    assert len(suite.findall("testcase/skipped")) == int(suite.get("skipped", "-1"))


def test_success_timeout_and_interrupt_counts() -> None:
    assert counts(parse(success_run()).find("testsuite")) == {  # type: ignore[arg-type]
        "tests": "4",
        "failures": "0",
        "errors": "0",
        "skipped": "0",
    }
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


# The common JUnit shape (Jenkins junit-10.xsd, GitLab's parser): what may appear where.
SHAPE = {
    "testsuites": (
        {"name", "tests", "failures", "errors", "skipped", "time", "disabled"},
        {"testsuite"},
    ),
    "testsuite": (
        {
            "name",
            "tests",
            "failures",
            "errors",
            "skipped",
            "time",
            "timestamp",
            "hostname",
            "id",
            "package",
            "disabled",
        },
        {"properties", "testcase", "system-out", "system-err"},
    ),
    "properties": (set(), {"property"}),
    "property": ({"name", "value"}, set()),
    "testcase": (
        {"name", "classname", "time", "assertions", "status"},
        {"skipped", "error", "failure", "system-out", "system-err"},
    ),
    "failure": ({"message", "type"}, set()),
    "error": ({"message", "type"}, set()),
    "skipped": ({"message"}, set()),
    "system-out": (set(), set()),
    "system-err": (set(), set()),
}
REQUIRED = {
    "testsuite": {"name", "tests", "failures", "errors", "skipped", "time", "timestamp"},
    "testcase": {"name", "classname", "time"},
    "property": {"name", "value"},
}


def check_shape(element: ET.Element) -> None:
    allowed_attrs, allowed_children = SHAPE[element.tag]
    assert set(element.attrib) <= allowed_attrs, (element.tag, element.attrib)
    assert REQUIRED.get(element.tag, set()) <= set(element.attrib), (element.tag, element.attrib)
    for name in ("tests", "failures", "errors", "skipped"):
        if name in element.attrib:
            assert element.get(name, "").isdigit()
    if "time" in element.attrib:
        assert float(element.get("time", "")) >= 0 and "e" not in element.get("time", "").lower()
    if element.tag == "testsuite":
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", element.get("timestamp", "")
        )  # xs:dateTime, no zone
        order = [child.tag for child in element]
        rank = {"properties": 0, "testcase": 1, "system-out": 2, "system-err": 3}
        assert order == sorted(order, key=rank.__getitem__), "children in the XSD's sequence order"
    if element.tag == "testcase":
        assert len([c for c in element if c.tag in ("skipped", "error", "failure")]) <= 1
    for child in element:
        assert child.tag in allowed_children, (element.tag, child.tag)
        check_shape(child)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_sample_matches_the_common_junit_shape(name: str) -> None:
    root = parse(ALL[name]())
    check_shape(root)
    [suite] = root.findall("testsuite")  # one testsuite per pipeline
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "-1")) == len(cases)
    for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        assert int(suite.get(attr, "-1")) == len(suite.findall(f"testcase/{kind}"))
        assert all(e.get("message") for e in suite.iter(kind))
    assert float(suite.get("time", "0")) >= max([float(c.get("time", "0")) for c in cases] + [0.0])
