"""`mftrun apply` end to end.

Real HTTP to the emulator on 127.0.0.1, the journal as ground truth.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario

T = {
    name: f"00000000-0000-4000-8000-{i:012d}"
    for i, name in enumerate(
        ["a", "b", "c", "d", "bad", "slow", "flaky", "alert", "cleanup", "after"]
    )
}


@pytest.fixture
def platform():
    """Start an emulator with the given scenario.

    Yields a function returning the running emulator.
    """
    started = []

    def start(tasks: list[dict] | None = None, **extra) -> Emulator:
        scenario = Scenario.from_dict(
            {"seed": 7, "speed": 20, "automate_mft": {"tasks": tasks or []}, **extra}
        )
        emu = Emulator(scenario).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


def task(name: str, **behaviour) -> dict:
    return {"id": T[name], "queue": 1, "duration": 2, **behaviour}


def apply(
    tmp_path: Path, emu: Emulator, steps: str, *, top: str = "", args: tuple[str, ...] = ()
) -> tuple[int, dict]:
    key = tmp_path / "mft.pem"
    key.write_text(emu.credentials.private_key_pem)
    text = textwrap.dedent("""\
        version: 1
        name: emulated
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
    reports = tmp_path / "report"
    code = main(["apply", str(path), "--report-dir", str(reports), "-q", *args])
    report = json.loads((reports / "report.json").read_text())
    return code, report


def statuses(report: dict) -> dict[str, str]:
    return {s["id"]: s["status"] for s in report["steps"]}


def test_diamond_starts_each_task_once_and_joins(platform, tmp_path):
    emu = platform([task("a"), task("b"), task("c", duration=6), task("d")])
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - {{id: a, start_task: {T["a"]}}}
        - {{id: b, start_task: {T["b"]}, needs: [a]}}
        - {{id: c, start_task: {T["c"]}, needs: [a]}}
        - {{id: d, start_task: {T["d"]}, needs: [b, c]}}
        """,
    )
    assert code == 0
    assert statuses(report) == dict.fromkeys("abcd", "success")
    assert [emu.journal.starts(T[x]) for x in "abcd"] == [1, 1, 1, 1]
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["d"]["started_at"] >= steps["c"]["ended_at"]
    assert emu.journal.tokens_issued("automate-mft") == 1


def test_every_run_if_kind_and_skip_propagation(platform, tmp_path):
    emu = platform(
        [
            task("a"),
            task("bad", outcome="failed", message="disk full"),
            task("b"),
            task("c"),
            task("alert"),
            task("cleanup"),
            task("d"),
        ]
    )
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - {{id: a, start_task: {T["a"]}}}
        - {{id: bad, start_task: {T["bad"]}, needs: [a]}}
        - {{id: b, start_task: {T["b"]}, needs: [bad]}}
        - {{id: c, start_task: {T["c"]}, needs: [b]}}
        - {{id: alert, start_task: {T["alert"]}, needs: [c], run_if: failure}}
        - {{id: cleanup, start_task: {T["cleanup"]}, needs: [c], run_if: always}}
        - id: d
          start_task: {T["d"]}
          needs: [bad]
          run_if: "{{{{ steps.bad.status == 'failed' and steps.a.outputs.run_id != '' }}}}"
        """,
    )
    assert statuses(report) == {
        "a": "success",
        "bad": "failed",
        "b": "skipped",
        "c": "skipped",
        "alert": "success",
        "cleanup": "success",
        "d": "success",
    }
    assert "disk full" in {s["id"]: s for s in report["steps"]}["bad"]["error"]
    assert emu.journal.starts(T["b"]) == 0 and emu.journal.starts(T["c"]) == 0
    assert code == 1


def test_continue_on_error_keeps_the_pipeline_green(platform, tmp_path):
    emu = platform([task("bad", outcome="failed"), task("after")])
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - {{id: bad, start_task: {T["bad"]}, continue_on_error: true}}
        - {{id: after, start_task: {T["after"]}, needs: [bad]}}
        """,
    )
    bad = report["steps"][0]
    assert (bad["outcome"], bad["conclusion"]) == ("failed", "success")
    assert statuses(report)["after"] == "success"
    assert code == 0


def test_step_timeout_reports_the_remote_run_left_going(platform, tmp_path):
    emu = platform([task("slow", duration=600)])
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - {{id: slow, start_task: {T["slow"]}, timeout: 1s}}
        """,
    )
    slow = report["steps"][0]
    run_id = emu.journal.runs[0].run_id
    assert slow["status"] == "timed_out"
    assert slow["remote_may_continue"] == [run_id]
    assert run_id in slow["error"] and "may still be going" in slow["error"]
    assert code == 1


def test_whole_run_timeout(platform, tmp_path):
    emu = platform([task("slow", duration=600), task("after")])
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - {{id: slow, start_task: {T["slow"]}}}
        - {{id: after, start_task: {T["after"]}, needs: [slow]}}
        """,
        top="timeout: 1s\n",
    )
    assert statuses(report) == {"slow": "timed_out", "after": "skipped"}
    assert "whole-run timeout" in report["message"]
    assert emu.journal.starts(T["after"]) == 0
    assert code == 1


def test_retries_start_again_after_a_failed_run(platform, tmp_path):
    emu = platform([task("flaky", outcomes=["failed", "success"])])
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - {{id: flaky, start_task: {T["flaky"]}, retries: {{attempts: 2, delay: 0.1}}}}
        """,
    )
    assert code == 0
    assert emu.journal.starts(T["flaky"]) == 2
    attempts = report["steps"][0]["attempts"]
    assert [a["status"] for a in attempts] == ["failed", "success"]
    assert attempts[0]["run_id"] != attempts[1]["run_id"]


def test_undefined_template_variable_fails_the_step_without_starting(platform, tmp_path):
    emu = platform([task("a")])
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: a
          start_task:
            task_id: {T["a"]}
            parameters: {{FileMask: "{{{{ vars.missing }}}}"}}
        """,
        top="vars: {present: 1}\n",
    )
    assert report["steps"][0]["status"] == "error"
    assert "missing" in report["steps"][0]["error"]
    assert emu.journal.starts(T["a"]) == 0
    assert code == 2


def test_outputs_and_vars_flow_into_the_next_start(platform, tmp_path):
    emu = platform([task("a"), task("b")])
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: a
          start_task: {T["a"]}
          outputs: {{batch: "{{{{ vars.site }}}}-{{{{ result.run_id }}}}"}}
        - id: b
          needs: [a]
          start_task:
            task_id: {T["b"]}
            parameters:
              Batch: "{{{{ steps.a.outputs.batch }}}}"
              Status: "{{{{ steps.a.outputs.status }}}}"
        """,
        top="vars: {site: paris}\n",
        args=("--var", "site=lyon"),
    )
    assert code == 0
    first, second = emu.journal.runs[0], emu.journal.runs[1]
    assert second.parameters == {"Batch": f"lyon-{first.run_id}", "Status": "success"}
    assert report["steps"][0]["outputs"]["batch"] == f"lyon-{first.run_id}"
