"""The console summary, `mftrun report show`, and redaction of every byte written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from mftrun.cli import main
from mftrun.credentials import Redactor
from mftrun.reports import build_report, write_reports
from mftrun.reports.summary import print_summary, verdict
from mftrun.results import Attempt, Status

try:
    from test_reports_samples import ALL, at, failure_run, interrupt_run, success_run, timeout_run
except ImportError:
    from tests.test_reports_samples import (
        ALL,
        at,
        failure_run,
        interrupt_run,
        success_run,
        timeout_run,
    )


def console_text(report: dict) -> str:  # type: ignore[type-arg]
    out = io.StringIO()
    print_summary(report, console=Console(file=out, width=120, color_system=None))
    return out.getvalue()


def test_verdicts() -> None:
    assert verdict(build_report(success_run())) == ("success", "Succeeded")
    assert verdict(build_report(failure_run())) == ("failed", "Failed")
    assert verdict(build_report(timeout_run())) == ("timed_out", "Timed out")
    assert verdict(build_report(interrupt_run())) == ("interrupted", "Interrupted")
    allowed = failure_run()
    allowed.steps = [allowed.steps[1]]
    allowed.exit_code = 0
    assert verdict(build_report(allowed)) == ("success", "Succeeded (1 allowed failure)")
    crashed = success_run()
    crashed.steps[-1].outcome = Status.RUNNING  # a crash left it going; exit code still 0
    assert verdict(build_report(crashed))[0] == "error"
    assert verdict(build_report(crashed))[1].startswith("Incomplete")


def test_summary_lists_every_step_the_problems_and_the_verdict() -> None:
    text = console_text(build_report(failure_run()))
    for step_id in ("pull-orders", "pull-invoices", "wait-backup", "notify"):
        assert step_id in text
    assert (
        "✗ pull-orders: task pull-orders failed after 3 attempts: sftp: permission denied" in text
    )
    assert "↷ notify: needs pull-orders, which failed" in text
    assert "Failed in 2m30s: 2 failed, 1 error, 1 skipped (exit code 1)" in text


def test_summary_warns_about_remote_runs_left_going() -> None:
    text = console_text(build_report(timeout_run()))
    assert (
        "warning: step big-transfer: remote run 7f3e0c2a-0000-4000-8000-000000000001 may still be "
        "going" in text
    )


def test_rich_markup_in_messages_prints_as_itself() -> None:
    result = failure_run()
    result.steps[0].error = "bad [bold]markup[/] and [/nope]"
    text = console_text(build_report(result))
    assert "bad [bold]markup[/] and [/nope]" in text


def test_report_show_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_reports(failure_run(), report_dir=tmp_path, formats=("json",))
    assert main(["report", "show", str(tmp_path / "report.json")]) == 0
    assert "Failed in 2m30s" in capsys.readouterr().out
    assert main(["report", "show", str(tmp_path), "--format", "json"]) == 0  # the folder works too
    summary = json.loads(capsys.readouterr().out)
    assert summary["verdict"] == "failed" and summary["exit_code"] == 1
    assert [s["id"] for s in summary["steps"]] == [
        "pull-orders",
        "pull-invoices",
        "wait-backup",
        "notify",
    ]
    assert summary["steps"][0]["attempts"] == 3


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "no such file"),
        ("<html></html>", "not valid JSON"),
        ('{"report_version": 7}', "not an mftrun report"),
    ],
)
def test_report_show_bad_input_is_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7canaryKEYline1\n"
    "abcdefghijklmnopqrstuvwxyzCANARYkeyLINE2abcdefghijklmnopqrstuvwx\n"
    "-----END PRIVATE KEY-----"
)
CANARIES = {
    "key": PEM,
    "client_secret": "canary-client-secret-9f8e7d",
    "token": "eyJcanary.token.VALUE42",
    "markup": "s3cr&t<v>\"q'",
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_canary_secrets_are_absent_from_every_byte_written(name: str, tmp_path: Path) -> None:
    redactor = Redactor()
    for value in CANARIES.values():
        redactor.add(value)
    result = ALL[name]()
    token, secret, key_line = CANARIES["token"], CANARIES["client_secret"], PEM.splitlines()[2]
    first = result.steps[0]
    first.error = f"401: Authorization: Bearer {token}; body echoed client_secret={secret}"
    first.outputs = {
        "echo": f"assertion for {secret}",
        token: [key_line, {"nested": CANARIES["markup"]}],
    }
    first.attempts.append(
        Attempt(
            number=9,
            started_at=at(1),
            ended_at=at(2),
            run_id=f"run-{token}",
            remote_status=f"failed: invalid key {PEM}",
            status=Status.FAILED,
            message=f"Authorization: Basic {secret}",
        )
    )
    first.remote_may_continue = [f"run-{token}"]
    result.message = f"crash while using {CANARIES['markup']}"
    write_reports(result, report_dir=tmp_path, redactor=redactor)
    out = io.StringIO()
    print_summary(build_report(result, redactor), console=Console(file=out, width=200))
    blobs = [p.read_bytes() for p in tmp_path.iterdir()] + [out.getvalue().encode()]
    assert len(blobs) == 4
    needles = [token, secret, key_line, PEM.splitlines()[1], CANARIES["markup"]]
    import html as html_module

    needles += [
        html_module.escape(CANARIES["markup"]),
        html_module.escape(CANARIES["markup"], quote=False),
    ]
    for blob in blobs:
        for needle in needles:
            assert needle.encode() not in blob
    assert b"***" in (tmp_path / "report.json").read_bytes()


def test_a_huge_run_prints_a_screen_the_failure_and_no_success_rows() -> None:
    import io

    from rich.console import Console

    from mftrun.reports.summary import print_summary

    steps = [
        {
            "id": f"s{i:05d}",
            "status": "success",
            "environment": "mft",
            "action": "start_task",
            "attempts": [{}],
            "duration": 1.0,
        }
        for i in range(5000)
    ]
    steps[4321] = {**steps[4321], "status": "failed", "error": "partner refused"}
    report = {
        "pipeline": "big",
        "steps": steps,
        "duration": 60.0,
        "exit_code": 1,
        "totals": {"success": 4999, "failed": 1},
    }
    out = io.StringIO()
    print_summary(report, console=Console(file=out, width=120, no_color=True))
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) < 15  # a screen: successes are counted, not listed
    assert "s04321 failed: partner refused" in text
    assert "(5,000 steps)" in lines[0]
    assert lines[-1] == "Failed in 1m: 4999 success, 1 failed (exit code 1)"


def test_a_step_beyond_its_p95_is_marked_and_the_history_is_in_the_schema() -> None:
    import jsonschema

    from mftrun.reports import report_schema

    result = success_run()
    slow, usual = result.steps[0], result.steps[1]
    slow.history = {"runs": 30, "p50_s": 30.0, "p95_s": 35.0, "max_s": 40.0}  # 42.5 s tonight
    usual.history = {"runs": 30, "p50_s": 1000.0, "p95_s": 2000.0, "max_s": 3000.0}
    report = build_report(result)
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    assert report["steps"][0]["history"]["p95_s"] == 35.0
    assert "history" not in report["steps"][2]  # no history: the field is absent
    text = console_text(report)
    assert "42.5s ▲" in text and "typical 30s, p95 35s (30 run(s))" in text
    assert "pull-orders: took 42.5s, beyond its typical 30s, p95 35s" in text
    assert "pull-invoices: took" not in text  # within its history: no note
    broken = dict(report, steps=[dict(report["steps"][0], history={"runs": 30, "p50_s": "x"})])
    assert "▲" not in console_text(broken)  # a damaged history is ignored, never a crash


def test_a_remote_run_the_error_already_names_is_said_once() -> None:
    from mftrun.reports.summary import remote_notes, step_note

    step = {
        "status": "timed_out",
        "outcome": "timed_out",
        "conclusion": "timed_out",
        "error": "step timeout of 15s reached; remote run f45 may still be going "
        "(automate-mft has no public cancel call)",
        "remote_may_continue": ["f45", "a77"],
    }
    assert remote_notes(step) == ["remote run a77 may still be going"]
    assert step_note(step).count("f45 may still be going") == 1
