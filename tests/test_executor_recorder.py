"""The executor's run-memory contract, over real HTTP against the emulator (journal = truth).

What resume relies on: the intent to start is recorded before the start request reaches the
platform, the remote run as soon as the answer arrives, the end before any dependent starts;
an Attach'ed step only polls; a Carried step's outputs feed the templates downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mftrun.credentials import Redactor
from mftrun.emulator import Emulator, Scenario
from mftrun.executor import Executor
from mftrun.plan import build_plan
from mftrun.providers.registry import create_provider
from mftrun.results import Status, StepResult
from mftrun.state.prior import Attach, Carried
from mftrun.validation import load_pipeline

A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


class Recording:
    """A RunRecorder that logs every call and what the emulator had seen at that instant."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.calls: list[tuple[Any, ...]] = []

    def _starts(self) -> int:
        return len(self.emu.journal.runs)

    def step_started(self, step_id: str, attempt: int, definition_hash: str) -> None:
        self.calls.append(("started", step_id, attempt, len(definition_hash)))

    def start_intent(self, step_id: str, attempt: int) -> None:
        self.calls.append(("intent", step_id, attempt, self._starts()))

    def remote_run(self, step_id: str, attempt: int, ref: Mapping[str, str]) -> None:
        self.calls.append(("remote", step_id, attempt, dict(ref), self._starts()))

    def start_not_sent(self, step_id: str, attempt: int) -> None:
        self.calls.append(("not_sent", step_id, attempt))

    def step_finished(self, result: StepResult) -> None:
        self.calls.append(("finished", result.id, result.outcome, self._starts()))


def scenario(duration: str = "2s", *faults: dict[str, Any]) -> Scenario:
    return Scenario.from_dict(
        {
            "speed": 20,
            "faults": list(faults),
            "automate_mft": {
                "tasks": [
                    {"id": A, "name": "Pull", "queue": "1s", "duration": duration},
                    {"id": B, "name": "Push", "queue": "1s", "duration": "1s"},
                ]
            },
        }
    )


def pipeline_file(emu: Emulator, folder: Path, *, timeout_a: str = "10m") -> Path:
    paths = emu.write_credentials(folder)
    path = folder / "p.yaml"
    path.write_text(
        f"""version: 1
name: recorder
environments:
  mft:
    provider: automate-mft
    base_url: {emu.url}
    credentials:
      tenant_id: {emu.credentials.tenant_id}
      key_id: {emu.credentials.key_id}
      private_key: {{file: {paths["MFT_PRIVATE_KEY_FILE"]}}}
defaults:
  environment: mft
  poll: {{interval: 0.05s, max_interval: 0.2s}}
steps:
  - id: a
    start_task: {A}
    timeout: {timeout_a}
    outputs:
      batch: "b-{{{{ result.run_id }}}}"
  - id: b
    needs: [a]
    start_task:
      task_id: {B}
      parameters: {{Batch: "{{{{ steps.a.outputs.batch }}}}"}}
"""
    )
    return path


def run(path: Path, recorder: Recording, prior: Mapping[str, Any] | None = None):
    pipeline = load_pipeline(str(path))
    environments = pipeline.environments.items()
    providers = {name: create_provider(env, redactor=Redactor()) for name, env in environments}
    try:
        executor = Executor(
            pipeline, build_plan(pipeline), providers, recorder=recorder, prior=prior
        )
        return executor.run()
    finally:
        for provider in providers.values():
            provider.close()


def test_transitions_are_recorded_before_the_actions_that_depend_on_them(tmp_path: Path) -> None:
    with Emulator(scenario()) as emu:
        recorder = Recording(emu)
        result = run(pipeline_file(emu, tmp_path), recorder)
        assert result.exit_code == 0
        kinds = [(c[0], c[1]) for c in recorder.calls]
        assert kinds == [
            ("started", "a"), ("intent", "a"), ("remote", "a"), ("finished", "a"),
            ("started", "b"), ("intent", "b"), ("remote", "b"), ("finished", "b"),
        ]  # fmt: skip
        by = {(c[0], c[1]): c for c in recorder.calls}
        assert by[("intent", "a")][3] == 0  # durable before the platform saw the start
        assert by[("remote", "a")][4] == 1
        assert by[("intent", "b")][3] == 1  # b's start only after a's end was recorded
        run_a = result.steps[0].attempts[0].run_id
        assert by[("remote", "a")][3] == {"run_id": run_a, "task_id": A}
        assert result.steps[0].attempts[0].ref == {"run_id": run_a, "task_id": A}
        assert by[("started", "a")][3] == 64 and not result.steps[0].start_unconfirmed


def test_attach_polls_the_recorded_run_and_never_starts_it_again(tmp_path: Path) -> None:
    with Emulator(scenario(duration="6s")) as emu:
        path = pipeline_file(emu, tmp_path, timeout_a="0.1s")
        first = run(path, Recording(emu))
        step_a = first.steps[0]
        assert step_a.outcome == Status.TIMED_OUT and step_a.remote_may_continue
        ref = step_a.attempts[0].ref
        assert ref and ref["run_id"] == step_a.remote_may_continue[0]
        path = pipeline_file(emu, tmp_path)  # the operator raised the timeout
        recorder = Recording(emu)
        second = run(path, recorder, {"a": Attach(ref=ref, attempt=1, from_run="run-1")})
        assert second.exit_code == 0
        a, b = second.steps
        assert a.reattached and a.outcome == Status.SUCCESS
        assert a.attempts[0].run_id == ref["run_id"] and a.outputs["batch"] == f"b-{ref['run_id']}"
        assert [r.task_id for r in emu.journal.runs] == [A, B]  # A was started once, ever
        assert ("intent", "a") not in [(c[0], c[1]) for c in recorder.calls]
        assert emu.journal.runs[1].parameters == {"Batch": f"b-{ref['run_id']}"}


def test_carried_results_feed_templates_downstream_without_a_start(tmp_path: Path) -> None:
    with Emulator(scenario()) as emu:
        path = pipeline_file(emu, tmp_path)
        first = run(path, Recording(emu))
        carried = first.steps[0]
        recorder = Recording(emu)
        second = run(path, recorder, {"a": Carried(result=carried, from_run="run-1")})
        assert second.exit_code == 0
        a, b = second.steps
        assert a.carried_from == "run-1" and a.outcome == Status.SUCCESS and a.http_calls == 0
        assert [r.task_id for r in emu.journal.runs] == [A, B, B]
        assert emu.journal.runs[2].parameters == {"Batch": carried.outputs["batch"]}
        assert [(c[0], c[1]) for c in recorder.calls][0] == ("finished", "a")
        assert b.to_dict()["carried_from"] is None and a.to_dict()["carried_from"] == "run-1"


def test_a_start_refused_by_the_platform_clears_the_intent(tmp_path: Path) -> None:
    with Emulator(scenario()) as emu:
        path = pipeline_file(emu, tmp_path)
        path.write_text(
            path.read_text().replace(
                f"start_task: {A}", "start_task: 00000000-0000-4000-8000-0000000000ff"
            )
        )
        recorder = Recording(emu)
        result = run(path, recorder)
        assert result.steps[0].outcome == Status.ERROR
        kinds = [(c[0], c[1]) for c in recorder.calls]
        assert kinds[:3] == [("started", "a"), ("intent", "a"), ("not_sent", "a")]
        assert not result.steps[0].start_unconfirmed


def test_a_start_whose_answer_was_lost_stays_unconfirmed(tmp_path: Path) -> None:
    drop = {"kind": "drop_response", "times": 1, "match": {"method": "POST", "path": "/v1/tasks/*"}}
    with Emulator(scenario("2s", drop)) as emu:
        recorder = Recording(emu)
        result = run(pipeline_file(emu, tmp_path), recorder)
        a = result.steps[0]
        assert a.outcome == Status.ERROR and a.start_unconfirmed
        assert len(emu.journal.runs) == 1  # the platform did start it
        assert [c[0] for c in recorder.calls if c[1] == "a"] == ["started", "intent", "finished"]
        assert a.to_dict()["start_unconfirmed"] is True
