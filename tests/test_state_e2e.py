"""Run memory end to end: real `mftrun apply` processes against one emulator (its journal is
the ground truth across processes): fail-fix-resume, SIGKILL at random moments then resume,
two applies at once, resume from a report.json on a machine with no store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mftrun.emulator import Emulator, Scenario


def task_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    tasks: list[dict[str, Any]] = [
        {"id": task_id(n), "queue": 0, "duration": "1s"} for n in range(40)
    ]
    tasks[1] = {"id": task_id(1), "queue": 0, "duration": "1s", "outcomes": ["failed", "success"]}
    tasks[39] = {"id": task_id(39), "queue": 0, "duration": "60s"}  # 3 s at speed 20
    for n in range(10, 20):  # the 30-step fan: 0.3 s per task, about 3.5 s per run
        tasks[n] = {"id": task_id(n), "queue": 0, "duration": "6s"}
    with Emulator(Scenario.from_dict({"speed": 20, "automate_mft": {"tasks": tasks}})) as e:
        yield e


def header(emu: Emulator, folder: Path, name: str) -> str:
    key = emu.write_credentials(folder)["MFT_PRIVATE_KEY_FILE"]
    return f"""version: 1
name: {name}
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
"""


def chain_file(emu: Emulator, folder: Path) -> Path:
    """a -> b (fails once) -> c, and an alert that runs on failure."""
    path = folder / "night.yaml"
    path.write_text(
        header(emu, folder, "night")
        + f"""  - id: a
    start_task: {task_id(0)}
    outputs: {{batch: "b-{{{{ result.run_id }}}}"}}
  - id: b
    needs: [a]
    start_task: {{task_id: {task_id(1)}, parameters: {{Batch: "{{{{ steps.a.outputs.batch }}}}"}}}}
  - id: c
    needs: [b]
    start_task: {task_id(2)}
  - id: alert
    needs: [c]
    run_if: failure
    start_task: {task_id(3)}
"""
    )
    return path


def apply(path: Path, *args: str, report: Path | None = None) -> subprocess.Popen[str]:
    report = report or path.parent / "report"
    return subprocess.Popen(
        [sys.executable, "-m", "mftrun", "apply", str(path), "-q", "--report-dir", str(report)]
        + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    return proc.returncode, out + err


def starts(emu: Emulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in emu.journal.runs:
        counts[run.task_id] = counts.get(run.task_id, 0) + 1
    return counts


def report_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())


def test_fail_fix_resume_starts_only_what_did_not_succeed(emu: Emulator, tmp_path: Path) -> None:
    path = chain_file(emu, tmp_path)
    code, out = finish(apply(path))
    assert code == 1
    first = report_of(tmp_path / "report")
    assert [s["status"] for s in first["steps"]] == ["success", "failed", "skipped", "success"]
    code, out = finish(apply(path, "--resume"))
    assert code == 0, out
    assert f"resuming run {first['run_id']}" in out
    second = report_of(tmp_path / "report")
    a, b, c, alert = second["steps"]
    assert a["carried_from"] == first["run_id"] and a["status"] == "success"
    assert (b["status"], c["status"]) == ("success", "success") and not b["carried_from"]
    assert alert["status"] == "skipped"  # the failure is fixed: the alert does not go out again
    assert second["resumed_from"] == first["run_id"]
    assert starts(emu) == {task_id(0): 1, task_id(1): 2, task_id(2): 1, task_id(3): 1}
    batch = first["steps"][0]["outputs"]["batch"]
    assert [r.parameters for r in emu.journal.runs if r.task_id == task_id(1)] == [
        {"Batch": batch},
        {"Batch": batch},  # carried outputs resolve downstream templates as before
    ]
    code, out = finish(apply(path, "--resume"))  # nothing left: the next night runs afresh
    assert code == 0 and "nothing to resume" in out
    listing = subprocess.run(
        [sys.executable, "-m", "mftrun", "runs", str(path), "--format", "json"],
        capture_output=True,
        text=True,
    )
    runs = json.loads(listing.stdout)
    assert [r["verdict"] for r in runs] == ["success", "success", "failed"]
    assert runs[1]["resumed_from"] == first["run_id"] and runs[2]["steps"]["failed"] == 1


def fan_file(emu: Emulator, folder: Path) -> Path:
    """30 steps: three chains of ten; each start carries its upstream's output."""
    lines = []
    for i in range(30):
        lines.append(f"  - id: s{i}\n    start_task:\n      task_id: {task_id(10 + i % 10)}\n")
        if i >= 3:
            lines.append(
                f'      parameters: {{Up: "{{{{ steps.s{i - 3}.outputs.batch }}}}", N: s{i}}}\n'
                f"    needs: [s{i - 3}]\n"
            )
        else:
            lines.append(f"      parameters: {{N: s{i}}}\n")
        lines.append('    outputs: {batch: "b-{{ result.run_id }}"}\n')
    path = folder / "fan.yaml"
    path.write_text(header(emu, folder, "fan") + "".join(lines))
    return path


def test_sigkill_at_random_moments_then_resume_starts_every_task_once(
    emu: Emulator, tmp_path: Path
) -> None:
    path = fan_file(emu, tmp_path)
    rng = random.Random(20261202)
    refused = 0
    for seed in range(20):
        before = len(emu.journal.runs)
        state = tmp_path / f"state-{seed}.db"
        proc = apply(path, "--state", str(state), report=tmp_path / f"r{seed}")
        time.sleep(rng.uniform(0.3, 3.2))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        resumed = apply(path, "--state", str(state), "--resume", report=tmp_path / f"r{seed}")
        code, out = finish(resumed)
        if code == 2 and "no answer proved" in out:
            # Killed between "start about to be sent" and its answer: resume must refuse.
            refused += 1
            named = out.split("the start of step(s) ")[1].split(" was sent")[0].split(", ")
            started = [r for r in emu.journal.runs[before:] if r.parameters.get("N") in named]
            assert len(started) <= len(named)
            if started:
                continue  # it did start: only the operator can tell; mftrun did not guess
            restarts = [arg for step in named for arg in ("--restart", step)]
            code, out = finish(
                apply(path, "--state", str(state), "--resume", *restarts,
                      report=tmp_path / f"r{seed}")
            )  # fmt: skip
        assert code == 0, f"seed {seed}: {out}"
        runs = emu.journal.runs[before:]
        per_step: dict[str, list[Any]] = {}
        for run in runs:
            per_step.setdefault(str(run.parameters["N"]), []).append(run)
        assert sorted(per_step) == sorted(f"s{i}" for i in range(30)), f"seed {seed}"
        twice = {k: [r.run_id for r in v] for k, v in per_step.items() if len(v) != 1}
        assert not twice, f"seed {seed}: started twice: {twice}\n{out}"
        report = report_of(tmp_path / f"r{seed}")
        assert {s["status"] for s in report["steps"]} == {"success"}
        for i in range(3, 30):  # every downstream start saw its upstream's real run id
            assert per_step[f"s{i}"][0].parameters["Up"] == f"b-{per_step[f's{i - 3}'][0].run_id}"
    assert refused <= 10


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_applies_at_once_one_runs_the_other_exits_4(
    emu: Emulator, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text(
        header(emu, tmp_path, "slow")
        + f"  - id: slow\n    start_task: {task_id(39)}\n"
        + f"  - id: after\n    needs: [slow]\n    start_task: {task_id(0)}\n"
    )
    state: list[str] = []
    if backend == "postgres":
        from postgres_server import fresh_database

        state = ["--state", fresh_database(request.getfixturevalue("postgres_server"))]
    first = apply(path, *state)
    time.sleep(0.8)  # the first holds the lock and is running its steps
    code, out = finish(apply(path, *state))
    assert code == 4, out
    assert "is held by host" in out and f"pid {first.pid}" in out and "nothing was started" in out
    code1, _ = finish(first)
    assert code1 == 0
    assert starts(emu) == {task_id(39): 1, task_id(0): 1}
    assert report_of(tmp_path / "report")["steps"][0]["status"] == "success"  # the winner's


def test_resume_from_a_report_on_a_machine_with_no_store(emu: Emulator, tmp_path: Path) -> None:
    path = chain_file(emu, tmp_path)
    code, _ = finish(apply(path, "--no-state", report=tmp_path / "night-1"))
    assert code == 1
    earlier = tmp_path / "night-1" / "report.json"
    code, out = finish(apply(path, "--no-state", "--resume-from", str(earlier)))
    assert code == 0, out
    assert starts(emu) == {task_id(0): 1, task_id(1): 2, task_id(2): 1, task_id(3): 1}
    assert not (tmp_path / ".mftrun").exists()


def test_a_recorded_run_the_platform_no_longer_knows_is_an_error(
    emu: Emulator, tmp_path: Path
) -> None:
    path = chain_file(emu, tmp_path)
    code, _ = finish(apply(path, "--no-state", report=tmp_path / "n1"))
    report = json.loads((tmp_path / "n1" / "report.json").read_text())
    b = report["steps"][1]  # pretend b was left going with a run id the platform never had
    b.update(status="timed_out", outcome="timed_out", conclusion="timed_out")
    b["attempts"][-1].update(status="cancelled", ref={"run_id": "gone-1", "task_id": task_id(1)})
    (tmp_path / "n1" / "report.json").write_text(json.dumps(report))
    code, out = finish(apply(path, "--no-state", "--resume-from", str(tmp_path / "n1")))
    assert code == 3, out
    after = report_of(tmp_path / "report")
    assert after["steps"][1]["status"] == "error" and after["steps"][1]["reattached"]
    assert "gone-1" in after["steps"][1]["error"] and "not found" in after["steps"][1]["error"]
    assert starts(emu)[task_id(1)] == 1  # re-attaching sent no start


def test_an_ambiguous_start_stops_resume_until_restart_is_said(
    emu: Emulator, tmp_path: Path
) -> None:
    path = chain_file(emu, tmp_path)
    code, _ = finish(apply(path, "--no-state", report=tmp_path / "n1"))
    report = json.loads((tmp_path / "n1" / "report.json").read_text())
    b = report["steps"][1]
    b.update(status="error", outcome="error", conclusion="error", start_unconfirmed=True)
    b["attempts"][-1].update(ref=None, run_id=None, status="error")
    (tmp_path / "n1" / "report.json").write_text(json.dumps(report))
    code, out = finish(apply(path, "--no-state", "--resume-from", str(tmp_path / "n1")))
    assert code == 2 and "step(s) b was sent" in out and "--restart b" in out
    assert starts(emu)[task_id(1)] == 1
    code, out = finish(
        apply(path, "--no-state", "--resume-from", str(tmp_path / "n1"), "--restart", "b")
    )
    assert code == 0, out
    assert starts(emu)[task_id(1)] == 2


def test_runs_show_and_state_unlock_from_the_command_line(emu: Emulator, tmp_path: Path) -> None:
    path = chain_file(emu, tmp_path)
    finish(apply(path))
    first = report_of(tmp_path / "report")
    mftrun = [sys.executable, "-m", "mftrun"]
    listed = subprocess.run([*mftrun, "runs", str(path)], capture_output=True, text=True)
    assert listed.returncode == 0 and first["run_id"] in listed.stdout and "failed" in listed.stdout
    shown = subprocess.run(
        [*mftrun, "runs", "show", first["run_id"], "--format", "json"],
        capture_output=True,
        text=True,
    )
    data = json.loads(shown.stdout)
    assert [s["status"] for s in data["steps"]] == ["success", "failed", "skipped", "success"]
    text = subprocess.run(
        [*mftrun, "runs", "show", first["run_id"]], capture_output=True, text=True
    )
    assert text.returncode == 0 and "b" in text.stdout
    # the verdict line counts the recorded steps and gives the run's duration
    verdict = text.stdout.strip().splitlines()[-1]
    assert verdict.startswith("Failed in ") and "in -" not in verdict, verdict
    assert "2 success, 1 failed, 1 skipped (exit code 1)" in verdict, verdict
    # in a pipe, the table of runs is not wrapped to 80 columns
    assert any(first["run_id"] in line and "failed" in line for line in listed.stdout.splitlines())
    missing = subprocess.run([*mftrun, "runs", "show", "nope"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    unlock = subprocess.run([*mftrun, "state", "unlock", "night"], capture_output=True, text=True)
    assert unlock.returncode == 0 and "night" in unlock.stdout
