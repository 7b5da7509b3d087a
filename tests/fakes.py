"""A scripted provider for executor unit tests (the platform seam, not a mock of requests).

Each task id maps to a script: how many polls it stays running and how each
attempt ends. Emulator-backed tests cover the real HTTP path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any
from collections.abc import Mapping

from mftrun.model import Action, Environment, Pipeline, Poll, Retry, Condition, Step, Position
from mftrun.providers.base import Observation


@dataclass
class Script:
    polls: int = 1  # polls before the run ends
    outcomes: tuple[str, ...] = ("success",)  # per attempt; last one repeats
    outputs: Mapping[str, Any] = field(default_factory=dict)
    start_error: Exception | None = None


class FakeProvider:
    name = "fake"
    can_cancel = False

    def __init__(self, scripts: Mapping[str, Script] | None = None) -> None:
        self.scripts = dict(scripts or {})
        self.starts: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self._runs = 0
        self.max_threads = 0
        self.attached: list[str] = []

    def start(self, kind: str, spec: Any, ctx: Any) -> tuple[Any, Observation]:
        """`spec` is the typed spec the action parsed from the rendered mapping."""
        filters = dict(getattr(spec, "filters", ()))  # a wait: its `id` filter names the script
        task = str(getattr(spec, "task_id", None) or getattr(spec, "name", None) or filters["id"])
        script = self.scripts.get(task, Script())
        with self.lock:
            self.starts.append((task, {"parameters": dict(getattr(spec, "parameters", {}))}))
            attempt = sum(1 for t, _ in self.starts if t == task)
            self._runs += 1
            run_id = f"run-{self._runs}"
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        if script.start_error is not None:
            with self.lock:
                self.active -= 1
            raise script.start_error
        handle = {"task": task, "run_id": run_id, "polls": 0, "script": script, "attempt": attempt}
        return handle, Observation("running", "queued", run_id=run_id)

    def poll(self, handle: dict[str, Any], ctx: Any) -> Observation:
        handle["polls"] += 1
        self.max_threads = max(self.max_threads, threading.active_count())
        script: Script = handle["script"]
        if handle["polls"] < script.polls:
            return Observation("running", "running", run_id=handle["run_id"])
        outcome = script.outcomes[min(handle["attempt"], len(script.outcomes)) - 1]
        with self.lock:
            self.active -= 1
        if outcome == "never":
            handle["polls"] -= 1
            with self.lock:
                self.active += 1
            return Observation("running", "running", run_id=handle["run_id"])
        outputs = {"run_id": handle["run_id"], "status": outcome, **script.outputs}
        return Observation(
            outcome,
            outcome,
            run_id=handle["run_id"],
            outputs=outputs,  # type: ignore[arg-type]
            message=None if outcome == "success" else f"task {handle['task']} failed",
        )

    def ref(self, handle: dict[str, Any]) -> dict[str, str]:
        return {"run_id": handle["run_id"], "task": handle["task"]}

    def attach(self, kind: str, spec: Any, ref: Mapping[str, str], ctx: Any) -> Any:
        task = ref["task"]
        with self.lock:
            self.attached.append(ref["run_id"])
            self.active += 1
        script = self.scripts.get(task, Script())
        return {"task": task, "run_id": ref["run_id"], "polls": 0, "script": script, "attempt": 1}

    def cancel(self, handle: Any) -> bool:
        return False

    def http_calls(self, handle: Any) -> int:
        return 1 + (handle["polls"] if handle else 0)

    def check(self) -> str:
        return "fake"

    def stats(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


FAST = Poll(interval=0.005, max_interval=0.02, factor=1.5)


def step(
    step_id: str,
    *,
    task: str | None = None,
    needs: tuple[str, ...] = (),
    run_if: str = "success",
    expression: str | None = None,
    timeout: float | None = None,
    retries: int = 0,
    continue_on_error: bool = False,
    outputs: Mapping[str, str] | None = None,
    spec: Mapping[str, Any] | None = None,
    index: int = 0,
) -> Step:
    return Step(
        id=step_id,
        action=Action("start_task", dict(spec or {"task_id": task or step_id})),
        environment="env",
        index=index,
        needs=needs,
        run_if=Condition(run_if, expression),  # type: ignore[arg-type]
        timeout=timeout,
        poll=FAST,
        retries=Retry(attempts=retries, delay=0.01, backoff=1.0),
        continue_on_error=continue_on_error,
        outputs=dict(outputs or {}),
        position=Position("p.yaml", 10 + index, 5),
    )


def pipeline(
    *steps: Step,
    timeout: float | None = None,
    max_parallel: int = 8,
    variables: Mapping[str, Any] | None = None,
) -> Pipeline:
    numbered = tuple(replace(s, index=i) for i, s in enumerate(steps))
    env = Environment(
        name="env", provider="automate-mft", base_url="http://127.0.0.1:1", credentials={}
    )
    return Pipeline(
        name="t",
        path="p.yaml",
        sha256="0" * 64,
        environments={"env": env},
        steps=numbered,
        max_parallel=max_parallel,
        timeout=timeout,
        vars=dict(variables or {}),
    )
