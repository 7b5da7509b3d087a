"""Run memory for one `apply`: open the store, take the lock, decide the resume, record the run.

Order matters and is the point of this module: the lock is taken before anything else that
could start work or write reports (a second apply exits 4 having touched nothing), the
resume decision is made before the first start, and the run row exists before the first step.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mftrun.credentials import Redactor
from mftrun.errors import InputError, ResumeRefused, StateError
from mftrun.model import Pipeline, step_hash
from mftrun.state.prior import Prior
from mftrun.state.recorder import NullRecorder, RunRecorder
from mftrun.state.resume import plan_resume
from mftrun.state.store import RunInfo, SqlStore


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


def take_lock(
    stack: ExitStack,
    pipeline_file: str,
    key: str,
    *,
    meta: dict[str, Any],
    state_url: str | None,
    no_state: bool,
    wait_lock: float | None,
    environ: Mapping[str, str],
) -> Memory:
    """Open the store and hold the lock `key` for the rest of `stack` (nothing with --no-state).

    `meta` (from `state.lock.run_meta`) names this run in the lock and in the run's row.
    """
    from mftrun.state.url import choose, open_store

    memory = Memory(meta=meta)
    if no_state:
        return memory
    store = open_store(choose(state_url, environ), pipeline_file)
    stack.callback(store.close)
    memory.store, memory.run_id, memory.lock_key = store, meta["run_id"], key
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
        from mftrun.expand import recorded_instances

        hashes = {step.id: step_hash(step) for step in pipeline.steps}
        # instances of dynamic for_each groups exist only once their list is known: the
        # recorded ones are decided here like steps, and matched on their hash when expanded
        stand_ins, recorded = recorded_instances(pipeline.steps, earlier)
        hashes.update(recorded)
        steps = (*pipeline.steps, *stand_ins)
        decided = plan_resume(steps, hashes, earlier, from_run=source, restart=restart)
        memory.prior, memory.notes, memory.resumed_from = decided.prior, decided.notes, source
        later = {s.id for s in stand_ins}  # counted when their group expands, not now
        now = [d for sid, d in decided.decisions.items() if sid not in later]
        counts = {k: now.count(k) for k in ("carry", "attach")}
        pending = sum(1 for sid, d in decided.decisions.items() if sid in later and d != "run")
        memory.notes = (
            f"resuming run {source}: {counts['carry']} step(s) carried over, "
            f"{counts['attach']} re-attached, "
            f"{len(now) - counts['carry'] - counts['attach']} to run"
            + (
                f"; {pending} recorded instance(s) of dynamic groups are matched when "
                "their group expands"
                if pending
                else ""
            ),
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
