"""Reports from real `mftrun apply` runs over the emulator, one per way a run can end.

Each run talks real HTTP to an in-process emulator; the emulator's journal is the
ground truth the report is checked against. Covered: success, task failure, step
timeout, whole-run timeout, SIGINT (a separate process), an internal crash (best
effort), and the --report-dir / --report / --no-report flags.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mftrun import __version__
from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario
from mftrun.reports import FILENAMES, report_schema

try:
    from test_reports_junit import check_shape
except ImportError:  # tests/ made a package later
    from tests.test_reports_junit import check_shape

ROOT = Path(__file__).resolve().parent.parent
T = {
    name: f"00000000-0000-4000-a000-{i:012d}"
    for i, name in enumerate(["ok", "ok2", "bad", "slow", "after"])
}


@pytest.fixture
def platform() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(tasks: list[dict[str, Any]], speed: float = 20) -> Emulator:
        emu = Emulator(
            Scenario.from_dict({"seed": 5, "speed": speed, "automate_mft": {"tasks": tasks}})
        ).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


def task(name: str, **behaviour: Any) -> dict[str, Any]:
    return {"id": T[name], "queue": 1, "duration": 2, **behaviour}


def write_pipeline(tmp_path: Path, emu: Emulator, steps: str, *, top: str = "") -> Path:
    key = tmp_path / "mft.pem"
    key.write_text(emu.credentials.private_key_pem or "")
    text = textwrap.dedent("""\
        version: 1
        name: outcomes
        environments:
          mft:
            provider: automate-mft
            base_url: {url}
            credentials:
              tenant_id: {tenant}
              key_id: {kid}
              private_key: {{file: {key}}}
        defaults:
          environment: mft
          poll: {{interval: 0.05, max_interval: 0.2}}
        """).format(
        url=emu.url, tenant=emu.credentials.tenant_id, kid=emu.credentials.key_id, key=key
    )
    text += top + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  ")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def step_line(path: Path, step_id: str) -> int:
    """1-based line of `- id: <step_id>` / `- {id: <step_id>` in the pipeline file."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith(("- id: " + step_id, "- {id: " + step_id + ",")):
            return number
    raise AssertionError(f"step {step_id} not in {path}")


def apply(path: Path, report_dir: Path, *extra: str) -> int:
    return main(["apply", str(path), "--report-dir", str(report_dir), "-q", *extra])


def load_valid(report_dir: Path) -> dict[str, Any]:
    """report.json, validated against the packaged schema; no temp file left beside it."""
    report = json.loads((report_dir / "report.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    leftovers = [p.name for p in report_dir.iterdir() if p.name not in FILENAMES.values()]
    assert leftovers == [], "atomic writes leave no temp file behind"
    return report


def junit_counts(report_dir: Path) -> dict[str, str]:
    """The suite's counts, after checking the whole file against the common JUnit shape."""
    root = ET.parse(report_dir / "junit.xml").getroot()
    check_shape(root)
    suite = root.find("testsuite")
    assert suite is not None
    return {k: suite.get(k, "") for k in ("tests", "failures", "errors", "skipped")}


def test_success_report_has_every_documented_field(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu = platform([task("ok"), task("ok2")])
    path = write_pipeline(
        tmp_path,
        emu,
        f"""\
        - id: first
          start_task: {T["ok"]}
          outputs: {{batch: "b-{{{{ result.run_id }}}}"}}
        - {{id: second, start_task: {T["ok2"]}, needs: [first]}}
        """,
    )
    assert apply(path, tmp_path / "r") == 0
    report = load_valid(tmp_path / "r")
    assert report["pipeline"] == "outcomes"
    assert report["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report["mftrun_version"] == __version__ and report["report_version"] == 1
    assert report["started_at"] < report["ended_at"] and report["duration"] > 0
    assert report["exit_code"] == 0 and report["interrupted"] is False
    assert report["totals"]["success"] == 2 and sum(report["totals"].values()) == 2
    runs = {r.task_id: r for r in emu.journal.runs}
    for step, task_id in zip(report["steps"], (T["ok"], T["ok2"]), strict=False):
        assert (step["environment"], step["action"]) == ("mft", "start_task")
        assert step["status"] == step["outcome"] == step["conclusion"] == "success"
        assert step["error"] is None and step["duration"] > 0
        assert step["http_calls"] >= 2  # the start and at least one poll
        [attempt] = step["attempts"]
        assert attempt["run_id"] == runs[task_id].run_id  # the emulator's ground truth
        assert attempt["remote_status"] == "success"
        assert attempt["started_at"] <= attempt["ended_at"]
    assert report["steps"][0]["outputs"]["batch"] == f"b-{runs[T['ok']].run_id}"
    assert report["steps"][0]["line"] == step_line(path, "first")
    assert junit_counts(tmp_path / "r") == {
        "tests": "2",
        "failures": "0",
        "errors": "0",
        "skipped": "0",
    }


def test_failure_report_outcome_conclusion_and_error(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu = platform(
        [task("bad", outcome="failed", message="partner refused"), task("ok"), task("after")]
    )
    path = write_pipeline(
        tmp_path,
        emu,
        f"""\
        - {{id: allowed, start_task: {T["bad"]}, continue_on_error: true}}
        - {{id: good, start_task: {T["ok"]}}}
        - {{id: broken, start_task: {T["bad"]}, retries: {{attempts: 1, delay: 0.1s}}}}
        - {{id: after, start_task: {T["after"]}, needs: [broken]}}
        """,
    )
    assert apply(path, tmp_path / "r") == 1
    report = load_valid(tmp_path / "r")
    steps = {s["id"]: s for s in report["steps"]}
    assert (steps["allowed"]["outcome"], steps["allowed"]["conclusion"]) == ("failed", "success")
    assert (steps["broken"]["outcome"], steps["broken"]["conclusion"]) == ("failed", "failed")
    assert "partner refused" in steps["broken"]["error"]
    assert [a["remote_status"] for a in steps["broken"]["attempts"]] == ["failed", "failed"]
    assert len({a["run_id"] for a in steps["broken"]["attempts"]}) == 2
    assert steps["after"]["status"] == "skipped" and steps["after"]["attempts"] == []
    assert report["totals"] == {
        **dict.fromkeys(report["totals"], 0),
        "failed": 2,
        "success": 1,
        "skipped": 1,
    }
    assert report["exit_code"] == 1
    # 'allowed' (continue_on_error) concluded success: not a JUnit failure
    assert junit_counts(tmp_path / "r") == {
        "tests": "4",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
    }


def test_step_timeout_report(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu = platform([task("slow", duration=600)])
    path = write_pipeline(
        tmp_path, emu, f"- {{id: slow, start_task: {T['slow']}, timeout: 0.5s}}\n"
    )
    assert apply(path, tmp_path / "r") == 1
    report = load_valid(tmp_path / "r")
    [step] = report["steps"]
    run_id = emu.journal.runs[0].run_id
    assert step["status"] == "timed_out" and step["remote_may_continue"] == [run_id]
    assert step["attempts"][0]["run_id"] == run_id
    assert step["attempts"][0]["remote_status"] in ("queued", "running")
    assert report["totals"]["timed_out"] == 1
    assert junit_counts(tmp_path / "r") == {
        "tests": "1",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
    }


def test_whole_run_timeout_report(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu = platform([task("slow", duration=600), task("after")])
    path = write_pipeline(
        tmp_path,
        emu,
        f"""\
        - {{id: slow, start_task: {T["slow"]}}}
        - {{id: after, start_task: {T["after"]}, needs: [slow]}}
        """,
        top="timeout: 0.5s\n",
    )
    assert apply(path, tmp_path / "r") == 1
    report = load_valid(tmp_path / "r")
    assert "whole-run timeout" in report["message"]
    assert [s["status"] for s in report["steps"]] == ["timed_out", "skipped"]
    assert report["exit_code"] == 1


def test_report_dir_and_format_flags(
    platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    emu = platform([task("ok")])
    path = write_pipeline(tmp_path, emu, f"- {{id: one, start_task: {T['ok']}}}\n")
    nested = tmp_path / "a" / "b"
    assert apply(path, nested, "--report", "junit,json") == 0
    assert sorted(p.name for p in nested.iterdir()) == ["junit.xml", "report.json"]
    assert apply(path, tmp_path / "h", "--report", "html") == 0
    assert [p.name for p in (tmp_path / "h").iterdir()] == ["report.html"]
    assert apply(path, tmp_path / "none", "--no-report") == 0
    assert not (tmp_path / "none").exists()
    out = capsys.readouterr().out
    assert f"json report: {nested / 'report.json'}" in out
    # the default folder is ./mftrun-report
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        assert main(["apply", str(path), "-q"]) == 0
    finally:
        os.chdir(old)
    assert sorted(p.name for p in (cwd / "mftrun-report").iterdir()) == sorted(FILENAMES.values())


def test_report_show_reads_a_real_report(
    platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    emu = platform([task("bad", outcome="failed", message="disk full")])
    path = write_pipeline(tmp_path, emu, f"- {{id: broken, start_task: {T['bad']}}}\n")
    assert apply(path, tmp_path / "r") == 1
    capsys.readouterr()
    assert main(["report", "show", str(tmp_path / "r" / "report.json")]) == 0
    out = capsys.readouterr().out
    assert "broken" in out and "disk full" in out and "Failed" in out
    (tmp_path / "r" / "report.json").write_text((tmp_path / "r" / "report.json").read_text()[:100])
    assert main(["report", "show", str(tmp_path / "r" / "report.json")]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "Traceback" not in err


def test_internal_crash_still_leaves_a_valid_partial_report(
    platform,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bug in mftrun mid-run: exit 1 with a crash log, and the reports are still written."""
    from mftrun.executor import Executor

    def boom(self: Any, live: Any, obs: Any) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Executor, "_observe", boom)
    emu = platform([task("slow", duration=600)])
    path = write_pipeline(tmp_path, emu, f"- {{id: slow, start_task: {T['slow']}}}\n")
    assert apply(path, tmp_path / "r") == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err
    report = load_valid(tmp_path / "r")
    assert "crashed" in report["message"]
    assert report["steps"][0]["status"] in ("pending", "running")
    assert report["steps"][0]["attempts"][0]["run_id"] == emu.journal.runs[0].run_id
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Succeeded" not in html, "an unfinished run is never shown as a success"
    assert junit_counts(tmp_path / "r") == {
        "tests": "1",
        "failures": "0",
        "errors": "1",
        "skipped": "0",
    }


def test_crash_report_exit_code_is_not_zero(
    platform,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mftrun.executor import Executor

    def boom(self: Any, live: Any, obs: Any) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Executor, "_observe", boom)
    emu = platform([task("slow", duration=600)])
    path = write_pipeline(tmp_path, emu, f"- {{id: slow, start_task: {T['slow']}}}\n")
    assert apply(path, tmp_path / "r") == 1
    assert load_valid(tmp_path / "r")["exit_code"] == 1, (
        "the report says what the process exited with"
    )


def test_sigint_to_a_separate_process_writes_valid_reports(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emu = platform([task("slow", queue=0, duration=3000), task("after")])
    path = write_pipeline(
        tmp_path,
        emu,
        f"""\
        - {{id: slow, start_task: {T["slow"]}}}
        - {{id: after, start_task: {T["after"]}, needs: [slow]}}
        """,
    )
    report_dir = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mftrun", "apply", str(path), "--report-dir", str(report_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "GITHUB_ACTIONS": ""},
    )
    try:
        deadline = time.monotonic() + 20
        while not emu.journal.runs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emu.journal.runs, "the slow task should have started"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    report = load_valid(report_dir)
    assert report["interrupted"] is True and report["exit_code"] == 130
    assert [s["status"] for s in report["steps"]] == ["cancelled", "skipped"]
    run_id = emu.journal.runs[0].run_id
    assert report["steps"][0]["remote_may_continue"] == [run_id]
    assert report["steps"][0]["attempts"][0]["run_id"] == run_id
    assert junit_counts(report_dir) == {
        "tests": "2",
        "failures": "0",
        "errors": "1",
        "skipped": "1",
    }
