"""Resume of a for_each group where some instances succeeded (issue 16 section 4): each
instance is a step of its own in the state store, so only the failed one starts again; the
journal of the emulator is the ground truth of what was started."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario

GOOD = "00000000-0000-4000-8000-000000000001"
FLAKY = "00000000-0000-4000-8000-000000000002"
FANIN = "00000000-0000-4000-8000-000000000003"
JOBS = f"[{{id: acme, task: {GOOD}}}, {{id: globex, task: {FLAKY}}}]"


@pytest.fixture
def emu():
    tasks = [
        {"id": GOOD, "duration": 1},
        {"id": FLAKY, "duration": 1, "outcomes": ["failed", "success"]},
        {"id": FANIN, "duration": 1},
    ]
    with Emulator(Scenario.from_dict({"speed": 50, "automate_mft": {"tasks": tasks}})) as e:
        yield e


def pipeline(emu: Emulator, folder: Path, for_each: str) -> Path:
    key = emu.write_credentials(folder)["MFT_PRIVATE_KEY_FILE"]
    path = folder / "fan.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        name: fan
        vars: {{jobs: {JOBS}}}
        environments:
          mft:
            provider: automate-mft
            base_url: {emu.url}
            credentials:
              tenant_id: {emu.credentials.tenant_id}
              key_id: {emu.credentials.key_id}
              private_key: {{file: {key}}}
        defaults:
          environment: mft
          poll: {{interval: 0.05s, max_interval: 0.1s}}
        steps:
          - id: push
            for_each: {for_each}
            start_task: {{task_id: "{{{{ item.task }}}}", parameters: {{p: "{{{{ item.id }}}}"}}}}
            outputs: {{run: "{{{{ result.run_id }}}}"}}
          - id: report
            needs: [push]
            start_task:
              task_id: {FANIN}
              parameters: {{runs: "{{{{ steps.push.outputs.values() | map(attribute='run')
                | join(',') }}}}"}}
        """)
    )
    return path


def run(path: Path, *args: str) -> tuple[int, dict]:
    reports = path.parent / "report"
    code = main(["apply", str(path), "-q", "--report-dir", str(reports), *args])
    return code, json.loads((reports / "report.json").read_text())


def starts(emu: Emulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for started in emu.journal.runs:
        counts[started.task_id] = counts.get(started.task_id, 0) + 1
    return counts


@pytest.mark.parametrize("for_each", [JOBS, '"{{ vars.jobs }}"'], ids=["static", "dynamic"])
def test_a_resumed_group_starts_only_the_instance_that_failed(
    emu: Emulator, tmp_path: Path, for_each: str
) -> None:
    path = pipeline(emu, tmp_path, for_each)
    code, first = run(path)
    assert code == 1
    status = {s["id"]: s["status"] for s in first["steps"]}
    assert (status["push[acme]"], status["push[globex]"], status["report"]) == (
        "success",
        "failed",
        "skipped",
    )
    code, second = run(path, "--resume")
    assert code == 0, second
    steps = {s["id"]: s for s in second["steps"]}
    assert steps["push[acme]"]["carried_from"] == first["run_id"]
    assert not steps["push[globex]"]["carried_from"]
    assert steps["push[globex]"]["status"] == "success"
    assert starts(emu) == {GOOD: 1, FLAKY: 2, FANIN: 1}  # the succeeded instance: once
    acme_run = {s["id"]: s for s in first["steps"]}["push[acme]"]["outputs"]["run"]
    runs = steps["report"]["attempts"][0]["parameters"]["runs"].split(",")
    assert runs[0] == acme_run and runs[1] == steps["push[globex]"]["outputs"]["run"]


def test_a_dynamic_instance_whose_item_changed_runs_again(emu: Emulator, tmp_path: Path) -> None:
    path = pipeline(emu, tmp_path, '"{{ vars.jobs }}"')
    assert run(path)[0] == 1
    code, second = run(path, "--resume", "--var", f'jobs=[{{"id": "acme", "task": "{FLAKY}"}}]')
    steps = {s["id"]: s for s in second["steps"]}
    assert not steps["push[acme]"]["carried_from"]  # same id, another item: not the old result
    assert starts(emu)[FLAKY] == 2
    assert code == 0


def test_a_resume_says_which_recorded_instances_wait_for_their_group_and_which_are_gone(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pipeline(emu, tmp_path, '"{{ vars.jobs }}"')
    assert run(path)[0] == 1
    capsys.readouterr()
    reports = tmp_path / "again"
    jobs = f'jobs=[{{"id": "globex", "task": "{FLAKY}"}}]'
    code = main(["apply", str(path), "--report-dir", str(reports), "--resume", "--var", jobs])
    second = json.loads((reports / "report.json").read_text())
    assert code == 0, second
    out = capsys.readouterr().out
    # push[acme] succeeded last time: not counted as carried over before its group expands
    assert "0 step(s) carried over" in out and "1 recorded instance(s) of dynamic groups" in out
    assert "no longer in the list, not run: push[acme]" in out
    assert [s["id"] for s in second["steps"]] == ["push[globex]", "report"]
