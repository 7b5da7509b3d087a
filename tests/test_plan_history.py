"""`mftrun plan` with durations, on a fixture store: typical and worst per step, the night's
expected critical path and worst case, and contradictions as warnings with positions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mftrun.cli import main
from mftrun.state import history
from mftrun.state.sqlite import SqliteStore
from mftrun.validation import load_pipeline

PIPELINE = """version: 1
name: night
timeout: 20m
environments:
  mft:
    provider: automate-mft
    base_url: https://mft.example
    credentials:
      tenant_id: {env: MFT_TENANT_ID}
      key_id: k1
      private_key: {file: /keys/k.pem}
defaults:
  environment: mft
steps:
  - id: pull
    start_task: 00000000-0000-4000-8000-000000000001
    timeout: 5m
  - id: push
    needs: [pull]
    start_task: 00000000-0000-4000-8000-000000000002
    timeout: 30m
    retries: {attempts: 2, delay: 1m}
  - id: fresh
    start_task: 00000000-0000-4000-8000-000000000003
    timeout: 1m
    retries: {attempts: 3, delay: 30s, backoff: 2}
"""


@pytest.fixture
def night(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The file, and a store where pull took ~6-9 min and push ~10-12 min over 20 nights."""
    monkeypatch.setenv("MFT_TENANT_ID", "T1")
    path = tmp_path / "night.yaml"
    path.write_text(PIPELINE)
    keys = history.keys_of(load_pipeline(str(path)), {"MFT_TENANT_ID": "T1"})
    store = SqliteStore(tmp_path / "state.db")
    for n in range(20):
        for step, seconds in (("pull", 360 + 9 * n), ("push", 600 + 6 * n)):
            history.record(
                store,
                keys[step],
                run_id=f"r{n:02d}",
                step_id=step,
                attempt=1,
                ended_at=f"2026-11-{n + 1:02d}T03:00:00",
                seconds=float(seconds),
                earliest=float(seconds - 2),
            )
    store.close()
    return path, tmp_path / "state.db"


def plan(capsys: Any, *argv: str) -> tuple[int, str]:
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def test_plan_shows_durations_and_warns_with_positions(
    night: tuple[Path, Path], capsys: Any
) -> None:
    path, db = night
    code, out = plan(capsys, str(path), "--state", str(db))
    assert code == 0, out
    assert "history: typical 7m21s, p95 8m42s, max 8m51s (20 run(s))" in out  # pull
    assert "history: typical 10m54s, p95 11m48s, max 11m54s (20 run(s))" in out  # push
    assert "history: none" in out  # fresh: a new task
    assert "expected: 18m15s (critical path pull -> push); worst case 20m45s" in out
    # each warning at the key that holds the setting: the step's timeout, the run's timeout
    assert f"{path}:17:5: warning: step pull: timeout 5m is below its task's p95 of 8m42s" in out
    assert f"{path}:3:1: warning: run timeout 20m is below the worst-case critical path" in out
    # push: 3 attempts of 10m54s + 1 min + 2 min of delays = 35m42s > 30m
    assert f"{path}:22:5: warning: step push: retries 2 cannot fit the step timeout 30m" in out
    assert "plus the retry delays take 35m42s" in out
    # fresh: no history, but the delays alone (30 s + 1 min + 2 min) exceed its 1-minute timeout
    assert "step fresh: retries 3 cannot fit the step timeout 1m: the retry delays alone" in out

    code, out = plan(capsys, str(path), "--state", str(db), "--format", "json")
    doc = json.loads(out)
    steps = {s["id"]: s for s in doc["steps"]}
    assert steps["pull"]["history"] == {"runs": 20, "p50_s": 441.0, "p95_s": 522.0, "max_s": 531.0}
    assert steps["fresh"]["history"] is None
    assert steps["fresh"]["poll_schedule"]["history"] == "no history"
    window = steps["pull"]["poll_schedule"]["window"]
    assert window["opens_s"] < 359 and window["closes_s"] > 520  # the recorded range, dense
    assert doc["history"]["expected"] == {"steps": ["pull", "push"], "seconds": 1095.0}
    assert doc["history"]["worst_case"]["seconds"] == 1245.0
    found = {(w["step"], w["line"], w["column"]) for w in doc["warnings"]}
    assert found == {("pull", 17, 5), ("push", 22, 5), ("fresh", 26, 5), (None, 3, 1)}


def test_another_tenant_sees_no_history_and_plan_says_so(
    night: tuple[Path, Path], capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, db = night
    monkeypatch.setenv("MFT_TENANT_ID", "T2")  # same URL and task ids, another tenant
    code, out = plan(capsys, str(path), "--state", str(db))
    assert code == 0
    assert "history: no earlier successful runs of these tasks in" in out
    assert "warning: step pull: timeout" not in out
    code, out = plan(capsys, str(path), "--no-state")
    assert "history: --no-state; durations unknown" in out


def test_a_timeout_from_defaults_is_warned_at_defaults_and_a_group_once(
    night: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """An inherited timeout is written in defaults: the warning points there. Instances of a
    for_each group share their settings: their common warning is said once."""
    path, db = night
    text = path.read_text().replace(
        "defaults:\n  environment: mft\n", "defaults:\n  environment: mft\n  timeout: 5m\n"
    )
    text = text.replace("    timeout: 5m\n", "    for_each: [a, b, c]\n", 1)
    path.write_text(text)
    code, out = plan(capsys, str(path), "--state", str(db))
    assert code == 0, out
    lines = [line for line in out.splitlines() if "timeout 5m is below" in line]
    assert len(lines) == 1, out
    assert lines[0].startswith(f"{path}:14:3: warning: step pull[a]: "), lines
    assert lines[0].endswith("(and 2 more instance(s) of pull)"), lines
