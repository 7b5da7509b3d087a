"""What a run produced, as data: the executor fills it, reporters read it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Mapping, Sequence
from typing import Any


class Status(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"  # the platform said the task failed
    ERROR = "error"  # could not talk to the platform, or a template/config error at run time
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self not in (Status.PENDING, Status.RUNNING)


@dataclass(slots=True)
class Attempt:
    number: int  # 1-based
    started_at: datetime
    ended_at: datetime | None = None
    run_id: str | None = None  # remote task run id, when the platform gave one
    remote_status: str | None = None
    status: Status = Status.RUNNING
    message: str | None = None
    ref: dict[str, str] | None = None  # what the action needs to re-attach to the remote run
    # What this attempt sent, rendered: "POST /v1/x" or "task <id>" (None: a wait) and, for
    # start_task, the task parameters (secret-looking names masked).
    target: str | None = None
    parameters: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "run_id": self.run_id,
            "ref": dict(self.ref) if self.ref else None,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "remote_status": self.remote_status,
            "status": self.status.value,
            "message": self.message,
            "target": self.target,
            "parameters": self.parameters,
        }


@dataclass(slots=True)
class StepResult:
    id: str
    environment: str
    action: str
    line: int = 0
    column: int = 0
    # GitHub Actions' rule: outcome is what happened, conclusion is after continue_on_error.
    outcome: Status = Status.PENDING
    conclusion: Status = Status.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    http_calls: int = 0
    remote_may_continue: list[str] = field(default_factory=list)  # run ids left going remotely
    skipped_reason: str | None = None
    error_exit_code: int | None = None  # for ERROR: 2 (template/config) or 3 (platform)
    definition_hash: str = ""  # model.step_hash: resume runs a step again when it changed
    carried_from: str | None = None  # resumed: the earlier run whose success this is
    reattached: bool = False  # resumed: polled an earlier run's remote run instead of starting
    # A start was sent and no answer proved whether it started: resume must not resend it.
    start_unconfirmed: bool = False
    target: str | None = None  # the latest attempt's target ("POST /v1/x", "task <id>")
    warnings: list[str] = field(default_factory=list)  # accepted, but the platform qualified it
    # The steps this one waited for (the plan's edges): reports find the chain that set the
    # run's duration from them (critical_path.gating_chain).
    needs: list[str] = field(default_factory=list)
    # the task's history (runs, p50_s, p95_s, max_s) when the store had one (issue 13)
    history: dict[str, Any] | None = None
    # A dynamic for_each group: how many instances it expanded into (0 before, or for none).
    instances: int = 0

    @property
    def fanned_out(self) -> bool:
        """A dynamic group that became instances: from then on they are its steps (counted,
        reported, annotated), as a group written in the file is only its instances."""
        return self.instances > 0

    @property
    def status(self) -> Status:
        """The status people see: the outcome, which is what the platform did."""
        return self.outcome

    @property
    def duration(self) -> float | None:
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "environment": self.environment,
            "action": self.action,
            "line": self.line,
            "column": self.column,
            "status": self.outcome.value,
            "outcome": self.outcome.value,
            "conclusion": self.conclusion.value,
            "attempts": [a.to_dict() for a in self.attempts],
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration": self.duration,
            "error": self.error,
            "outputs": self.outputs,
            "http_calls": self.http_calls,
            "remote_may_continue": list(self.remote_may_continue),
            "skipped_reason": self.skipped_reason,
            "hash": self.definition_hash,
            "carried_from": self.carried_from,
            "reattached": self.reattached,
            "start_unconfirmed": self.start_unconfirmed,
            "target": self.target,
            "warnings": list(self.warnings),
            "needs": list(self.needs),
            **({"history": dict(self.history)} if self.history else {}),
        }


@dataclass(slots=True)
class RunResult:
    pipeline: str
    file: str
    sha256: str
    started_at: datetime
    ended_at: datetime | None = None
    steps: list[StepResult] = field(default_factory=list)
    exit_code: int = 0
    interrupted: bool = False
    emulated: bool = False
    message: str | None = None  # run-level note (whole-run timeout, interrupt, crash)
    run_id: str | None = None  # the state store's id for this run (None with --no-state)
    resumed_from: str | None = None
    lock: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # --var, secret-looking masked

    def totals(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for step in self.counted_steps():
            counts[step.outcome.value] += 1
        return counts

    def counted_steps(self) -> list[StepResult]:
        return counted(self.steps)

    def _reported_steps(self) -> list[dict[str, Any]]:
        """Each counted step as report.json holds it. An instance of a dynamic group waited
        for what its group waited for, and a step that needs the group waited for each of
        its instances: the reports' critical path follows those edges."""
        instances: dict[str, list[str]] = {}
        group_needs: dict[str, list[str]] = {}
        for step in self.steps:
            if step.fanned_out:
                group_needs[step.id] = step.needs
                instances[step.id] = []
        for step in self.steps:
            group, _, rest = step.id.partition("[")
            if rest and group in instances:
                instances[group].append(step.id)
        out = []
        for step in self.counted_steps():
            row = step.to_dict()
            group = step.id.partition("[")[0]
            if group in group_needs and step.id in instances.get(group, ()):
                row["needs"] = list(group_needs[group])
            if any(n in instances for n in row["needs"]):
                row["needs"] = [m for n in row["needs"] for m in instances.get(n, [n])]
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        from mftrun import __version__

        return {
            "report_version": 1,
            "mftrun_version": __version__,
            "pipeline": self.pipeline,
            "file": self.file,
            "sha256": self.sha256,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration": (self.ended_at - self.started_at).total_seconds()
            if self.ended_at
            else None,
            "exit_code": self.exit_code,
            "interrupted": self.interrupted,
            "emulated": self.emulated,
            "message": self.message,
            "run_id": self.run_id,
            "resumed_from": self.resumed_from,
            "lock": self.lock,
            "variables": dict(self.variables),
            "totals": self.totals(),
            "steps": self._reported_steps(),
        }


def counted(steps: Sequence[StepResult]) -> list[StepResult]:
    """The steps people count and reports list: a dynamic group that fanned out is its
    instances (one failed instance is one failure, not two)."""
    return [s for s in steps if not s.fanned_out]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _status(value: Any, default: Status = Status.PENDING) -> Status:
    try:
        return Status(value)
    except ValueError:
        return default


def attempt_from_dict(data: Mapping[str, Any]) -> Attempt:
    ref = data.get("ref")
    return Attempt(
        number=int(data.get("number") or 1),
        started_at=_dt(data.get("started_at")) or datetime.fromtimestamp(0).astimezone(),
        ended_at=_dt(data.get("ended_at")),
        run_id=data.get("run_id"),
        remote_status=data.get("remote_status"),
        status=_status(data.get("status"), Status.RUNNING),
        message=data.get("message"),
        ref={str(k): str(v) for k, v in ref.items()} if isinstance(ref, Mapping) else None,
        target=data.get("target") if isinstance(data.get("target"), str) else None,
        parameters=dict(params) if isinstance(params := data.get("parameters"), Mapping) else None,
    )


def step_result_from_dict(data: Mapping[str, Any]) -> StepResult:
    """A step as report.json and the state store hold it (resume reads both)."""
    outputs = data.get("outputs")
    return StepResult(
        id=str(data["id"]),
        environment=str(data.get("environment", "")),
        action=str(data.get("action", "")),
        line=int(data.get("line") or 0),
        column=int(data.get("column") or 0),
        outcome=_status(data.get("outcome", data.get("status"))),
        conclusion=_status(data.get("conclusion", data.get("status"))),
        attempts=[
            attempt_from_dict(a) for a in data.get("attempts") or () if isinstance(a, Mapping)
        ],
        started_at=_dt(data.get("started_at")),
        ended_at=_dt(data.get("ended_at")),
        error=data.get("error"),
        outputs=dict(outputs) if isinstance(outputs, Mapping) else {},
        remote_may_continue=[str(r) for r in data.get("remote_may_continue") or ()],
        skipped_reason=data.get("skipped_reason"),
        definition_hash=str(data.get("hash") or ""),
        carried_from=data.get("carried_from"),
        reattached=bool(data.get("reattached")),
        start_unconfirmed=bool(data.get("start_unconfirmed")),
        target=data.get("target") if isinstance(data.get("target"), str) else None,
        warnings=[str(w) for w in data.get("warnings") or ()],
    )


def exit_code_of(
    steps: list[StepResult], *, signal_received: int | None, run_timed_out: bool
) -> int:
    """The run's exit code from its steps (README's table): the most serious cause wins.

    A signal decides alone (130 for SIGINT, 143 for SIGTERM); otherwise a mistake in the
    file (2) before a platform problem (3) before a failed task (1). A whole-run timeout
    is a failure (1). Lives with the results, so the executor only records what happened."""
    import signal

    from mftrun.errors import (
        EXIT_FAILED,
        EXIT_INTERRUPTED,
        EXIT_INVALID,
        EXIT_OK,
        EXIT_PLATFORM,
        EXIT_TERMINATED,
    )

    if signal_received is not None:
        return EXIT_TERMINATED if signal_received == signal.SIGTERM else EXIT_INTERRUPTED
    codes = {EXIT_FAILED} if run_timed_out else set()
    for step in steps:
        if step.conclusion == Status.ERROR:
            codes.add(step.error_exit_code or EXIT_PLATFORM)
        elif step.conclusion in (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED):
            codes.add(EXIT_FAILED)
    for code in (EXIT_INVALID, EXIT_PLATFORM, EXIT_FAILED):
        if code in codes:
            return code
    return EXIT_OK
