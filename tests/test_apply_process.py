"""`mftrun apply` as a separate process.

Signals, scale, and the emulator's journal as ground truth.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mftrun.emulator import Emulator, Scenario


def pipeline_text(emu: Emulator, key: Path, steps: list[dict], *, max_parallel: int = 8) -> str:
    head = {
        "version": 1,
        "name": "process",
        "max_parallel": max_parallel,
        "environments": {
            "mft": {
                "provider": "automate-mft",
                "base_url": emu.url,
                "credentials": {
                    "tenant_id": emu.credentials.tenant_id,
                    "key_id": emu.credentials.key_id,
                    "private_key": {"file": str(key)},
                },
            }
        },
        "defaults": {"environment": "mft", "poll": {"interval": 0.05, "max_interval": 0.3}},
        "steps": steps,
    }
    return json.dumps(head)  # JSON is YAML


def start_emulator(tasks: list[dict], speed: float = 20) -> Emulator:
    return Emulator(
        Scenario.from_dict({"seed": 3, "speed": speed, "automate_mft": {"tasks": tasks}})
    ).start()


def spawn(path: Path, report_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mftrun", "apply", str(path), "--report-dir", str(report_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("signum, expected", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_cancels_starts_nothing_new_and_writes_reports(tmp_path, signum, expected):
    ids = [f"00000000-0000-4000-9000-{i:012d}" for i in range(4)]
    emu = start_emulator(
        [
            {"id": ids[0], "queue": 0, "duration": 3000},
            {"id": ids[1], "queue": 0, "duration": 3000},
            {"id": ids[2], "queue": 0, "duration": 1},
            {"id": ids[3], "queue": 0, "duration": 1},
        ]
    )
    try:
        key = tmp_path / "k.pem"
        key.write_text(emu.credentials.private_key_pem)
        path = tmp_path / "p.yaml"
        path.write_text(
            pipeline_text(
                emu,
                key,
                [
                    {"id": "long1", "start_task": ids[0]},
                    {"id": "long2", "start_task": ids[1]},
                    {"id": "next", "start_task": ids[2], "needs": ["long1"]},
                    {"id": "last", "start_task": ids[3], "needs": ["next"]},
                ],
            )
        )
        proc = spawn(path, tmp_path / "r")
        deadline = time.monotonic() + 20
        while len(emu.journal.runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(emu.journal.runs) == 2, "both long runs should have started"
        time.sleep(0.3)
        proc.send_signal(signum)
        starts_at_signal = emu.journal.request_count
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == expected, err
        started = [r.task_id for r in emu.journal.runs]
        assert sorted(started) == sorted(ids[:2]), "no start may be sent after the signal"
        assert not any(
            r.method == "POST" and r.path.endswith("/start")
            for r in emu.journal.requests[starts_at_signal:]
        )
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        assert report["interrupted"] is True and report["exit_code"] == expected
        steps = {s["id"]: s for s in report["steps"]}
        run_ids = sorted(r.run_id for r in emu.journal.runs)
        assert (
            sorted(steps["long1"]["remote_may_continue"] + steps["long2"]["remote_may_continue"])
            == run_ids
        )
        assert steps["long1"]["status"] == "cancelled" and steps["next"]["status"] == "skipped"
        assert (tmp_path / "r" / "junit.xml").exists() and (tmp_path / "r" / "report.html").exists()
        for run_id in run_ids:
            assert run_id in out + err
        assert "Traceback" not in err
    finally:
        emu.stop()


def test_thousand_steps_match_the_emulator_ground_truth(tmp_path):
    rng = random.Random(11)
    n = 1000
    ids = [f"00000000-0000-4000-a000-{i:012d}" for i in range(n)]
    tasks, steps = [], []
    for i in range(n):
        outcome = "failed" if rng.random() < 0.05 else "success"
        tasks.append(
            {"id": ids[i], "queue": 0.2, "duration": rng.choice([0.5, 1, 2]), "outcome": outcome}
        )
        needs = sorted({f"s{j}" for j in rng.sample(range(i), k=min(i, rng.choice([0, 1, 2])))})
        steps.append(
            {
                "id": f"s{i}",
                "start_task": ids[i],
                "needs": needs,
                "continue_on_error": outcome == "failed" or rng.random() < 0.5,
            }
        )
    emu = start_emulator(tasks, speed=10)
    try:
        key = tmp_path / "k.pem"
        key.write_text(emu.credentials.private_key_pem)
        path = tmp_path / "p.yaml"
        path.write_text(pipeline_text(emu, key, steps, max_parallel=200))
        proc = spawn(path, tmp_path / "r")
        out, err = proc.communicate(timeout=240)
        assert proc.returncode in (0, 1), err
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        truth = {r.task_id: r.status for r in emu.journal.runs}
        assert len(truth) == len(emu.journal.runs), "each task started at most once"
        for i, step in enumerate(report["steps"]):
            expected = truth.get(ids[i], "skipped")
            assert step["status"] == expected, (step["id"], step["status"], expected)
        assert emu.journal.tokens_issued("automate-mft") == 1
        assert sum(1 for s in report["steps"] if s["status"] != "skipped") > 500
    finally:
        emu.stop()
