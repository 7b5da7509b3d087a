"""Run memory for one `apply`: open the store, take the lock, decide the resume, record the run.

Order matters and is the point of this module: the lock is taken before anything else that
could start work or write reports (a second apply exits 4 having touched nothing), the
resume decision is made before the first start, and the run row exists before the first step.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Collection, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mftrun.credentials import Redactor
from mftrun.errors import InputError, ResumeRefused, StateError, UsageError
from mftrun.model import Pipeline, step_hash
from mftrun.state.prior import Prior
from mftrun.state.recorder import NullRecorder, RunRecorder
from mftrun.state.resume import plan_resume
from mftrun.state.store import RunInfo, SqlStore

# CI systems' own run identity, first match wins: (variable, how it is shown)
CI_VARIABLES = (
    ("GITHUB_RUN_ID", "github"),
    ("CI_JOB_ID", "gitlab"),
    ("BUILD_URL", "jenkins"),
    ("BUILDKITE_BUILD_ID", "buildkite"),
    ("CIRCLE_WORKFLOW_ID", "circleci"),
)


@dataclass
class Memory:
    """What `apply` holds for the run: NullRecorder and no store with --no-state."""

    run_id: str | None = None
    lock_key: str | None = None
    store: SqlStore | None = None
    recorder: RunRecorder = field(default_factory=NullRecorder)
    prior: Mapping[str, Prior] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    resumed_from: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def finish(self, *, exit_code: int, verdict: str, warn: Any) -> None:
        if self.store is None or self.run_id is None:
            return
        try:
            self.store.finish_run(
                self.run_id,
                ended_at=datetime.now(timezone.utc).isoformat(),
                verdict=verdict,
                exit_code=exit_code,
            )
        except StateError as exc:
            warn(f"{exc.message}; report.json keeps what resume needs")


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and readable: 20261202T131500Z-3f9a1c."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def ci_identity(environ: Mapping[str, str]) -> str | None:
    for name, system in CI_VARIABLES:
        value = environ.get(name)
        if value:
            if name == "GITHUB_RUN_ID":
                repo = environ.get("GITHUB_REPOSITORY", "")
                attempt = environ.get("GITHUB_RUN_ATTEMPT", "")
                value = f"{repo}#{value}" + (f".{attempt}" if attempt else "")
            elif name == "CI_JOB_ID" and environ.get("CI_PROJECT_PATH"):
                value = f"{environ['CI_PROJECT_PATH']}#{value}"
            return f"{system} {value}"
    return None


def run_meta(run_id: str, environ: Mapping[str, str]) -> dict[str, Any]:
    from mftrun import __version__

    return {
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "ci": ci_identity(environ),
        "mftrun_version": __version__,
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


_TOP_KEY = re.compile(r"^(name|lock):[ \t]*(?P<value>[^#\n]*?)[ \t]*(#.*)?$", re.MULTILINE)


def quick_lock_key(path: str) -> str | None:
    """The lock key from the file's top-level `lock:` or `name:` lines, without parsing it.

    Why: twenty racing applies on two cores should learn "locked" before each validates its
    file (jsonschema, templates). None when the lines are not plain: the lock is then taken
    after validation, from the typed pipeline, which `apply` checks agrees either way.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, ValueError):
        return None
    found: dict[str, str] = {}
    for match in _TOP_KEY.finditer(text):
        value = match.group("value")
        if value[:1] in ("'", '"'):
            if len(value) < 2 or value[-1] != value[0] or "\\" in value:
                return None
            value = value[1:-1]
        if not value or value[:1] in "[{&*!|>":
            return None
        found.setdefault(match.group(1), value)
    if "lock" in found:
        return found["lock"]
    if "name" in found:
        return found["name"]
    stem = path.replace("\\", "/").rsplit("/", 1)[-1]
    return stem.rsplit(".", 1)[0] or stem


def check_options(
    *, no_state: bool, resume: str | None, resume_from: str | None, restart: Collection[str]
) -> None:
    if resume and resume_from:
        raise UsageError("--resume and --resume-from: choose one source")
    if restart and not (resume or resume_from):
        raise UsageError("--restart only makes sense with --resume or --resume-from")
    if no_state and resume:
        raise UsageError(
            "--resume reads the state store, which --no-state turns off",
            hint="drop --no-state, or resume from an earlier report with --resume-from",
        )


def take_lock(
    stack: ExitStack,
    pipeline_file: str,
    key: str,
    *,
    state_url: str | None,
    no_state: bool,
    wait_lock: float | None,
    environ: Mapping[str, str],
) -> Memory:
    """Open the store and hold the lock `key` for the rest of `stack` (nothing with --no-state)."""
    from mftrun.state.url import choose, open_store

    run_id = new_run_id()
    memory = Memory(meta=run_meta(run_id, environ))
    if no_state:
        return memory
    store = open_store(choose(state_url, environ), pipeline_file)
    stack.callback(store.close)
    memory.store, memory.run_id, memory.lock_key = store, run_id, key
    stack.enter_context(store.lock(key, memory.meta, wait_lock))
    return memory


def plan_memory(
    stack: ExitStack,
    memory: Memory,
    pipeline: Pipeline,
    *,
    resume: str | None,
    resume_from: str | None,
    restart: Collection[str],
    wait_lock: float | None,
) -> None:
    """With the validated pipeline: the right lock held, and what to resume from."""
    key = pipeline.lock or pipeline.name
    if memory.store is not None and memory.lock_key != key:
        stack.enter_context(memory.store.lock(key, memory.meta, wait_lock))
        memory.lock_key = key
    earlier, source = _earlier_steps(memory.store, pipeline, resume, resume_from)
    if earlier is not None and source is not None:
        hashes = {step.id: step_hash(step) for step in pipeline.steps}
        decided = plan_resume(pipeline.steps, hashes, earlier, from_run=source, restart=restart)
        memory.prior, memory.notes, memory.resumed_from = decided.prior, decided.notes, source
        counts = {k: list(decided.decisions.values()).count(k) for k in ("carry", "attach")}
        memory.notes = (
            f"resuming run {source}: {counts['carry']} step(s) carried over, "
            f"{counts['attach']} re-attached, "
            f"{len(decided.decisions) - counts['carry'] - counts['attach']} to run",
            *memory.notes,
        )
    elif resume:
        memory.notes = (source or "nothing to resume: a fresh run",)


def start_recording(memory: Memory, pipeline: Pipeline, redactor: Redactor, warn: Any) -> None:
    """The run's row, then the recorder: both before the first step."""
    if memory.store is None or memory.run_id is None:
        return
    from mftrun.state.store_recorder import StoreRecorder

    memory.store.begin_run(
        RunInfo(
            id=memory.run_id,
            pipeline=pipeline.name,
            lock_key=memory.lock_key or pipeline.name,
            file=pipeline.path,
            sha256=pipeline.sha256,
            started_at=datetime.now(timezone.utc).isoformat(),
            meta={**memory.meta, "resumed_from": memory.resumed_from},
        )
    )
    positions = {step.id: step.index for step in pipeline.steps}
    memory.recorder = StoreRecorder(
        memory.store, memory.run_id, positions, redactor, on_failure=warn
    )


def _earlier_steps(
    store: SqlStore | None, pipeline: Pipeline, resume: str | None, resume_from: str | None
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The steps to resume from and where they come from; (None, why) when there are none."""
    if resume_from:
        from mftrun.reports import FILENAMES, load_report

        path = Path(resume_from)
        if path.is_dir() and (path / FILENAMES["json"]).is_file():
            path = path / FILENAMES["json"]  # the report folder CI kept as an artifact
        report = load_report(path)
        if report.get("pipeline") != pipeline.name:
            raise ResumeRefused(
                f"--resume-from {resume_from}: that report is of pipeline "
                f"{report.get('pipeline')!r}, not {pipeline.name!r}"
            )
        steps = report.get("steps")
        if not isinstance(steps, list):
            raise InputError(f"--resume-from {resume_from}: the report holds no steps")
        return steps, str(report.get("run_id") or f"report {resume_from}")
    if not resume or store is None:
        return None, None
    if resume == "latest":
        runs = store.runs(pipeline.name, limit=1)
        if not runs:
            return None, f"nothing to resume: no earlier run of {pipeline.name} in {store.name}"
        info = runs[0]
        if info.verdict == "success":
            return None, f"nothing to resume: the last run {info.id} succeeded; a fresh run"
    else:
        found = store.run(resume)
        if found is None:
            raise ResumeRefused(f"--resume {resume}: no such run in {store.name}")
        if found.pipeline != pipeline.name:
            raise ResumeRefused(
                f"--resume {resume}: that run is of pipeline {found.pipeline!r}, "
                f"not {pipeline.name!r}"
            )
        info = found
    return store.steps(info.id), info.id


def verdict_of(exit_code: int) -> str:
    return {0: "success", 1: "failed", 2: "error", 3: "error", 4: "locked"}.get(
        exit_code, "interrupted"
    )
