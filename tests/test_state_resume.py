"""Resume planning: the rules one by one, then random crash points through the real recorder
and a real SQLite store: no resume ever starts again a task whose start may have been sent."""

from __future__ import annotations

from pathlib import Path

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mftrun.credentials import Redactor
from mftrun.errors import ResumeRefused
from mftrun.model import Action, Condition, Step, step_hash
from mftrun.results import Attempt, Status, StepResult
from mftrun.state.prior import Attach, Carried
from mftrun.state.resume import plan_resume
from mftrun.state.sqlite import SqliteStore
from mftrun.state.store import RunInfo
from mftrun.state.store_recorder import StoreRecorder


def step(i: int, needs: tuple[str, ...] = (), run_if: str = "success", task: str = "") -> Step:
    return Step(
        id=f"s{i}",
        action=Action("start_task", {"task_id": task or f"t{i}"}),
        environment="mft",
        index=i,
        needs=needs,
        run_if=Condition(run_if),  # type: ignore[arg-type]
    )


def record(s: Step, status: str, **extra: Any) -> dict[str, Any]:
    return {"id": s.id, "status": status, "outcome": status, "hash": step_hash(s), **extra}


def attempt(status: str, run_id: str | None = None) -> dict[str, Any]:
    ref = {"run_id": run_id, "task_id": "t"} if run_id else None
    return {"number": 1, "status": status, "run_id": run_id, "ref": ref}


def plan(steps: list[Step], records: list[dict[str, Any]], restart: tuple[str, ...] = ()):
    return plan_resume(
        steps, {s.id: step_hash(s) for s in steps}, records, from_run="r1", restart=restart
    )


def test_each_rule() -> None:
    s0, s1, s2, s3, s4 = step(0), step(1, ("s0",)), step(2, ("s1",)), step(3), step(4)
    decided = plan(
        [s0, s1, s2, s3, s4],
        [
            record(s0, "success", outputs={"x": 1}, attempts=[attempt("success", "R0")]),
            record(s1, "timed_out", attempts=[attempt("cancelled", "R1")]),  # may still go
            record(s2, "skipped"),
            record(s3, "failed", attempts=[attempt("failed", "R3")]),  # the platform said so
        ],  # s4 is new
    )
    assert decided.decisions == {
        "s0": "carry",
        "s1": "attach",
        "s2": "run",
        "s3": "run",
        "s4": "run",
    }
    carried = decided.prior["s0"]
    assert isinstance(carried, Carried) and carried.result.outputs == {"x": 1}
    assert decided.prior["s1"] == Attach({"run_id": "R1", "task_id": "t"}, 1, "r1")


def test_a_changed_definition_runs_again_and_is_said() -> None:
    old, new = step(0, task="old"), step(0, task="new")
    decided = plan([new], [record(old, "success")])
    assert decided.decisions == {"s0": "run"}
    assert any("definition changed" in n for n in decided.notes)


def test_an_unanswered_start_refuses_resume_until_restart() -> None:
    s0 = step(0)
    records = [record(s0, "error", start_unconfirmed=True, attempts=[attempt("error")])]
    with pytest.raises(ResumeRefused, match="s0 was sent"):
        plan([s0], records)
    assert plan([s0], records, restart=("s0",)).decisions == {"s0": "run"}
    with pytest.raises(ResumeRefused, match="no such step"):
        plan([s0], records, restart=("nope",))


def test_a_failure_branch_is_evaluated_again_and_a_stale_success_is_refused() -> None:
    s0 = step(0)
    alert = step(1, ("s0",), run_if="failure")
    decided = plan([s0, alert], [record(s0, "failed"), record(alert, "success")])
    assert decided.decisions == {"s0": "run", "s1": "run"}
    changed = step(0, task="changed")
    after = step(1, ("s0",))
    with pytest.raises(ResumeRefused, match="s1 \\(needs s0\\)"):
        plan([changed, after], [record(step(0), "success"), record(after, "success")])
    allowed = plan(
        [changed, after],
        [record(step(0), "success"), record(after, "success")],
        restart=("s1",),
    )
    assert allowed.decisions == {"s0": "run", "s1": "run"}


def test_steps_gone_from_the_file_are_ignored_and_said() -> None:
    decided = plan([step(0)], [record(step(0), "success"), record(step(9), "failed")])
    assert decided.decisions == {"s0": "carry"} and any("s9" in n for n in decided.notes)


# -- random crash points through the real recorder and store ------------------------------------

# What one step of a chain does on the platform, as the executor reports it.
FATES = st.sampled_from(["success", "failed", "refused", "lost_answer"])


@settings(max_examples=60, deadline=None)
@given(fates=st.lists(FATES, min_size=1, max_size=6), crash=st.integers(0, 40))
def test_no_crash_point_leads_to_a_second_start(
    tmp_path_factory: pytest.TempPathFactory, fates: list[str], crash: int
) -> None:
    folder = tmp_path_factory.mktemp("crash")
    steps = [step(i, (f"s{i - 1}",) if i else ()) for i in range(len(fates))]
    hashes = {s.id: step_hash(s) for s in steps}
    store = SqliteStore(folder / "state.db")
    store.begin_run(RunInfo("r1", "p", "p", "p.yaml", "x", "2026-12-02T10:00:00"))
    recorder = StoreRecorder(store, "r1", {s.id: s.index for s in steps}, Redactor())
    sent: set[str] = set()  # steps whose start request may have reached the platform
    events = 0

    def tick() -> bool:
        nonlocal events
        events += 1
        return events > crash  # True: the process dies here, before what follows

    def finished(s: Step, status: Status, run_id: str | None, unconfirmed: bool) -> None:
        result = StepResult(id=s.id, environment="mft", action="start_task")
        result.outcome = result.conclusion = status
        result.definition_hash = hashes[s.id]
        result.start_unconfirmed = unconfirmed
        a = Attempt(1, started_at=__import__("datetime").datetime.now(), status=status)
        a.run_id, a.ref = run_id, ({"run_id": run_id} if run_id else None)
        result.attempts.append(a)
        recorder.step_finished(result)

    for s, fate in zip(steps, fates, strict=True):
        if tick():
            break
        recorder.step_started(s.id, 1, hashes[s.id])
        if tick():
            break
        recorder.start_intent(s.id, 1)
        if tick():
            break
        if fate != "refused":
            sent.add(s.id)  # the request left; the platform started the task
        if tick():
            break
        if fate == "refused":
            recorder.start_not_sent(s.id, 1)
            if tick():
                break
            finished(s, Status.ERROR, None, False)
            break  # the chain stops at an error
        if fate == "lost_answer":
            if tick():
                break
            finished(s, Status.ERROR, None, True)
            break
        recorder.remote_run(s.id, 1, {"run_id": f"R-{s.id}"})
        if tick():
            break
        finished(s, Status.SUCCESS if fate == "success" else Status.FAILED, f"R-{s.id}", False)
        if fate == "failed":
            break
    records = store.steps("r1")
    store.close()
    try:
        decided = plan_resume(steps, hashes, records, from_run="r1")
    except ResumeRefused:
        return  # refusing is always safe
    for s in steps:
        if s.id in sent and decided.decisions[s.id] == "run":
            # only a start the platform answered "failed" may be run again
            assert fates[s.index] == "failed", (s.id, fates, crash, records)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("version: 1\nname: nightly\n", "nightly"),
        ("name: 'nightly'  # the partner run\nlock: partner-acme\n", "partner-acme"),
        ('name: "night ly"\n', "night ly"),
        ("version: 1\nsteps: []\n", "p"),  # no name: the file's stem, as the pipeline says
        ("name: [a, b]\n", None),  # not plain: decided after validation instead
        ('name: "a\\"b"\n', None),
        ("steps:\n  - name: inner\n", "p"),  # only top-level keys count
    ],
)
def test_the_lock_key_is_read_before_validation(tmp_path: Path, text: str, key: str | None) -> None:
    from mftrun.state.lock import quick_lock_key

    path = tmp_path / "p.yaml"
    path.write_text(text)
    assert quick_lock_key(str(path)) == key
    assert quick_lock_key(str(tmp_path / "missing.yaml")) is None


def test_the_early_lock_key_agrees_with_the_validated_pipeline() -> None:
    from mftrun.state.lock import quick_lock_key
    from mftrun.validation import load_pipeline

    examples = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        pipeline = load_pipeline(str(path))
        assert quick_lock_key(str(path)) == (pipeline.lock or pipeline.name), path
