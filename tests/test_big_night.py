"""Issue 17's 241-step night, really run: `mftrun apply --emulate` in a subprocess.

Plain output (a pipe, as in CI): a bounded number of progress lines and a final
summary that fits a screen. In a terminal (a pseudo-terminal of 30 x 120): rich's
progress bar, frames never taller than the terminal, the same summary after it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from mftrun.reports import report_schema

try:
    import night241
except ImportError:
    from tests import night241

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "GITHUB_ACTIONS": "", "PYTHONPATH": str(ROOT), "MFTRUN_STATE": ""}


@dataclass(frozen=True)
class Night:
    code: int
    output: str
    report_dir: Path


def command(folder: Path, report_dir: Path) -> list[str]:
    pipeline, scenario = night241.write(folder)
    return [
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
        "--no-state",
    ]


def run_plain(folder: Path) -> Night:
    report_dir = folder / "report"
    proc = subprocess.run(
        command(folder, report_dir),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**ENV, "NO_COLOR": "1"},
        check=False,
    )
    return Night(proc.returncode, proc.stdout + proc.stderr, report_dir)


def run_in_terminal(folder: Path, rows: int = 30, columns: int = 120) -> Night:
    report_dir = folder / "report-tty"
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in ENV.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "CI")}
    proc = subprocess.Popen(
        command(folder, report_dir),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=ROOT,
        env={**env, "TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        code = proc.wait(timeout=120)
    return Night(code, b"".join(chunks).decode("utf-8", "replace"), report_dir)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Night:
    return run_plain(tmp_path_factory.mktemp("night-plain"))


def summary_of(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("mftrun · big-night"))
    end = next(i for i, line in enumerate(lines) if line.startswith("json report:"))
    return lines[start:end]


def check_summary(summary: list[str]) -> None:
    assert summary[0] == "mftrun · big-night  (241 steps)"
    assert len(summary) <= 12  # a screen: successes are counted, not listed
    text = "\n".join(summary)
    # the longest pair set the duration (push-007's failure skips report)
    assert re.search(r"critical path \([^)]*\): pull-042 [\d.ms]+ → push-042 [\d.ms]+$", summary[1])
    assert summary[2].startswith("  slowest: pull-042 ")
    assert "✗ push-007 failed: " in text and "sftp: permission denied" in text
    assert "↷ report skipped: needs did not succeed: push-007" in text
    assert re.fullmatch(
        r"Failed in [\d.ms]+: 239 success, 1 failed, 1 skipped \(exit code 1\)", summary[-1]
    )


def test_plain_output_has_bounded_progress_lines_and_a_one_screen_summary(plain: Night) -> None:
    assert plain.code == 1, plain.output[-2000:]
    progress = [line for line in plain.output.splitlines() if " progress: " in line]
    # every tenth of the steps (24) or 30 s, never one per poll: the run takes seconds here
    assert 10 <= len(progress) <= 14, progress
    assert re.search(r"progress: 24/241 steps done \(9%\) · 24 success, \d+ running", progress[0])
    assert re.search(
        r"progress: 241/241 steps done \(100%\) · 239 success, 1 failed, 1 skipped · elapsed \d+s$",
        progress[-1],
    )
    check_summary(summary_of(plain.output))


def test_reports_of_the_night_carry_needs_and_put_failures_first(plain: Night) -> None:
    report = json.loads((plain.report_dir / "report.json").read_text())
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    steps = {s["id"]: s for s in report["steps"]}
    assert len(steps) == night241.STEPS
    assert steps["push-042"]["needs"] == ["pull-042"] and steps["pull-000"]["needs"] == []
    assert len(steps["report"]["needs"]) == night241.PULLS
    assert len(steps["pull-003"]["attempts"]) == 2  # retried once
    suite = ET.fromstring((plain.report_dir / "junit.xml").read_bytes()).find("testsuite")
    assert suite is not None
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names[:2] == ["push-007", "pull-000"] and len(names) == 241


def test_in_a_terminal_rich_draws_a_progress_bar_within_the_terminal(tmp_path: Path) -> None:
    night = run_in_terminal(tmp_path)
    assert night.code == 1, night.output[-2000:]
    raw = night.output
    assert "━" in raw and "/241" in raw  # rich's progress bar and its done / total
    assert re.search(r"\d+ success, (1 failed, )?\d+ running, \d+ waiting", raw)
    # rich redraws a frame by erasing and moving up one line per line drawn: never more
    # lines than the terminal has
    frames = [len(m.group(0)) // 8 for m in re.finditer(r"(?:\x1b\[2K\x1b\[1A)+", raw)]
    assert frames and max(frames) < 30
    plain_text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r\n", "\n")
    assert "push-007" in plain_text  # the failure made it to the table while running
    check_summary(summary_of(plain_text.replace("\r", "")))
