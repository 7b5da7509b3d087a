"""GitHub Actions annotations and job summary."""

from __future__ import annotations

import io
from pathlib import Path

from mftrun.credentials import Redactor
from mftrun.reports.github import annotate, command, escape_data, escape_property

try:
    from test_reports_samples import XSS, failure_run, success_run, timeout_run
except ImportError:
    from tests.test_reports_samples import XSS, failure_run, success_run, timeout_run

GH = {"GITHUB_ACTIONS": "true"}


def test_nothing_outside_github_actions(tmp_path: Path) -> None:
    out = io.StringIO()
    summary = tmp_path / "summary.md"
    annotate(failure_run(), environ={"GITHUB_STEP_SUMMARY": str(summary)}, stream=out)
    annotate(
        failure_run(),
        environ={"GITHUB_ACTIONS": "false", "GITHUB_STEP_SUMMARY": str(summary)},
        stream=out,
    )
    assert out.getvalue() == "" and not summary.exists()


def test_escaping_follows_actions_toolkit() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert (
        command("error", "x", file="f.yaml", line=3, col=None, title="t: 1, 2")
        == "::error file=f.yaml,line=3,title=t%3A 1%2C 2::x"
    )


def test_one_error_per_failed_errored_or_timed_out_step_at_its_line() -> None:
    out = io.StringIO()
    annotate(failure_run(), environ=GH, stream=out)
    lines = out.getvalue().splitlines()
    assert lines == [
        (
            "::error file=pipelines/nightly.yaml,line=12,col=5,title=mftrun%3A step pull-orders "
            "failed::"
            "task pull-orders failed after 3 attempts: sftp: permission denied"
        ),
        (
            "::warning file=pipelines/nightly.yaml,line=20,col=5,title=mftrun%3A step "
            "pull-invoices failed "
            "(allowed to fail)::task failed (allowed)"
        ),
        (
            "::error file=pipelines/nightly.yaml,line=28,col=5,title=mftrun%3A step wait-backup "
            "error::"
            "could not reach https://eu.cloud.example: connection refused"
        ),
    ]


def test_timeout_gets_an_error_and_a_warning_for_the_remote_run(tmp_path: Path) -> None:
    out = io.StringIO()
    annotate(timeout_run(), environ=GH, stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(
        "::error file=pipelines/nightly.yaml,line=20,col=5,"
        "title=mftrun%3A step big-transfer timed out::timed out after 15m"
    )
    assert (
        lines[1].startswith("::warning ") and "remote run 7f3e0c2a-0000-4000-8000-000000000001 may "
    )
    assert len(lines) == 2


def test_absolute_paths_become_relative_to_the_workspace() -> None:
    result = failure_run()
    result.file = "/home/runner/work/repo/pipelines/nightly.yaml"
    out = io.StringIO()
    annotate(result, environ={**GH, "GITHUB_WORKSPACE": "/home/runner/work/repo"}, stream=out)
    assert out.getvalue().startswith("::error file=pipelines/nightly.yaml,line=12")


def test_a_multiline_message_cannot_start_a_command_of_its_own() -> None:
    result = failure_run()
    result.steps[0].error = "oops\n::add-mask::x\n::error::fake"
    out = io.StringIO()
    annotate(result, environ=GH, stream=out)
    assert all(
        line.startswith(("::error file=", "::warning file="))
        for line in out.getvalue().splitlines()
    )


def test_markdown_summary_is_appended_and_escaped(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = failure_run()
    result.steps[0].error = f"bad | pipe {XSS}\nsecond line"
    annotate(result, environ={**GH, "GITHUB_STEP_SUMMARY": str(summary)}, stream=io.StringIO())
    annotate(
        success_run(), environ={**GH, "GITHUB_STEP_SUMMARY": str(summary)}, stream=io.StringIO()
    )
    text = summary.read_text()
    assert text.startswith("earlier step\n### ❌ mftrun · nightly-transfers: Failed")
    assert "### ✅ mftrun · nightly-transfers: Succeeded" in text
    assert (
        "| pull-orders | ✗ failed | mft-prod | start_task | 3 | 2m30s | bad \\| pipe "
        "\\<script\\>alert\\(1\\)\\</script\\> |" in text
    )
    assert "<script>" not in text
    assert "2 failed, 1 error, 1 skipped in 2m30s · exit code 1" in text


def test_secrets_are_scrubbed_from_annotations_and_summary(tmp_path: Path) -> None:
    redactor = Redactor()
    redactor.add("canary-token-0123456789")
    result = failure_run()
    result.steps[0].error = "401 for token canary-token-0123456789"
    out = io.StringIO()
    summary = tmp_path / "s.md"
    annotate(
        result, environ={**GH, "GITHUB_STEP_SUMMARY": str(summary)}, stream=out, redactor=redactor
    )
    assert "canary" not in out.getvalue() and "canary" not in summary.read_text()
    assert "401 for token ***" in out.getvalue()


def test_unwritable_summary_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    out = io.StringIO()
    annotate(success_run(), environ={**GH, "GITHUB_STEP_SUMMARY": str(tmp_path)}, stream=out)
    assert out.getvalue().startswith("::warning::mftrun could not write the job summary")
