"""report.html in a real headless Chromium: rows, bars, no console errors, no network.

Uses Debian's /usr/bin/chromium driven by Playwright (never `playwright install`).
Screenshots land in each test's tmp_path (pytest keeps the last runs under
/tmp/pytest-of-<user>/); set MFTRUN_SCREENSHOTS=DIR to also copy them there.
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

from mftrun.reports import build_report, write_reports

try:
    from test_reports_apply import apply_quickstart, apply_xss_by_id
    from test_reports_samples import ALL, XSS, xss_run
except ImportError:
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


def shot(page, folder: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    """A full-page PNG in the test's own output folder (and MFTRUN_SCREENSHOTS if set)."""
    folder = folder / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000
    if os.environ.get("MFTRUN_SCREENSHOTS"):
        keep = Path(os.environ["MFTRUN_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, keep / path.name)
    return path


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
    """One table row and one timeline bar per step, each really drawn, in the file's order."""
    ids = [s["id"] for s in report["steps"]]
    seen = page.evaluate(MEASURE)
    assert [r["id"] for r in seen["rows"]] == ids
    assert [b["id"] for b in seen["bars"]] == ids
    assert all(w > 300 and h > 20 for w, h in (r["size"] for r in seen["rows"]))
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
