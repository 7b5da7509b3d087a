"""Reports written by a real `mftrun apply --emulate` process.

Schema, JUnit, escaping, no secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from mftrun.emulator import Emulator, load_scenario
from mftrun.reports import report_schema

ROOT = Path(__file__).resolve().parent.parent
XSS = "<script>alert(1)</script>"
# The quickstart's tasks, declared short so the run takes seconds (tasks the emulator adds
# by itself behave like a live demo). Unknown ids fall back to those defaults anyway.
QUICKSTART_TASKS = (
    "02115928-16fe-4493-949b-d77d302a88ee",
    "6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f",
    "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f",
    "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
)
FAST = (
    "seed: 11\nspeed: 100\nautomate_mft:\n  tasks:\n"
    + "".join(f"    - {{id: {task}, queue: 0, duration: 10s}}\n" for task in QUICKSTART_TASKS)
    + '    - {name: "Daily summary", queue: 0, duration: 10s}\n'
    + (
        # one backup still running for 20 simulated seconds, so backups-settled waits a little
        "acronis:\n  tasks:\n    - {type: backup, enqueued: -1h, started: -50m, completed: 20s, "
        "result: ok}\n"
    )
)

XSS_TASK_ID = "5c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
XSS_SCENARIO = f"""seed: 12
speed: 50
automate_mft:
  tasks:
    - id: {XSS_TASK_ID}
      name: "{XSS}"
      outcome: failed
      queue: 1s
      duration: 5s
      message: "copy failed: {XSS}"
"""
XSS_PIPELINE = f"""version: 1
name: xss-check
environments:
  mft:
    provider: automate-mft
    region: us
    credentials:
      tenant_id: {{env: MFT_TENANT_ID}}
      key_id: {{env: MFT_KEY_ID}}
      private_key: {{env: MFT_PRIVATE_KEY}}
defaults:
  environment: mft
  poll: {{interval: 0.1s, max_interval: 0.2s}}
steps:
  - id: evil
    start_task: {{name: "{XSS}"}}
"""
# The same task started by id: the script tag can then only come from the emulator's answers.
XSS_BY_ID_PIPELINE = XSS_PIPELINE.replace(
    f'start_task: {{name: "{XSS}"}}', f"start_task: {XSS_TASK_ID}"
)


@dataclass
class Applied:
    code: int
    stdout: str
    stderr: str
    report_dir: Path
    scenario: Path

    def read(self, name: str) -> str:
        return (self.report_dir / name).read_text("utf-8")

    def secrets(self) -> list[str]:
        """The emulator's credentials: derived from the scenario's seed, so the same here."""
        creds = Emulator(load_scenario(str(self.scenario))).credentials
        lines = [
            line
            for line in creds.private_key_pem.splitlines()
            if len(line) >= 16 and "PRIVATE KEY" not in line
        ]
        return [creds.client_secret, *lines]


def run_apply(tmp_path: Path, pipeline: Path, scenario_text: str) -> Applied:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(scenario_text)
    report_dir = tmp_path / "report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mftrun",
            "apply",
            str(pipeline),
            "--emulate",
            "--scenario",
            str(scenario),
            "--report-dir",
            str(report_dir),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "GITHUB_ACTIONS": "", "PYTHONPATH": str(ROOT)},
    )
    return Applied(proc.returncode, proc.stdout, proc.stderr, report_dir, scenario)


def apply_quickstart(tmp_path: Path) -> Applied:
    """The quickstart as shipped, but polled every 0.1 s so the run takes about a second."""
    text = (ROOT / "examples" / "quickstart.yaml").read_text()
    slow = "poll: {interval: 1s, max_interval: 10s}"
    assert slow in text, "the quickstart's poll settings changed; update this test"
    pipeline = tmp_path / "quickstart.yaml"
    pipeline.write_text(text.replace(slow, "poll: {interval: 0.1s, max_interval: 0.2s}"))
    return run_apply(tmp_path, pipeline, FAST)


def apply_xss(tmp_path: Path) -> Applied:
    pipeline = tmp_path / "xss.yaml"
    pipeline.write_text(XSS_PIPELINE)
    return run_apply(tmp_path, pipeline, XSS_SCENARIO)


def apply_xss_by_id(tmp_path: Path) -> Applied:
    pipeline = tmp_path / "xss-by-id.yaml"
    pipeline.write_text(XSS_BY_ID_PIPELINE)
    return run_apply(tmp_path, pipeline, XSS_SCENARIO)


def test_quickstart_reports_validate_and_agree(tmp_path: Path) -> None:
    applied = apply_quickstart(tmp_path)
    assert applied.code == 0, applied.stderr
    report = json.loads(applied.read("report.json"))
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    assert report["emulated"] is True and report["pipeline"] == "quickstart"
    ids = [s["id"] for s in report["steps"]]
    assert len(ids) == 7
    suite = ET.fromstring(applied.read("junit.xml").encode()).find("testsuite")
    assert suite is not None
    assert [c.get("name") for c in suite.findall("testcase")] == ids
    assert suite.get("tests") == "7" and suite.get("skipped") == str(report["totals"]["skipped"])
    html = applied.read("report.html")
    assert html.count('<tr class="step-row') == 7
    assert "Succeeded" in applied.stdout  # the final summary table
    for secret in applied.secrets():
        for blob in (
            applied.stdout,
            applied.stderr,
            *(p.read_text() for p in applied.report_dir.iterdir()),
        ):
            assert secret not in blob


def test_platform_error_message_with_script_is_text_in_every_report(tmp_path: Path) -> None:
    applied = apply_xss(tmp_path)
    assert applied.code == 1, applied.stderr
    report = json.loads(applied.read("report.json"))
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    step = report["steps"][0]
    assert step["status"] == "failed" and f"copy failed: {XSS}" in step["error"]
    html = applied.read("report.html")
    assert "<script" not in html.lower()
    assert "copy failed: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    case = ET.fromstring(applied.read("junit.xml").encode()).find("testsuite/testcase")
    assert case is not None and XSS in (case.find("failure").get("message") or "")  # type: ignore[union-attr]
    for secret in applied.secrets():
        for blob in (applied.stdout, applied.stderr, html, applied.read("report.json")):
            assert secret not in blob


def test_task_name_from_the_emulator_reaches_the_reports_as_text(tmp_path: Path) -> None:
    """Started by id, so the reports name the task by the platform's `taskName`.

    Not by the pipeline's name.
    """
    applied = apply_xss_by_id(tmp_path)
    assert applied.code == 1, applied.stderr
    assert XSS not in (tmp_path / "xss-by-id.yaml").read_text()
    report = json.loads(applied.read("report.json"))
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    step = report["steps"][0]
    assert step["outputs"]["run"]["taskName"] == XSS
    assert step["error"].endswith(f"ended failed: copy failed: {XSS}")
    html = applied.read("report.html")
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2  # the name and the message
    escaped = html.replace("&lt;script&gt;alert(1)&lt;/script&gt;", "")
    assert "alert(1)" not in escaped, "every occurrence is the escaped form"
    junit = applied.read("junit.xml")
    assert XSS not in junit and ET.fromstring(junit.encode()) is not None
