"""RunResults for the report tests, built directly (no executor needed), and their schema checks.

Other tests_reports_* modules import the builders from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from mftrun.reports import build_report, report_schema
from mftrun.results import Attempt, RunResult, Status, StepResult

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)
XSS = "<script>alert(1)</script>"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(
    step_id: str,
    status: Status,
    start: float | None,
    end: float | None,
    *,
    attempts: list[Attempt] | None = None,
    conclusion: Status | None = None,
    action: str = "start_task",
    environment: str = "mft-prod",
    line: int = 10,
    **extra: object,
) -> StepResult:
    return StepResult(
        id=step_id,
        environment=environment,
        action=action,
        line=line,
        column=5,
        outcome=status,
        conclusion=conclusion or status,
        attempts=attempts or [],
        started_at=at(start) if start is not None else None,
        ended_at=at(end) if end is not None else None,
        **extra,
    )  # type: ignore[arg-type]


def attempt(
    number: int,
    start: float,
    end: float | None,
    status: Status,
    remote: str | None,
    run_id: str | None = None,
    message: str | None = None,
) -> Attempt:
    return Attempt(
        number=number,
        started_at=at(start),
        ended_at=at(end) if end is not None else None,
        run_id=run_id or f"run-{number:04d}-aaaa",
        remote_status=remote,
        status=status,
        message=message,
    )


def run(steps: list[StepResult], *, end: float, exit_code: int, **extra: object) -> RunResult:
    return RunResult(
        pipeline="nightly-transfers",
        file="pipelines/nightly.yaml",
        sha256="ab" * 32,
        started_at=T0,
        ended_at=at(end),
        steps=steps,
        exit_code=exit_code,
        **extra,
    )  # type: ignore[arg-type]


def success_run() -> RunResult:
    return run(
        [
            step(
                "pull-orders",
                Status.SUCCESS,
                0,
                42.5,
                line=12,
                attempts=[
                    attempt(
                        1,
                        0.2,
                        42.5,
                        Status.SUCCESS,
                        "success",
                        "02115928-16fe-4493-949b-d77d302a88ee",
                    )
                ],
                outputs={"run_id": "02115928-16fe-4493-949b-d77d302a88ee", "files": 12},
                http_calls=9,
            ),
            step(
                "pull-invoices",
                Status.SUCCESS,
                0,
                31.0,
                line=20,
                attempts=[attempt(1, 0.3, 31.0, Status.SUCCESS, "success")],
                http_calls=7,
            ),
            step(
                "wait-backup",
                Status.SUCCESS,
                42.6,
                95.0,
                action="wait_tasks",
                environment="acronis-eu",
                line=28,
                attempts=[attempt(1, 42.6, 95.0, Status.SUCCESS, "completed/ok")],
                http_calls=5,
            ),
            step(
                "notify",
                Status.SUCCESS,
                95.1,
                95.4,
                action="http",
                line=40,
                http_calls=1,
                outputs={"status": 204},
            ),
        ],
        end=95.5,
        exit_code=0,
    )


def failure_run() -> RunResult:
    return run(
        [
            step(
                "pull-orders",
                Status.FAILED,
                0,
                150,
                line=12,
                attempts=[
                    attempt(1, 0.1, 40, Status.FAILED, "failed", message="task reported failure"),
                    attempt(2, 50, 90, Status.FAILED, "failed", message="task reported failure"),
                    attempt(
                        3, 110, 150, Status.FAILED, "failed", message="sftp: permission denied"
                    ),
                ],
                error="task pull-orders failed after 3 attempts: sftp: permission denied",
                http_calls=31,
            ),
            step(
                "pull-invoices",
                Status.FAILED,
                0,
                20,
                conclusion=Status.SUCCESS,
                line=20,
                attempts=[attempt(1, 0.2, 20, Status.FAILED, "failed")],
                error="task failed (allowed)",
                http_calls=4,
            ),
            step(
                "wait-backup",
                Status.ERROR,
                20,
                21,
                action="wait_tasks",
                environment="acronis-eu",
                line=28,
                error="could not reach https://eu.cloud.example: connection refused",
                http_calls=3,
            ),
            step(
                "notify",
                Status.SKIPPED,
                None,
                None,
                action="http",
                line=40,
                skipped_reason="needs pull-orders, which failed",
            ),
        ],
        end=150.5,
        exit_code=1,
    )


def timeout_run() -> RunResult:
    return run(
        [
            step(
                "pull-orders",
                Status.SUCCESS,
                0,
                12,
                line=12,
                attempts=[attempt(1, 0, 12, Status.SUCCESS, "success")],
                http_calls=4,
            ),
            step(
                "big-transfer",
                Status.TIMED_OUT,
                12,
                912,
                line=20,
                attempts=[
                    attempt(
                        1,
                        12,
                        912,
                        Status.TIMED_OUT,
                        "running",
                        "7f3e0c2a-0000-4000-8000-000000000001",
                    )
                ],
                error="timed out after 15m; the task was still running",
                remote_may_continue=["7f3e0c2a-0000-4000-8000-000000000001"],
                http_calls=40,
            ),
            step(
                "notify",
                Status.SKIPPED,
                None,
                None,
                action="http",
                line=40,
                skipped_reason="needs big-transfer, which timed out",
            ),
        ],
        end=912.2,
        exit_code=1,
        message="step big-transfer timed out",
    )


def interrupt_run() -> RunResult:
    return run(
        [
            step(
                "pull-orders",
                Status.CANCELLED,
                0,
                33,
                line=12,
                attempts=[attempt(1, 0, None, Status.CANCELLED, "running", "run-int-1")],
                error="interrupted (Ctrl-C) while the task was running",
                remote_may_continue=["run-int-1"],
                http_calls=6,
            ),
            step(
                "pull-invoices",
                Status.SUCCESS,
                0,
                20,
                line=20,
                attempts=[attempt(1, 0, 20, Status.SUCCESS, "success")],
                http_calls=4,
            ),
            step("notify", Status.PENDING, None, None, action="http", line=40),
        ],
        end=33,
        exit_code=130,
        interrupted=True,
        message="interrupted by Ctrl-C",
    )


def xss_run() -> RunResult:
    evil = step(
        f"evil{XSS}",
        Status.FAILED,
        0,
        5,
        line=12,
        attempts=[attempt(1, 0, 5, Status.FAILED, f"failed{XSS}", message=XSS)],
        error=f"task {XSS} failed: {XSS}",
        outputs={XSS: XSS},
        skipped_reason=XSS,
    )
    return RunResult(
        pipeline=f"pipe{XSS}",
        file=f"{XSS}.yaml",
        sha256="",
        started_at=T0,
        ended_at=at(5),
        steps=[evil],
        exit_code=1,
        message=XSS,
    )


ALL = {
    "success": success_run,
    "failure": failure_run,
    "timeout": timeout_run,
    "interrupt": interrupt_run,
    "xss": xss_run,
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_sample_reports_validate_against_the_schema(name: str) -> None:
    jsonschema.Draft202012Validator(report_schema()).validate(build_report(ALL[name]()))


def test_schema_is_a_valid_draft_2020_12_schema_with_id_and_descriptions() -> None:
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("report-1.schema.json")
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{name} has no description"
