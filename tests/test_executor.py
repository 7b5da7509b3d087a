"""Executor logic against a scripted provider; the HTTP path is covered by emulator tests."""

from __future__ import annotations

import threading

from mftrun.errors import AmbiguousStartError
from mftrun.events import Recorder
from mftrun.executor import Executor
from mftrun.plan import build_plan
from mftrun.results import Status

from fakes import FakeProvider, Script, pipeline, step


def run(p, provider, **kwargs):
    recorder = Recorder()
    executor = Executor(p, build_plan(p), {"env": provider}, listener=recorder, **kwargs)
    return executor.run(), recorder


def statuses(result):
    return {s.id: s.outcome.value for s in result.steps}


def test_diamond_runs_join_after_both_branches():
    p = pipeline(
        step("a"), step("b", needs=("a",)), step("c", needs=("a",)), step("d", needs=("b", "c"))
    )
    provider = FakeProvider({"b": Script(polls=3)})
    result, _ = run(p, provider)
    assert statuses(result) == dict.fromkeys("abcd", "success")
    order = [task for task, _ in provider.starts]
    assert order[0] == "a" and order[-1] == "d"
    by_id = {s.id: s for s in result.steps}
    assert by_id["d"].started_at >= by_id["b"].ended_at
    assert result.exit_code == 0


def test_failure_skips_downstream_and_fires_failure_branch_through_skipped_steps():
    p = pipeline(
        step("a"),
        step("b", needs=("a",)),
        step("c", needs=("b",)),
        step("alert", needs=("c",), run_if="failure"),
        step("cleanup", needs=("c",), run_if="always"),
    )
    provider = FakeProvider({"a": Script(outcomes=("failed",))})
    result, _ = run(p, provider)
    assert statuses(result) == {
        "a": "failed",
        "b": "skipped",
        "c": "skipped",
        "alert": "success",
        "cleanup": "success",
    }
    assert result.exit_code == 1
    assert "a" in [t for t, _ in provider.starts]
    assert "b" not in [t for t, _ in provider.starts]


def test_failure_branch_skipped_when_all_succeed():
    p = pipeline(step("a"), step("alert", needs=("a",), run_if="failure"))
    result, _ = run(p, FakeProvider())
    assert statuses(result) == {"a": "success", "alert": "skipped"}
    assert result.exit_code == 0
    assert "no upstream step failed" in result.steps[1].skipped_reason


def test_expression_condition_reads_outputs():
    p = pipeline(
        step("a"),
        step("b", needs=("a",), run_if="expression", expression="{{ steps.a.outputs.files > 3 }}"),
        step(
            "c", needs=("a",), run_if="expression", expression="{{ steps.a.outputs.files > 100 }}"
        ),
    )
    result, _ = run(p, FakeProvider({"a": Script(outputs={"files": 7})}))
    assert statuses(result) == {"a": "success", "b": "success", "c": "skipped"}


def test_continue_on_error_outcome_failed_conclusion_success():
    p = pipeline(
        step("a", continue_on_error=True),
        step("b", needs=("a",)),
        step("alert", needs=("b",), run_if="failure"),
    )
    result, _ = run(p, FakeProvider({"a": Script(outcomes=("failed",))}))
    a = result.steps[0]
    assert (a.outcome, a.conclusion) == (Status.FAILED, Status.SUCCESS)
    assert statuses(result)["b"] == "success"
    assert statuses(result)["alert"] == "skipped"
    assert result.exit_code == 0


def test_step_timeout_names_the_remote_run_left_going():
    p = pipeline(step("slow", timeout=0.1), step("after", needs=("slow",)))
    result, recorder = run(p, FakeProvider({"slow": Script(outcomes=("never",))}))
    slow = result.steps[0]
    assert slow.outcome == Status.TIMED_OUT
    assert slow.remote_may_continue == ["run-1"]
    assert "run-1 may still be going" in slow.error
    assert statuses(result)["after"] == "skipped"
    assert result.exit_code == 1


def test_whole_run_timeout_ends_running_and_pending_steps():
    p = pipeline(step("slow"), step("next", needs=("slow",)), timeout=0.15)
    result, _ = run(p, FakeProvider({"slow": Script(outcomes=("never",))}))
    assert statuses(result) == {"slow": "timed_out", "next": "skipped"}
    assert "whole-run timeout" in result.message
    assert result.exit_code == 1


def test_retries_start_again_after_a_failed_run_only():
    p = pipeline(step("flaky", retries=2))
    provider = FakeProvider({"flaky": Script(outcomes=("failed", "success"))})
    result, _ = run(p, provider)
    flaky = result.steps[0]
    assert flaky.outcome == Status.SUCCESS
    assert [a.status.value for a in flaky.attempts] == ["failed", "success"]
    assert [t for t, _ in provider.starts] == ["flaky", "flaky"]


def test_ambiguous_start_is_never_retried():
    p = pipeline(step("x", retries=3))
    provider = FakeProvider(
        {"x": Script(start_error=AmbiguousStartError("the task may have started"))}
    )
    result, _ = run(p, provider)
    assert result.steps[0].outcome == Status.ERROR
    assert "may have started" in result.steps[0].error
    assert len(provider.starts) == 1
    assert result.exit_code == 3


def test_retries_exhausted_fail_with_every_attempt_recorded():
    p = pipeline(step("bad", retries=1))
    provider = FakeProvider({"bad": Script(outcomes=("failed",))})
    result, _ = run(p, provider)
    assert result.steps[0].outcome == Status.FAILED
    assert len(result.steps[0].attempts) == 2
    assert len(provider.starts) == 2


def test_undefined_template_variable_errors_the_step_not_an_empty_string():
    p = pipeline(step("a", spec={"task_id": "t", "parameters": {"FileMask": "{{ vars.mask }}"}}))
    result, _ = run(p, FakeProvider())
    assert result.steps[0].outcome == Status.ERROR
    assert "'dict object' has no attribute 'mask'" in result.steps[0].error
    assert result.exit_code == 2


def test_outputs_flow_to_later_steps_and_vars_are_overridable():
    p = pipeline(
        step("a", outputs={"batch": "{{ result.run_id }}-{{ vars.site }}"}),
        step(
            "b",
            needs=("a",),
            spec={
                "task_id": "b",
                "parameters": {
                    "Batch": "{{ steps.a.outputs.batch }}",
                    "Count": "{{ steps.a.outputs.files }}",
                },
            },
        ),
        variables={"site": "paris"},
    )
    provider = FakeProvider({"a": Script(outputs={"files": 4})})
    result, _ = run(p, provider, variables={"site": "lyon"})
    assert result.steps[0].outputs["batch"] == "run-1-lyon"
    assert provider.starts[1][1]["parameters"] == {"Batch": "run-1-lyon", "Count": 4}


def test_max_parallel_bounds_active_steps():
    steps = [step(f"s{i}") for i in range(12)]
    provider = FakeProvider({f"s{i}": Script(polls=3) for i in range(12)})
    result, _ = run(pipeline(*steps, max_parallel=3), provider)
    assert all(s.outcome == Status.SUCCESS for s in result.steps)
    assert provider.max_active == 3


def test_list_order_breaks_ties_between_ready_steps():
    steps = [step(f"s{i}") for i in range(5)]
    provider = FakeProvider()
    run(pipeline(*steps, max_parallel=1), provider)
    assert [t for t, _ in provider.starts] == [f"s{i}" for i in range(5)]


def test_interrupt_cancels_running_and_starts_nothing_new():
    p = pipeline(step("long"), step("next", needs=("long",)))
    provider = FakeProvider({"long": Script(outcomes=("never",))})
    executor = Executor(p, build_plan(p), {"env": provider})
    threading.Timer(0.1, executor.interrupt).start()
    result = executor.run()
    assert statuses(result) == {"long": "cancelled", "next": "skipped"}
    assert result.steps[0].remote_may_continue == ["run-1"]
    assert result.exit_code == 130 and result.interrupted
    assert [t for t, _ in provider.starts] == ["long"]


def test_many_steps_in_flight_without_a_thread_each():
    n = 2000
    steps = [step(f"s{i}", task="t") for i in range(n)]
    provider = FakeProvider({"t": Script(polls=3)})
    before = threading.active_count()
    executor = Executor(
        pipeline(*steps, max_parallel=n), build_plan(pipeline(*steps)), {"env": provider}
    )
    result = executor.run()
    assert provider.max_active > 1000
    assert all(s.outcome == Status.SUCCESS for s in result.steps)
    assert provider.max_threads - before <= executor.workers


def test_whole_run_timeout_still_runs_the_failure_and_always_steps():
    p = pipeline(
        step("slow"),
        step("next", needs=("slow",)),
        step("alert", needs=("next",), run_if="failure"),
        step("cleanup", needs=("slow",), run_if="always"),
        step("report", needs=("alert",)),
        timeout=0.15,
    )
    provider = FakeProvider({"slow": Script(outcomes=("never",))})
    result, _ = run(p, provider)
    assert statuses(result) == {
        "slow": "timed_out",
        "next": "skipped",
        "alert": "success",
        "cleanup": "success",
        "report": "skipped",
    }
    assert "whole-run timeout" in result.message
    assert result.exit_code == 1
    assert (
        next(s for s in result.steps if s.id == "report").skipped_reason
        == "not started: whole-run timeout reached"
    )


def test_run_if_over_outputs_an_upstream_failure_never_produced_skips_instead_of_erroring():
    p = pipeline(
        step("first"),
        step("pull", needs=("first",)),
        step(
            "push",
            needs=("pull",),
            run_if="expression",
            expression="{{ steps.pull.outputs.files > 0 }}",
        ),
    )
    result, _ = run(p, FakeProvider({"first": Script(outcomes=("failed",))}))
    assert statuses(result) == {"first": "failed", "pull": "skipped", "push": "skipped"}
    push = next(s for s in result.steps if s.id == "push")
    assert "because upstream step first ended failed" in push.skipped_reason
    assert result.exit_code == 1


def test_a_timed_out_attempt_is_recorded_timed_out_not_cancelled():
    p = pipeline(step("slow", timeout=0.1))
    result, _ = run(p, FakeProvider({"slow": Script(outcomes=("never",))}))
    assert result.steps[0].attempts[-1].status == Status.TIMED_OUT
    assert result.steps[0].remote_may_continue == ["run-1"]


def test_a_failed_wait_is_not_retried():
    from dataclasses import replace

    from mftrun.model import Action

    wait = step("wait", retries=2)
    p = pipeline(replace(wait, action=Action("wait_tasks", {"id": "wait"})))
    provider = FakeProvider({"wait": Script(outcomes=("failed", "success"))})
    result, _ = run(p, provider)
    assert result.steps[0].outcome == Status.FAILED and len(result.steps[0].attempts) == 1
    assert len(provider.starts) == 1
