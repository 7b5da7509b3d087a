"""report.html: escaping, self-containment, one row and one timeline bar per step."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from mftrun.reports import build_report
from mftrun.reports.html import render_html, timeline

try:
    from test_reports_samples import ALL, XSS, failure_run, interrupt_run, timeout_run, xss_run
except ImportError:
    from tests.test_reports_samples import (
        ALL,
        XSS,
        failure_run,
        interrupt_run,
        timeout_run,
        xss_run,
    )


class Page(HTMLParser):
    """Collects what the tests look at, as a browser's parser would see it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.bars: list[str] = []
        self.scripts = 0
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "tr" and "step-row" in classes:
            self.rows.append(a["data-step"] or "")
        if "timeline-bar" in classes:
            self.bars.append(a["data-step"] or "")
        if tag == "script" or any(k.startswith("on") for k in a):
            self.scripts += 1
        for key in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            if a.get(key):
                self.urls.append(a[key] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@pytest.mark.parametrize("name", sorted(ALL))
def test_one_row_and_one_bar_per_step(name: str) -> None:
    report = build_report(ALL[name]())
    page = parse(render_html(report))
    ids = [s["id"] for s in report["steps"]]
    assert page.rows == ids
    assert page.bars == ids


@pytest.mark.parametrize("name", sorted(ALL))
def test_page_is_self_contained(name: str) -> None:
    html = render_html(build_report(ALL[name]()))
    page = parse(html)
    assert page.scripts == 0
    assert all(url.startswith(("data:", "#")) for url in page.urls), page.urls
    assert "@import" not in html
    assert re.findall(r"url\(([^)]*)\)", html) == ["#hatch"] * len(re.findall(r"url\(", html))
    assert "default-src 'none'" in html  # and the browser is told to fetch nothing


def test_script_in_names_errors_and_outputs_is_shown_as_text() -> None:
    html = render_html(build_report(xss_run()))
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = parse(html)
    assert page.scripts == 0
    text = "".join(page.text)
    assert f"task {XSS} failed: {XSS}" in text  # the error, readable as text
    assert page.rows == [f"evil{XSS}"]  # the attribute round-trips to the original


def test_verdict_and_totals_are_in_the_header() -> None:
    text = " ".join("".join(parse(render_html(build_report(failure_run()))).text).split())
    assert "Failed" in text
    assert "✗ 2 failed" in text and "! 1 error" in text and "↷ 1 skipped" in text
    assert "task pull-orders failed after 3 attempts: sftp: permission denied" in text


def test_statuses_have_words_not_only_colours() -> None:
    text = "".join(parse(render_html(build_report(timeout_run()))).text)
    assert "◔ timed out" in text and "✓ success" in text and "did not run" in text


def test_remote_run_still_going_is_said_plainly() -> None:
    text = " ".join("".join(parse(render_html(build_report(timeout_run()))).text).split())
    assert "remote run 7f3e0c2a-0000-4000-8000-000000000001 may still be going" in text
    interrupted = " ".join("".join(parse(render_html(build_report(interrupt_run()))).text).split())
    assert "remote run run-int-1 may still be going" in interrupted
    assert "Interrupted" in interrupted


def test_light_dark_and_print_styles() -> None:
    html = render_html(build_report(failure_run()))
    assert "@media (prefers-color-scheme: dark)" in html
    assert "@media print" in html


def test_timeline_places_attempts_in_time_order_within_the_track() -> None:
    tl = timeline(build_report(failure_run()))
    segments = tl["rows"][0]["segments"]
    assert [s["number"] for s in segments] == [1, 2, 3]
    xs = [s["x"] for s in segments]
    assert xs == sorted(xs) and xs[0] >= tl["track_x0"]
    assert segments[-1]["x"] + segments[-1]["width"] <= tl["track_x1"] + 0.01
    assert tl["rows"][3]["not_run"] is True  # the skipped step
    assert tl["ticks"][0]["label"] == "0" and len(tl["ticks"]) <= 9


def test_timeline_copes_with_a_run_without_times() -> None:
    report = build_report(interrupt_run())
    report["ended_at"] = None
    for step in report["steps"]:
        step["started_at"] = step["ended_at"] = None
        step["attempts"] = []
    page = parse(render_html(report))
    assert len(page.bars) == 3


def test_no_url_anywhere_unless_the_run_itself_carries_one() -> None:
    """Not even an SVG namespace or a comment: the page names no place on the network."""
    from importlib import resources

    template = (
        resources.files("mftrun.reports").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    url = re.compile(r"(?i)\b(?:https?|ftp|wss?):|//[a-z0-9.-]+\.[a-z]{2,}|\bwww\.")
    assert url.findall(template) == []
    for name in ("success", "timeout", "interrupt", "xss"):  # samples whose data holds no URL
        assert url.findall(render_html(build_report(ALL[name]()))) == [], name
    # a URL in a platform's error message is text, not a link
    page = parse(render_html(build_report(failure_run())))
    # the empty favicon that stops the browser asking for one; links within the page (the
    # critical path and failures at the top point at their rows) name no place either
    assert [u for u in page.urls if not re.fullmatch(r"#step-\d+", u)] == ["data:,"]
    assert "could not reach https://eu.cloud.example" in "".join(page.text)


def test_timeline_has_one_labelled_segment_per_attempt() -> None:
    report = build_report(failure_run())
    html = render_html(report)
    attempts = sum(len(s["attempts"]) for s in report["steps"])
    segments = re.findall(
        r'<g class="s-[a-z_]+" data-attempt="(\d+)">\s*<title>[^<]+</title>\s*'
        r'<rect class="attempt',
        html,
    )
    # numbered segments are attempts; "0" is a step that ran but never got one (it errored first)
    assert len([n for n in segments if n != "0"]) == attempts
    assert segments.count("1") == sum(1 for s in report["steps"] if s["attempts"])
    # "#n" labels where a step had several attempts; every row has its id and status as text
    assert html.count('class="attempt-label"') == sum(
        len(s["attempts"]) for s in report["steps"] if len(s["attempts"]) > 1
    )
    assert html.count('class="step-label"') == len(report["steps"])


def test_platform_task_name_is_shown_in_the_row_as_text() -> None:
    result = failure_run()
    result.steps[0].outputs = {"run_id": "r1", "run": {"taskName": f"Orders {XSS}", "id": "r1"}}
    html = render_html(build_report(result))
    assert (
        'title="task name on the platform">Orders &lt;script&gt;alert(1)&lt;/script&gt;</div>'
        in html
    )
    assert "<script" not in html.lower()
    result.steps[0].outputs = {"task_name": "Nightly pull", "run": "not a dict"}
    assert 'title="task name on the platform">Nightly pull</div>' in render_html(
        build_report(result)
    )
