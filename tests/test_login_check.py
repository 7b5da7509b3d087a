"""`apply` logs in to every environment before the first step (issue 11 section 1).

Real HTTP to the emulator; its journal says what was started and what was asked.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario

PULL = "02115928-16fe-4493-949b-d77d302a88ee"
ALWAYS = "6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f"


@pytest.fixture
def emu():
    scenario = Scenario.from_dict(
        {
            "seed": 11,
            "automate_mft": {"tasks": [{"id": PULL, "duration": 1}, {"id": ALWAYS, "duration": 1}]},
            # a backup that is still running for two hours: the wait in front of the MFT step
            "acronis": {"tasks": [{"type": "backup", "started": "-1m", "completed": "2h"}]},
        }
    )
    with Emulator(scenario) as running:
        yield running


def write(tmp_path: Path, emu: Emulator, *, kid: str) -> Path:
    key = tmp_path / "mft.pem"
    key.write_text(emu.credentials.private_key_pem)
    c = emu.credentials
    path = tmp_path / "night.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        name: login-night
        environments:
          mft:
            provider: automate-mft
            base_url: {emu.url}
            credentials: {{tenant_id: {c.tenant_id}, key_id: {kid}, private_key: {{file: {key}}}}}
          backup:
            provider: acronis
            base_url: {emu.url}
            credentials: {{client_id: {c.client_id}, client_secret: {{env: SECRET}}}}
        defaults: {{poll: {{interval: 0.05, max_interval: 0.2}}}}
        steps:
          - id: backups-settled
            environment: backup
            wait_tasks: {{state: started}}
            timeout: 2h
          - {{id: pull, environment: mft, needs: [backups-settled], start_task: {PULL}}}
          - id: alert
            environment: backup
            needs: [pull]
            run_if: failure
            http: {{path: /api/task_manager/v2/activities}}
          - {{id: tidy, environment: mft, needs: [pull], run_if: always, start_task: {ALWAYS}}}
        """)
    )
    return path


def run(path: Path, emu: Emulator, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    reports = tmp_path / "report"
    code = main(
        ["apply", str(path), "--no-state", "--report-dir", str(reports), "-q", *extra],
    )
    return code, json.loads((reports / "report.json").read_text())


def test_a_wrong_kid_refuses_the_run_before_the_two_hour_wait_but_the_alert_goes_out(
    emu, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SECRET", emu.credentials.client_secret)
    code, report = run(write(tmp_path, emu, kid="wrong-kid"), emu, tmp_path)
    out = capsys.readouterr().out
    assert code == 3, out
    steps = {s["id"]: s for s in report["steps"]}
    assert {k: s["status"] for k, s in steps.items()} == {
        "backups-settled": "error",
        "pull": "error",
        "alert": "success",  # its environment logged in: the alert still goes out
        "tidy": "error",  # run_if always, but on the refused environment
    }
    assert steps["pull"]["error"].startswith("not started: the login check failed: environment")
    assert "credentials rejected" in steps["pull"]["error"]
    assert "the login check failed for 'mft'" in steps["backups-settled"]["error"]
    assert "login check failed for environment 'mft'" in report["message"]
    # nothing started, no wait begun: the only task query is the check's one-item query
    assert emu.journal.starts(PULL) == 0 and emu.journal.starts(ALWAYS) == 0
    task_queries = [r for r in emu.journal.requests if r.path.endswith("/task_manager/v2/tasks")]
    assert [r.query for r in task_queries] == ["limit=1"]
    assert any(r.path.endswith("/activities") for r in emu.journal.requests)
    assert "login mft: FAILED" in out and "key id (kid)" in out


def test_every_refused_environment_is_listed(emu, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SECRET", "not-the-secret")
    code, report = run(write(tmp_path, emu, kid="wrong-kid"), emu, tmp_path)
    out = capsys.readouterr().out
    assert code == 3
    assert "login mft: FAILED" in out and "login backup: FAILED" in out
    assert "environments 'backup', 'mft'" in report["message"]
    assert {s["status"] for s in report["steps"]} == {"error"}
    assert not [r for r in emu.journal.requests if r.path.endswith("/activities")]


def test_the_check_token_is_the_runs_token(emu, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET", emu.credentials.client_secret)
    emu_kid = emu.credentials.key_id
    path = write(tmp_path, emu, kid=emu_kid)
    # no backup in progress would still mean waiting; drop the wait to keep the run short
    text = path.read_text().replace("wait_tasks: {state: started}", "wait_tasks: {id: '1'}")
    path.write_text(text)
    code, report = run(path, emu, tmp_path)
    assert code == 0, report
    assert emu.journal.tokens_issued("automate-mft") == 1
    assert emu.journal.tokens_issued("acronis") == 1
    licence_checks = [r for r in emu.journal.requests if r.path == "/v1/licenses/current"]
    assert len(licence_checks) == 1 and emu.journal.starts(PULL) == 1


def test_no_login_check_finds_the_wrong_kid_only_at_the_step(emu, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET", emu.credentials.client_secret)
    path = write(tmp_path, emu, kid="wrong-kid")
    text = path.read_text().replace("wait_tasks: {state: started}", "wait_tasks: {id: '1'}")
    path.write_text(text)
    code, report = run(path, emu, tmp_path, "--no-login-check")
    steps = {s["id"]: s for s in report["steps"]}
    assert code == 3
    assert steps["backups-settled"]["status"] == "success"  # it ran: nothing was checked first
    assert steps["pull"]["status"] == "error" and "login check" not in steps["pull"]["error"]
    assert not [r for r in emu.journal.requests if r.path == "/v1/licenses/current"]
