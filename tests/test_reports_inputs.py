"""Reports record the inputs (issue 11 §7): --var values, the task parameters each start
sent, the method and path of http steps; `plan` shows parameters; `report show` reads
reports with and without these fields. Real HTTP against the emulator."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario
from mftrun.reports import load_report

TASK = "00000000-0000-4000-8000-000000000007"
SECRET = "s3cr3t-var-value-for-report"


@pytest.fixture
def emu() -> Any:
    scenario = Scenario.from_dict(
        {"seed": 5, "speed": 20, "automate_mft": {"tasks": [{"id": TASK, "duration": 1}]}}
    )
    with Emulator(scenario) as running:
        yield running


def write_pipeline(tmp_path: Path, emu: Emulator) -> Path:
    key = tmp_path / "mft.pem"
    key.write_text(emu.credentials.private_key_pem or "")
    path = tmp_path / "inputs.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        name: inputs
        environments:
          mft:
            provider: automate-mft
            base_url: {emu.url}
            credentials:
              tenant_id: {emu.credentials.tenant_id}
              key_id: {emu.credentials.key_id}
              private_key: {{file: {key}}}
        defaults: {{environment: mft, poll: {{interval: 0.05, max_interval: 0.2}}}}
        vars: {{mask: "*.txt", day: mon}}
        steps:
          - id: licence
            http: {{method: GET, path: "/v1/licenses/{{{{ vars.which }}}}"}}
          - id: pull
            needs: [licence]
            start_task:
              task_id: {TASK}
              parameters:
                FileMask: "{{{{ vars.mask }}}}"
                MaxFiles: 500
                Password: "{{{{ vars.api_token }}}}"
        """)
    )
    return path


def test_report_records_vars_parameters_and_http_target(
    emu: Emulator, tmp_path: Path, capsys: Any
) -> None:
    file = write_pipeline(tmp_path, emu)
    reports = tmp_path / "r"
    args = ["--var", "mask=*.csv", "--var", f"api_token={SECRET}", "--var", "which=current"]
    code = main(["apply", str(file), "--report-dir", str(reports), "-q", "--no-state", *args])
    assert code == 0
    report = load_report(reports / "report.json")  # valid against the extended schema
    assert report["variables"] == {"mask": "*.csv", "api_token": "***", "which": "current"}
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["licence"]["target"] == "GET /v1/licenses/current"
    assert steps["licence"]["attempts"][0]["target"] == "GET /v1/licenses/current"
    assert steps["licence"]["attempts"][0]["parameters"] is None
    (attempt,) = steps["pull"]["attempts"]
    assert attempt["target"] == f"task {TASK}"
    assert attempt["parameters"] == {"FileMask": "*.csv", "MaxFiles": 500, "Password": "***"}
    (sent,) = [r for r in emu.journal.runs if r.task_id == TASK]
    assert sent.parameters["FileMask"] == "*.csv"  # what the report says is what was sent
    assert sent.parameters["Password"] == SECRET
    html = (reports / "report.html").read_text()
    assert "mask=*.csv" in html and "api_token=***" in html
    assert "Parameters sent" in html and "FileMask" in html
    assert "GET /v1/licenses/current" in html
    for written in reports.iterdir():
        assert SECRET not in written.read_text(), written.name
    assert SECRET not in capsys.readouterr().out


def test_report_show_reads_old_and_new_reports(emu: Emulator, tmp_path: Path, capsys: Any) -> None:
    file = write_pipeline(tmp_path, emu)
    reports = tmp_path / "r"
    args = ["--var", "which=current", "--var", f"api_token={SECRET}"]
    assert main(["apply", str(file), "--report-dir", str(reports), "-q", "--no-state", *args]) == 0
    new = json.loads((reports / "report.json").read_text())
    old = json.loads(json.dumps(new))
    old.pop("variables")
    for step in old["steps"]:
        step.pop("target")
        for attempt in step["attempts"]:
            attempt.pop("target")
            attempt.pop("parameters")
    (tmp_path / "old.json").write_text(json.dumps(old))
    capsys.readouterr()
    for path in (reports / "report.json", tmp_path / "old.json"):
        assert main(["report", "show", str(path)]) == 0, path
        out = capsys.readouterr().out
        assert "pull" in out and "licence" in out


def test_plan_shows_parameters(emu: Emulator, tmp_path: Path, capsys: Any) -> None:
    file = write_pipeline(tmp_path, emu)
    assert main(["plan", str(file)]) == 0
    out = capsys.readouterr().out
    assert "parameters FileMask={{ vars.mask }}, MaxFiles=500, Password={{ vars.api_token }}" in out
    assert main(["plan", str(file), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    pull = next(s for s in data["steps"] if s["id"] == "pull")
    assert pull["parameters"]["MaxFiles"] == 500
