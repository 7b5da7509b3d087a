"""Rehearse timeouts and environments (issue 11 section 4).

Under --emulate the scenario's `speed` also drives mftrun's own timers, so a night's
timeouts happen in seconds exactly as they would at night; one pipeline file serves the
emulator, staging and production because base_url, region and the key file's path may
come from the environment, and `mftrun emulate` prints a block that uses them.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mftrun.clock import ScaledClock, SystemClock
from mftrun.emulator import Emulator, Scenario

TASK = "02115928-16fe-4493-949b-d77d302a88ee"
SLOW = "5d0c3a9e-1b2f-4c6d-8e7f-9a0b1c2d3e4f"


def mftrun(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "mftrun", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def test_a_scaled_clock_runs_speed_times_faster_and_converts_waits() -> None:
    clock = ScaledClock(100.0)
    start_sim, start_real = clock.monotonic(), time.monotonic()
    time.sleep(0.05)
    sim = clock.monotonic() - start_sim
    real = time.monotonic() - start_real
    assert sim == pytest.approx(real * 100, rel=0.2)
    assert clock.real_seconds(60.0) == pytest.approx(0.6)
    assert clock.from_real(2.0) == pytest.approx(200.0)  # a platform's Retry-After
    plain = SystemClock()
    assert plain.real_seconds(60.0) == 60.0 and plain.from_real(2.0) == 2.0
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_a_three_hour_task_under_a_one_hour_timeout_times_out_in_seconds(tmp_path: Path) -> None:
    scenario = tmp_path / "night.yaml"
    scenario.write_text(
        "speed: 1200\nautomate_mft:\n  tasks:\n"
        f"    - {{id: {SLOW}, duration: 3h}}\n"
        f"    - {{id: {TASK}, duration: 20m, outcomes: [failed, success]}}\n"
    )
    pipeline = tmp_path / "night-pipeline.yaml"
    pipeline.write_text(
        f"""version: 1
name: rehearsal
environments:
  mft:
    provider: automate-mft
    region: us
    credentials:
      tenant_id: {{env: MFT_TENANT_ID}}
      key_id: {{env: MFT_KEY_ID}}
      private_key: {{file: ~/.config/mftrun/mft.pem}}
defaults: {{environment: mft, poll: {{interval: 30s, max_interval: 5m}}}}
steps:
  - id: long
    start_task: {SLOW}
    timeout: 1h
  - id: flaky
    start_task: {TASK}
    timeout: 2h
    retries: {{attempts: 1, delay: 10m}}
"""
    )
    started = time.monotonic()
    result = mftrun(
        "apply", str(pipeline), "--emulate", "--scenario", str(scenario),
        "--report-dir", str(tmp_path / "r"),
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["long"]["status"] == "timed_out"
    assert "step timeout of 1h reached" in steps["long"]["error"]
    # the 10-minute retry delay and 30 s polls shrank too: a retried 20-minute task succeeded
    assert steps["flaky"]["status"] == "success" and len(steps["flaky"]["attempts"]) == 2
    assert elapsed < 60  # 1 h timeout, 2 x 20 min tasks and a 10 min delay at x1200


def test_a_whole_run_timeout_is_rehearsed_at_the_scenario_speed(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"speed: 1200\nautomate_mft:\n  tasks:\n    - {{id: {SLOW}, duration: 3h}}\n"
    )
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        f"""version: 1
name: whole-run
timeout: 30m
environments:
  mft:
    provider: automate-mft
    region: us
    credentials: {{tenant_id: {{env: T}}, key_id: {{env: K}}, private_key: {{env: P}}}}
steps:
  - {{id: long, environment: mft, start_task: {SLOW}}}
"""
    )
    started = time.monotonic()
    result = mftrun(
        "apply", str(pipeline), "--emulate", "--scenario", str(scenario), "--report-dir",
        str(tmp_path / "r"),
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert "whole-run timeout of 30m reached" in report["message"]
    assert report["steps"][0]["status"] == "timed_out"


def write_located_pipeline(path: Path, *, region: bool = False) -> Path:
    location = "region: {env: MFT_REGION}" if region else "base_url: {env: MFT_BASE_URL}"
    path.write_text(
        f"""version: 1
name: one-file
environments:
  mft:
    provider: automate-mft
    {location}
    credentials:
      tenant_id: {{env: MFT_TENANT_ID}}
      key_id: {{env: MFT_KEY_ID}}
      private_key: {{file: {{env: MFT_PRIVATE_KEY_FILE}}}}
  backup:
    provider: acronis
    base_url: {{env: ACRONIS_BASE_URL}}
    credentials:
      client_id: {{env: ACRONIS_CLIENT_ID}}
      client_secret: {{env: ACRONIS_CLIENT_SECRET}}
steps:
  - {{id: settled, environment: backup, wait_tasks: {{state: started}}, timeout: 1m}}
  - {{id: push, environment: mft, start_task: {TASK}, needs: [settled], timeout: 1m}}
"""
    )
    return path


def test_base_url_and_the_key_files_path_come_from_the_environment(tmp_path: Path) -> None:
    path = write_located_pipeline(tmp_path / "p.yaml")
    assert mftrun("validate", str(path)).returncode == 0
    scenario = Scenario.from_dict(
        {"speed": 20, "automate_mft": {"tasks": [{"id": TASK, "duration": "2s"}]}}
    )
    with Emulator(scenario) as emu:
        env = {
            **emu.write_credentials(tmp_path / "creds"),
            "MFT_BASE_URL": emu.url,
            "ACRONIS_BASE_URL": emu.url,
        }
        result = mftrun("apply", str(path), "--no-report", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert emu.journal.starts(TASK) == 1
        missing = {
            k: v for k, v in env.items() if k not in ("MFT_BASE_URL", "MFT_PRIVATE_KEY_FILE")
        }
        refused = mftrun("apply", str(path), "--no-report", env=missing)
        assert emu.journal.starts(TASK) == 1  # nothing started the second time
    assert refused.returncode == 3, refused.stdout + refused.stderr
    text = refused.stderr
    assert "base_url: environment variable MFT_BASE_URL is not set" in text
    assert "environment variable MFT_PRIVATE_KEY_FILE, which names its file, is not set" in text


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("http://api.example.com", "refusing plain http"),
        ("https://api.example.com/?x=1", "must not have a query"),
    ],
)
def test_a_base_url_from_the_environment_is_checked_like_one_in_the_file(
    tmp_path: Path, value: str, words: str
) -> None:
    path = write_located_pipeline(tmp_path / "p.yaml")
    env = {"MFT_BASE_URL": value, "ACRONIS_BASE_URL": "https://eu2-cloud.acronis.com",
           "MFT_TENANT_ID": "tenant-0001", "MFT_KEY_ID": "key-00000001",
           "MFT_PRIVATE_KEY_FILE": str(tmp_path / "none.pem"),
           "ACRONIS_CLIENT_ID": "client-0001", "ACRONIS_CLIENT_SECRET": "x" * 24}  # fmt: skip
    result = mftrun("apply", str(path), "--no-report", env=env)
    assert result.returncode == 3
    assert "some environments cannot be located or their credentials read" in result.stderr
    assert words in result.stderr


def test_a_region_from_the_environment(tmp_path: Path) -> None:
    path = write_located_pipeline(tmp_path / "p.yaml", region=True)
    assert mftrun("validate", str(path)).returncode == 0
    result = mftrun("apply", str(path), "--no-report", env={"MFT_REGION": "mars"})
    assert result.returncode == 3
    assert "region from MFT_REGION is 'mars': use us, eu or staging" in result.stderr
    plan = json.loads(mftrun("plan", str(path), "--format", "json").stdout)
    push = next(s for s in plan["steps"] if s["id"] == "push")
    assert push["base_url"] == "{env: MFT_REGION}"


def test_the_block_mftrun_emulate_prints_runs_as_it_is(tmp_path: Path) -> None:
    """Nothing machine-specific is pasted: the block names variables, env.sh sets them."""
    folder = tmp_path / "creds"
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"automate_mft:\n  tasks:\n    - {{id: {TASK}, duration: 1s}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mftrun", "emulate", "--scenario", str(scenario),
         "--credentials-dir", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        block = output[output.index("environments:") : output.index("Press Ctrl-C")].strip()
        assert str(folder) not in block and "127.0.0.1" not in block
        pipeline = tmp_path / "p.yaml"
        pipeline.write_text(
            f"version: 1\nname: pasted\n{block}\nsteps:\n"
            "  - {id: settled, environment: backup, wait_tasks: {state: started}, timeout: 1m}\n"
            f"  - {{id: push, environment: mft, start_task: {TASK}, timeout: 1m}}\n"
        )
        env: dict[str, str] = {}
        for line in (folder / "env.sh").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0]
        assert env["MFT_BASE_URL"].startswith("http://127.0.0.1:")
        result = mftrun("apply", str(pipeline), "--no-report", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
