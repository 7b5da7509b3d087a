"""report.html in a real headless Chromium: rows, bars, no console errors, no network.

Uses Debian's /usr/bin/chromium driven by Playwright (never `playwright install`).
Screenshots land in each test's tmp_path (pytest keeps the last runs under
/tmp/pytest-of-<user>/); set MFTRUN_SCREENSHOTS=DIR to also copy them there.
The big-night tests (issue 17) write the 241-step report's three screenshots
(big-night-top, big-night-group, big-night-failures) the same way.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mftrun.reports import build_report, overview, write_reports

try:
    from test_big_night import run_plain
    from test_reports_apply import apply_quickstart, apply_xss_by_id
    from test_reports_samples import ALL, XSS, xss_run
except ImportError:
    from tests.test_big_night import run_plain
    from tests.test_reports_apply import apply_quickstart, apply_xss_by_id
    from tests.test_reports_samples import ALL, XSS, xss_run

CHROMIUM = os.environ.get("MFTRUN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# On a laptop without Chromium the browser check is skipped with this reason; in CI
# (CI=true, where .ci/run installs it) a missing browser is a failure, never a silent skip.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason=f"{CHROMIUM} is missing (Debian package chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page with every request, console message and page error recorded."""

    def __init__(
        self,
        browser,
        *,
        color_scheme: str = "light",
        width: int = 1280,  # type: ignore[no-untyped-def]
        javascript: bool = True,
    ) -> None:
        self.context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme=color_scheme,
            java_script_enabled=javascript,
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "console", lambda m: m.type in ("error", "warning") and self.problems.append(m.text)
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed {r.url}"))

    def open(self, url: str) -> object:
        self.page.goto(url, wait_until="load")
        self.page.wait_for_timeout(50)  # let any late request or error show up
        return self.page

    def close(self) -> None:
        self.context.close()


def shot(page, folder: Path, name: str, *, full_page: bool = True) -> Path:  # type: ignore[no-untyped-def]
    """A PNG (the whole page, or the first screen) in the test's own output folder (and
    MFTRUN_SCREENSHOTS if set)."""
    folder = folder / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000
    if os.environ.get("MFTRUN_SCREENSHOTS"):
        keep = Path(os.environ["MFTRUN_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, keep / path.name)
    return path


OPEN_GROUPS = """(open) => {
  const groups = document.querySelectorAll("details.step-group, details.tl-group");
  groups.forEach((d) => { d.open = open; });
}"""
MEASURE = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  return {
    rows: [...document.querySelectorAll("tr.step-row")].map(
        (el) => ({id: el.dataset.step, size: box(el)})),
    bars: [...document.querySelectorAll("svg.timeline .timeline-bar")].map(
        (el) => ({id: el.dataset.step, size: box(el)})),
    verdict: document.querySelector("header .verdict").textContent.trim(),
    fits: document.documentElement.scrollWidth <= window.innerWidth,
  };
}"""


def check_page(page, report: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    """One table row and one timeline bar per step, each really drawn, in the file's order
    (a big run's: group by group, each group opened to be measured, then closed again)."""
    ids = [s["id"] for s in report["steps"]]
    groups = page.locator("details.step-group, details.tl-group")
    if len(ids) > overview.BIG_RUN:
        ids = [s["id"] for g in overview.groups(report["steps"]) for s in g.steps]
        page.evaluate(OPEN_GROUPS, True)
    else:
        assert groups.count() == 0  # a small run is shown whole
    seen = page.evaluate(MEASURE)
    page.evaluate(OPEN_GROUPS, False)
    assert [r["id"] for r in seen["rows"]] == ids
    assert [b["id"] for b in seen["bars"]] == ids
    assert all(w > 300 and h > 20 for w, h in (r["size"] for r in seen["rows"]))
    # thin rows for a big run (12 units, some 14 px at this width), 26 units otherwise
    assert all(w > 300 and h > 10 for w, h in (b["size"] for b in seen["bars"]))
    assert seen["verdict"]
    assert seen["fits"]  # nothing sticks out sideways at desktop width


@pytest.mark.parametrize("name", ["failure", "timeout", "interrupt", "success"])
def test_report_renders_from_file_url(browser, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = ALL[name]()
    path = write_reports(result, report_dir=tmp_path, formats=("html",))["html"]
    for scheme in ("light", "dark"):
        watched = Watched(browser, color_scheme=scheme)
        try:
            page = watched.open(path.as_uri())
            check_page(page, build_report(result))
            shot(page, tmp_path, f"{name}-{scheme}")
            assert watched.requests == [path.as_uri()]
            assert watched.problems == []
        finally:
            watched.close()


def test_dark_mode_changes_the_colours(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_reports(ALL["failure"](), report_dir=tmp_path, formats=("html",))["html"]
    colours = {}
    for scheme in ("light", "dark"):
        watched = Watched(browser, color_scheme=scheme)
        try:
            page = watched.open(path.as_uri())
            colours[scheme] = page.evaluate(
                "getComputedStyle(document.documentElement).backgroundColor"
            )
        finally:
            watched.close()
    assert colours["light"] != colours["dark"]


@pytest.fixture()
def loopback(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A loopback HTTP server over tmp_path that records every path asked for."""
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path, asked
    finally:
        server.shutdown()
        server.server_close()


def test_served_over_http_the_page_asks_for_nothing_else(browser, loopback) -> None:  # type: ignore[no-untyped-def]
    base, folder, asked = loopback
    write_reports(ALL["failure"](), report_dir=folder, formats=("html",))
    watched = Watched(browser, javascript=False)  # and it needs no script
    try:
        page = watched.open(f"{base}/report.html")
        check_page(page, build_report(ALL["failure"]()))
        assert watched.requests == [f"{base}/report.html"]
        assert asked == ["/report.html"]  # not even a favicon
        assert watched.problems == []
    finally:
        watched.close()


def test_script_in_the_report_is_shown_as_text_and_never_runs(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = xss_run()
    path = write_reports(result, report_dir=tmp_path, formats=("html",))["html"]
    watched = Watched(browser)
    dialogs: list[str] = []
    watched.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page = watched.open(path.as_uri())
        check_page(page, build_report(result))
        assert page.locator("script").count() == 0
        assert f"task {XSS} failed: {XSS}" in page.locator("pre.error").inner_text()
        assert page.locator("h1").inner_text() == f"pipe{XSS}"
        assert dialogs == [] and watched.problems == []
        shot(page, tmp_path, "xss")
    finally:
        watched.close()


def test_narrow_screen_and_print(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = ALL["timeout"]()
    path = write_reports(result, report_dir=tmp_path, formats=("html",))["html"]
    watched = Watched(browser, width=420)
    try:
        page = watched.open(path.as_uri())
        assert page.locator("tr.step-row").count() == len(result.steps)
        shot(page, tmp_path, "timeout-narrow")
        page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
        page.emulate_media(media="print")
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") in (
            "rgba(0, 0, 0, 0)",
            "rgb(255, 255, 255)",
        )
        shot(page, tmp_path, "timeout-print")
        pdf = tmp_path / "report.pdf"
        page.pdf(path=str(pdf), format="A4")
        assert pdf.read_bytes().startswith(b"%PDF")
    finally:
        watched.close()


def test_many_steps(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run with 200 steps still gets one row and one bar each."""
    result = ALL["success"]()
    template = result.steps[0]
    from mftrun.results import StepResult

    result.steps = [
        StepResult(
            id=f"step-{i:03d}",
            environment=template.environment,
            action=template.action,
            line=10 + i,
            outcome=template.outcome,
            conclusion=template.conclusion,
            attempts=list(template.attempts),
            started_at=template.started_at,
            ended_at=template.ended_at,
        )
        for i in range(200)
    ]
    path = write_reports(result, report_dir=tmp_path, formats=("html",))["html"]
    watched = Watched(browser)
    try:
        page = watched.open(path.as_uri())
        check_page(page, build_report(result))
        assert watched.problems == []
    finally:
        watched.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_report_of_an_emulated_quickstart_run(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`mftrun apply examples/quickstart.yaml --emulate` in a subprocess; its own report.html."""
    applied = apply_quickstart(tmp_path)
    assert applied.code == 0, applied.stderr
    path = applied.report_dir / "report.html"
    report = json.loads(applied.read("report.json"))
    for scheme in ("light", "dark"):
        watched = Watched(browser, color_scheme=scheme)
        try:
            page = watched.open(path.as_uri())
            check_page(page, report)
            assert page.locator("header .verdict").inner_text() == "Succeeded"
            assert (
                page.locator("tr.step-row[data-status=success]").count()
                == report["totals"]["success"]
            )
            assert watched.requests == [path.as_uri()]
            assert watched.problems == []
            shot(page, tmp_path, f"quickstart-{scheme}")
        finally:
            watched.close()


def test_emulated_task_error_with_script_shows_as_text(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The emulator's task name and error message carry a script tag; the page shows it as text."""
    applied = apply_xss_by_id(tmp_path)
    assert applied.code == 1, applied.stderr
    path = applied.report_dir / "report.html"
    watched = Watched(browser)
    dialogs: list[str] = []
    watched.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page = watched.open(path.as_uri())
        check_page(page, json.loads(applied.read("report.json")))
        assert page.locator("script").count() == 0
        name = page.locator("tr.step-row .task-name")
        assert name.is_visible() and name.inner_text() == XSS  # the platform's taskName, as text
        error = page.locator("tr.step-detail pre.error")
        assert error.is_visible() and error.inner_text().endswith(f"copy failed: {XSS}")
        assert dialogs == [] and watched.problems == []
        assert watched.requests == [path.as_uri()]
        shot(page, tmp_path, "emulated-xss")
    finally:
        watched.close()


# ---- issue 17: a big night at a glance --------------------------------------------------

VISIBLE_ROWS = """() => [...document.querySelectorAll("tr.step-row")]
  .filter((r) => r.checkVisibility()).map((r) => r.dataset.step)"""
BOTTOM = "(sel) => document.querySelector(sel).getBoundingClientRect().bottom"


def screenshot_folder(tmp_path: Path) -> Path:
    """MFTRUN_SCREENSHOTS if set, else a folder under the test's tmp path."""
    return Path(os.environ.get("MFTRUN_SCREENSHOTS") or tmp_path / "screenshots")


def big_shot(page, tmp_path: Path, name: str, *, full_page: bool, part: str = "") -> None:  # type: ignore[no-untyped-def]
    """A PNG of the first screen, the whole page, or one part of it (a CSS selector)."""
    folder = screenshot_folder(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    if part:
        page.locator(part).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000


@pytest.fixture(scope="module")
def big_night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    """The 241-step night's report.html and report.json, from a real emulated run."""
    night = run_plain(tmp_path_factory.mktemp("big-night"))
    assert night.code == 1, night.output[-2000:]
    report = json.loads((night.report_dir / "report.json").read_text())
    return night.report_dir / "report.html", report


def test_big_night_first_screen_and_collapsed_height(browser, big_night, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, report = big_night
    watched = Watched(browser)
    try:
        page = watched.open(path.as_uri())
        check_page(page, report)
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 8000, height  # groups collapsed: the whole page
        # the first screen (900 px): verdict, counts, the critical path and the failure
        for selector in ("header .verdict", "[data-total=failed]", "[data-critical-path]"):
            assert page.evaluate(BOTTOM, selector) < 900, selector
        assert page.evaluate(BOTTOM, "[data-problems]") < 900
        path_text = page.locator("[data-critical-path] ol").inner_text()
        assert path_text.splitlines()[0].startswith("pull-042")
        assert path_text.splitlines()[1].startswith("push-042")
        problems = page.locator("[data-problems]").inner_text()
        assert "push-007" in problems and "sftp: permission denied" in problems
        # the critical path is highlighted on the timeline, in the collapsed group rows too
        assert page.locator("g.group-row.critical").count() == 2
        assert page.locator("svg.timeline .timeline-bar.critical").count() == 2
        assert page.evaluate(VISIBLE_ROWS) == ["report"]  # the lone step; groups are closed
        big_shot(page, tmp_path, "big-night-top", full_page=False)
        assert watched.requests == [path.as_uri()]
        assert watched.problems == []  # no console error, no CSP violation
    finally:
        watched.close()


def test_big_night_groups_expand_filter_and_search(browser, big_night, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    path, report = big_night
    pushes = [s["id"] for s in report["steps"] if s["id"].startswith("push-")]
    watched = Watched(browser)
    try:
        page = watched.open(path.as_uri())
        assert page.locator("#filters").is_visible()  # the script ran under the page's CSP
        assert page.locator("#filter-count").inner_text() == "241 steps"
        page.locator("details.tl-group[data-group=push] > summary").click()
        page.locator("details.step-group[data-group=push] > summary").click()
        assert page.evaluate(VISIBLE_ROWS) == [*pushes, "report"]
        push_bars = page.locator("details.tl-group[data-group=push] .timeline-bar")
        assert push_bars.count() == 120 and push_bars.first.is_visible()
        big_shot(page, tmp_path, "big-night-group", full_page=False, part="#timeline")
        page.locator("details.step-group[data-group=push] > summary").click()  # closed again
        page.locator("details.tl-group[data-group=push] > summary").click()

        page.select_option("#status-filter", "problems")
        assert page.evaluate(VISIBLE_ROWS) == ["push-007", "report"]
        assert page.locator("#filter-count").inner_text() == "2 of 241 steps shown"
        assert page.locator("details.step-group[data-group=pull]").is_hidden()
        assert page.locator("tr.step-detail[data-detail-for=push-007] pre.error").is_visible()
        page.locator("#steps").scroll_into_view_if_needed()
        big_shot(page, tmp_path, "big-night-failures", full_page=True)

        page.select_option("#status-filter", "all")
        page.locator("#step-search").fill("PUSH-04")  # case does not matter
        # the page's CSP forbids eval, so wait_for_function cannot run: expect() polls instead
        expect(page.locator("#filter-count")).to_have_text("10 of 241 steps shown")
        assert page.evaluate(VISIBLE_ROWS) == [f"push-04{i}" for i in range(10)]
        # the task a step targets is found too, also when the row does not show it
        target = next(s for s in report["steps"] if s["id"] == "push-007")["target"]
        page.locator("#step-search").fill(str(target).split()[-1])  # the task id
        expect(page.locator("#filter-count")).to_have_text("1 of 241 steps shown")
        assert page.evaluate(VISIBLE_ROWS) == ["push-007"]
        page.locator("#step-search").fill("")
        expect(page.locator("#filter-count")).to_have_text("241 steps")
        assert page.evaluate(VISIBLE_ROWS) == ["report"]  # groups closed as they were
        assert page.evaluate("document.documentElement.scrollHeight") < 8000
        assert watched.requests == [path.as_uri()]
        assert watched.problems == []
    finally:
        watched.close()


def test_big_night_without_javascript_is_complete_but_has_no_filter(browser, big_night) -> None:  # type: ignore[no-untyped-def]
    path, report = big_night
    watched = Watched(browser, javascript=False)
    try:
        page = watched.open(path.as_uri())
        check_page(page, report)  # native <details> open and close without script
        assert page.locator("#filters").is_hidden()
        assert watched.problems == []
    finally:
        watched.close()


def test_history_band_and_a_step_beyond_p95(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """report.json's optional `history` (the history issue fills it): a faint p50..p95 band
    per step, a mark on the step that took longer than p95."""
    import jsonschema

    from mftrun.reports import render, report_schema

    report = build_report(ALL["success"]())
    for step in report["steps"]:
        if step.get("duration"):
            seconds = float(step["duration"])
            step["history"] = {
                "runs": 12,
                "p50_s": seconds * 0.8,
                "p95_s": seconds * 1.2,
                "max_s": seconds * 1.5,
            }
    slow = next(s for s in report["steps"] if s.get("history"))
    slow["history"] = {"runs": 12, "p50_s": 1.0, "p95_s": slow["duration"] / 2, "max_s": 9.0}
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    path = tmp_path / "report.html"
    path.write_text(render(report, "html"), encoding="utf-8")
    watched = Watched(browser)
    try:
        page = watched.open(path.as_uri())
        with_history = [s["id"] for s in report["steps"] if s.get("history")]
        bands = page.locator("svg.timeline rect.typical")
        assert bands.count() == len(with_history) > 1
        assert all(
            w > 0
            for w in page.evaluate(
                "() => [...document.querySelectorAll('rect.typical')].map((r) => r.getBBox().width)"
            )
        )
        assert page.locator(".timeline-bar.slow").count() == 1
        assert page.locator(".timeline-bar.slow").get_attribute("data-step") == slow["id"]
        assert slow["id"] in page.locator("[data-slow]").inner_text()
        row = page.locator(f"tr.step-row[data-step='{slow['id']}']")
        assert "slower than usual (p95" in row.inner_text()
        shot(page, tmp_path, "history")
        assert watched.problems == []
    finally:
        watched.close()


def test_ten_thousand_steps_render_and_filter(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Within the browser test's own time limits (Playwright's 30 s for loading)."""
    from datetime import timedelta

    from mftrun.results import Status, StepResult

    result = ALL["failure"]()
    template = result.steps[0]
    kinds = ("pull", "push", "sync", "tidy")
    steps = []
    for i in range(10_000):
        status = Status.FAILED if i % 997 == 0 else Status.SUCCESS
        start = result.started_at + timedelta(seconds=i % 300)
        steps.append(
            StepResult(
                id=f"{kinds[i % 4]}-{i:05d}",
                environment=template.environment,
                action=template.action,
                line=10 + i,
                outcome=status,
                conclusion=status,
                started_at=start,
                ended_at=start + timedelta(seconds=20 + i % 40),
                error="sftp: permission denied" if status is Status.FAILED else None,
            )
        )
    result.steps = steps
    result.ended_at = result.started_at + timedelta(seconds=400)
    path = write_reports(result, report_dir=tmp_path, formats=("html",))["html"]
    watched = Watched(browser)
    try:
        page = watched.open(path.as_uri())
        assert page.locator("tr.step-row").count() == 10_000
        assert page.evaluate("document.documentElement.scrollHeight") < 8000
        page.select_option("#status-filter", "problems")
        failed = [s.id for s in steps if s.outcome is Status.FAILED]
        assert sorted(page.evaluate(VISIBLE_ROWS)) == sorted(failed)
        assert watched.problems == []
    finally:
        watched.close()
    shutil.rmtree(tmp_path, ignore_errors=True)
