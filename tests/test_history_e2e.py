"""History end to end: real `mftrun apply` processes against one emulator, whose journal is
the ground truth. The second night of a pipeline polls less and notices each end sooner;
`plan` then knows how long the night takes; another environment learns nothing from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mftrun.emulator import Emulator, Scenario

SPEED = 20.0  # 60 simulated seconds per task: 3 s of wall time


def task_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    tasks = [{"id": task_id(n), "queue": 0, "duration": "60s"} for n in range(4)]
    with Emulator(Scenario.from_dict({"speed": SPEED, "automate_mft": {"tasks": tasks}})) as e:
        yield e


def pipeline(emu: Emulator, folder: Path, *, name: str = "night", extra: str = "") -> Path:
    key = emu.write_credentials(folder)["MFT_PRIVATE_KEY_FILE"]
    steps = "".join(f"  - id: t{n}\n    start_task: {task_id(n)}\n{extra}" for n in range(4))
    path = folder / f"{name}.yaml"
    path.write_text(
        f"""version: 1
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
  timeout: 1m
  poll: {{interval: 0.05s, max_interval: 0.5s}}
steps:
{steps}"""
    )
    return path


def mftrun(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mftrun", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def night(emu: Emulator, path: Path, state: Path, report: Path) -> dict[str, Any]:
    """One apply; per run from the journal: polls and how late the end was noticed."""
    before_runs, before_requests = len(emu.journal.runs), len(emu.journal.requests)
    code, out = mftrun("apply", str(path), "-q", "--state", str(state), "--report-dir", str(report))
    assert code == 0, out
    runs = emu.journal.runs[before_runs:]
    requests = emu.journal.requests[before_requests:]
    polls: dict[str, list[float]] = {}
    for r in requests:
        if r.method == "GET" and r.path.startswith("/v1/task-runs/"):
            polls.setdefault(r.path.rsplit("/", 1)[1], []).append(r.time)
    lags = []
    for run in runs:
        assert run.ended is not None
        lags.append(min(t for t in polls[run.run_id] if t >= run.ended) - run.ended)
    report_doc = json.loads((report / "report.json").read_text())
    return {
        "polls": sum(len(polls[run.run_id]) for run in runs),
        "lags": lags,
        "report": report_doc,
    }


def test_the_second_night_polls_less_and_notices_each_end_sooner(
    emu: Emulator, tmp_path: Path
) -> None:
    path, state = pipeline(emu, tmp_path), tmp_path / "state.db"
    code, out = mftrun("plan", str(path), "--state", str(state))
    assert code == 0 and "history: no state store at" in out  # plan never creates a store

    first = night(emu, path, state, tmp_path / "r1")
    assert all("history" not in s for s in first["report"]["steps"])
    second = night(emu, path, state, tmp_path / "r2")
    assert second["polls"] < first["polls"], (first["polls"], second["polls"])
    # each end sooner: the worst second-night lag beats the first night's typical one
    assert max(second["lags"]) < sorted(first["lags"])[len(first["lags"]) // 2], (
        first["lags"],
        second["lags"],
    )
    for step in second["report"]["steps"]:  # the report compares with history
        h = step["history"]
        assert h["runs"] == 1 and 2.5 < h["p50_s"] < 4.0 and h["p50_s"] <= h["p95_s"] <= h["max_s"]

    code, out = mftrun("plan", str(path), "--state", str(state), "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["history"]["steps_with_history"] == 4
    assert 2.5 < doc["history"]["expected"]["seconds"] < 4.0  # four in parallel: one task long
    t0 = next(s for s in doc["steps"] if s["id"] == "t0")
    assert t0["history"]["runs"] == 2 and t0["poll_schedule"]["history"] == "used"
    times = t0["poll_schedule"]["polls"]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) <= 0.5  # liveness
    code, out = mftrun("plan", str(path), "--state", str(state))
    assert "history: typical 3" in out and "(2 run(s))" in out and "expected: 3" in out

    # the live progress line says when the night should end, from the same history
    code, out = mftrun(
        "apply", str(path), "--state", str(state), "--report-dir", str(tmp_path / "r3")
    )
    assert code == 0 and "expected end " in out, out
    code, out = mftrun("apply", str(path), "--no-state", "--report-dir", str(tmp_path / "r4"))
    assert code == 0 and "done" in out and "expected end" not in out, out


def test_another_environment_or_an_opted_out_step_learns_nothing(
    emu: Emulator, tmp_path: Path
) -> None:
    path, state = pipeline(emu, tmp_path), tmp_path / "state.db"
    night(emu, path, state, tmp_path / "r1")
    # the same tasks through another base URL (another tenant's gateway, say): no history
    other = pipeline(emu, tmp_path, name="other")
    other.write_text(other.read_text().replace(emu.url, emu.url.replace("127.0.0.1", "localhost")))
    code, out = mftrun("plan", str(other), "--state", str(state), "--format", "json")
    assert code == 0 and json.loads(out)["history"]["steps_with_history"] == 0, out
    opted = pipeline(emu, tmp_path, name="opted", extra="    poll: {history: false}\n")
    opted.write_text(opted.read_text().replace("name: opted", "name: night"))
    code, out = mftrun("plan", str(opted), "--state", str(state), "--format", "json")
    doc = json.loads(out)
    assert doc["history"]["steps_with_history"] == 0
    assert {s["poll_schedule"]["history"] for s in doc["steps"]} == {"off"}


def test_rehearsals_under_emulate_keep_a_history_of_their_own(tmp_path: Path) -> None:
    """`apply --emulate` points the file at a new emulator port with new credentials every
    run: history is keyed by the environments as written, marked as a rehearsal's, so the
    second rehearsal polls around the end the first one saw, `plan --emulate` shows it, and
    the real platform's history (`plan`) is not touched by it."""
    path = tmp_path / "rehearse.yaml"
    path.write_text(
        """version: 1
name: rehearse
environments:
  mft:
    provider: automate-mft
    base_url: {env: MFT_BASE_URL}
    credentials: {tenant_id: {env: MFT_TENANT_ID}, key_id: {env: MFT_KEY_ID},
                  private_key: {file: {env: MFT_PRIVATE_KEY_FILE}}}
defaults:
  environment: mft
  poll: {interval: 0.5s, max_interval: 10s}
steps:
  - id: pull
    start_task: {name: Pull invoices}
"""
    )
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "speed: 20\nautomate_mft:\n  tasks:\n    - {name: Pull invoices, duration: 60s}\n"
    )
    state = tmp_path / "state.db"

    def rehearse(report: str) -> dict[str, Any]:
        code, out = mftrun(
            "apply", str(path), "--emulate", "--scenario", str(scenario), "-q",
            "--state", str(state), "--report-dir", str(tmp_path / report),
        )  # fmt: skip
        assert code == 0, out
        doc: dict[str, Any] = json.loads((tmp_path / report / "report.json").read_text())
        return doc["steps"][0]

    first, second = rehearse("r1"), rehearse("r2")
    assert "history" not in first
    assert second["history"]["runs"] == 1 and 50 < second["history"]["p50_s"] < 75
    assert second["http_calls"] < first["http_calls"], (first["http_calls"], second["http_calls"])
    code, out = mftrun("plan", str(path), "--emulate", "--state", str(state))
    assert code == 0 and "(2 run(s))" in out, out
    code, out = mftrun("plan", str(path), "--state", str(state))
    assert code == 0 and "no earlier successful runs" in out and "plan --emulate" in out, out


def test_a_base_url_from_a_variable_is_known_by_its_value_to_apply_and_plan(
    emu: Emulator, tmp_path: Path
) -> None:
    path, state = pipeline(emu, tmp_path), tmp_path / "state.db"
    path.write_text(path.read_text().replace(f"base_url: {emu.url}", "base_url: {env: MFT_URL}"))
    os.environ["MFT_URL"] = emu.url
    try:
        night(emu, path, state, tmp_path / "r1")
        code, out = mftrun("plan", str(path), "--state", str(state), "--format", "json")
        assert code == 0 and json.loads(out)["history"]["steps_with_history"] == 4, out
        # the same file pointed elsewhere by the variable: another platform, no history
        os.environ["MFT_URL"] = emu.url.replace("127.0.0.1", "localhost")
        code, out = mftrun("plan", str(path), "--state", str(state), "--format", "json")
        assert code == 0 and json.loads(out)["history"]["steps_with_history"] == 0, out
    finally:
        del os.environ["MFT_URL"]
