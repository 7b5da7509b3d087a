"""Deciding what a resumed run does with each step: pure, so every rule is a unit test.

The rules, for a platform where a start is not idempotent and nothing can be cancelled:
- succeeded with the same definition: carried over (outputs restored), not run again;
- a remote run that may still be going (crash, interrupt, timeout, lost polls): re-attached,
  never started again;
- a start that was sent without an answer proving whether it started: resume stops and names
  the step; `--restart STEP` is the explicit way to start it again;
- everything else (failed, timed out before a run existed, skipped, never started, new, or a
  definition that changed): runs, with its conditions evaluated afresh. A failure branch that
  ran because of the old failure is not carried over, so it runs only if its condition holds
  again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mftrun.errors import ResumeRefused
from mftrun.model import Step
from mftrun.results import Status, step_result_from_dict
from mftrun.state.prior import Attach, Carried, Prior

Decision = Literal["carry", "attach", "run"]
_SETTLED_REMOTE = frozenset({Status.SUCCESS.value, Status.FAILED.value})


@dataclass(frozen=True, slots=True)
class ResumePlan:
    prior: Mapping[str, Prior]
    decisions: Mapping[str, Decision]
    notes: tuple[str, ...]  # what the console says before the run: changed steps, ignored ones


def plan_resume(
    steps: Sequence[Step],
    hashes: Mapping[str, str],
    earlier: Sequence[Mapping[str, Any]],
    *,
    from_run: str,
    restart: Collection[str] = (),
) -> ResumePlan:
    by_id = {str(d.get("id")): d for d in earlier if isinstance(d, Mapping) and d.get("id")}
    current = {step.id for step in steps}
    unknown = sorted(set(restart) - current)
    if unknown:
        raise ResumeRefused(
            f"--restart {', '.join(repr(u) for u in unknown)}: no such step in the pipeline",
            hint="name steps by their id",
        )
    decisions: dict[str, Decision] = {}
    prior: dict[str, Prior] = {}
    notes: list[str] = []
    ambiguous: list[str] = []
    for step in steps:
        record = by_id.get(step.id)
        if record is None:
            decisions[step.id] = "run"
            continue
        attempts = [a for a in record.get("attempts") or () if isinstance(a, Mapping)]
        last = attempts[-1] if attempts else {}
        ref = last.get("ref") if isinstance(last.get("ref"), Mapping) else None
        going = bool(ref and ref.get("run_id")) and last.get("status") not in _SETTLED_REMOTE
        going = going and record.get("outcome", record.get("status")) != Status.SUCCESS.value
        if step.id in restart:
            decisions[step.id] = "run"
            if going or record.get("start_unconfirmed"):
                notes.append(
                    f"step {step.id}: started again as --restart asks, although the earlier "
                    f"remote run {ref.get('run_id') if ref else '(unknown)'} may still be going"
                )
            continue
        if record.get("hash") != hashes[step.id]:
            decisions[step.id] = "run"
            notes.append(f"step {step.id}: its definition changed since run {from_run}: runs again")
            if going:
                notes.append(
                    f"step {step.id}: the earlier remote run {ref.get('run_id') if ref else ''} "
                    "(old definition) may still be going"
                )
            continue
        outcome = record.get("outcome", record.get("status"))
        if outcome == Status.SUCCESS.value:
            decisions[step.id] = "carry"
            prior[step.id] = Carried(step_result_from_dict(record), from_run)
        elif going and ref is not None:
            decisions[step.id] = "attach"
            number = int(last.get("number") or 1)
            prior[step.id] = Attach(
                {str(k): str(v) for k, v in ref.items()}, number, from_run, hashes[step.id]
            )
        elif record.get("start_unconfirmed"):
            ambiguous.append(step.id)
        else:
            decisions[step.id] = "run"
    if ambiguous:
        raise ResumeRefused(
            "cannot resume run "
            f"{from_run}: the start of step(s) {', '.join(ambiguous)} was sent but no answer "
            "proved whether the task started, and mftrun never starts a task twice on a guess",
            hint="look for the run on the platform; if it did not start, resume with "
            + " ".join(f"--restart {s}" for s in ambiguous),
        )
    _settle_graph(steps, decisions, prior, notes, restart)
    ignored = sorted(set(by_id) - current)
    if ignored:
        notes.append(
            f"steps of run {from_run} no longer in the file, ignored: {', '.join(ignored)}"
        )
    return ResumePlan(prior=prior, decisions=decisions, notes=tuple(notes))


def _settle_graph(
    steps: Sequence[Step],
    decisions: dict[str, Decision],
    prior: dict[str, Prior],
    notes: list[str],
    restart: Collection[str],
) -> None:
    """A carried step whose upstream runs again: a condition step is re-evaluated; a plain
    success step would carry a result built on inputs that change, so resume refuses."""
    unsafe: list[str] = []
    changed = True
    while changed:
        changed = False
        for step in steps:  # file order is a topological order only by accident: iterate
            if decisions[step.id] != "carry":
                continue
            rerun = [n for n in step.needs if decisions.get(n) != "carry"]
            if not rerun:
                continue
            if step.run_if.kind != "success":
                decisions[step.id] = "run"
                prior.pop(step.id, None)
                changed = True
                notes.append(
                    f"step {step.id}: ran last time because of its condition "
                    f"({step.run_if.kind}); evaluated again as {', '.join(rerun)} run again"
                )
            else:
                unsafe.append(f"{step.id} (needs {', '.join(rerun)})")
    if unsafe:
        raise ResumeRefused(
            "resuming is unsafe: step(s) "
            + "; ".join(sorted(set(unsafe)))
            + " succeeded before, but steps they need will run again (their definition "
            "changed or they were restarted), so their result may no longer hold",
            hint="start a fresh run without --resume, or also --restart the dependent steps "
            "if running them again is safe",
        )
