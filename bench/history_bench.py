"""History-aware polling (issue 13): the same workload on two nights, against one emulator.

The first `mftrun apply` has no history (it learns: the state store next to the pipeline
records each run's duration); the second, same file, same emulator, same store, polls
with that history. Both nights' figures come from the emulator's journal, split where the
second night began, so every figure is measured, not derived.

- DAG ratios (chain, fan-out, random DAG): wall / critical path and polls per run;
- 16 ten-minute tasks (clock x30, mftrun's defaults scaled): polls per run, end noticed
  after (worst, mean);
- liveness and overrun: a task that on the second night fails at minute 2, and one that
  takes twice its history; both must still be noticed within today's bounds.

    python bench/history_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dag  # noqa: E402
import platform_cost  # noqa: E402
from _common import EmulatorProcess, Task, Workload, apply_cost, task_uuid  # noqa: E402

TARGET_RATIO = 1.10
TARGET_POLLS = 12  # per ten-minute run, with history (the target)
TARGET_LAG = 3.0  # simulated seconds, worst end noticed after, with history


def since(later: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """The part of the journal `later` that came after the snapshot `earlier`."""
    tokens = {
        k: v - earlier.get("tokens_issued", {}).get(k, 0)
        for k, v in later.get("tokens_issued", {}).items()
    }
    return {
        **later,
        "requests": later["requests"][len(earlier["requests"]) :],
        "runs": later["runs"][len(earlier["runs"]) :],
        "tokens_issued": tokens,
        "connections": later["connections"] - earlier["connections"],
    }


def two_nights(workload: Workload, figures: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(without history, with history): `figures(workload, cost, journal)` of each night."""
    with EmulatorProcess(workload) as emu:
        first_cost = apply_cost(emu)
        first = emu.journal()
        second_cost = apply_cost(emu)
        second = emu.journal()
    return figures(workload, first_cost, first), figures(
        workload, second_cost, since(second, first)
    )


def dags(quick: bool = False) -> list[dict[str, Any]]:
    out = []
    for workload in dag.workloads(quick):
        without, with_history = two_nights(workload, dag.figures)
        with_history["pass"] = with_history["ratio"] <= TARGET_RATIO
        out.append({"workload": workload.name, "without": without, "with": with_history})
    return out


def ten_minutes(quick: bool = False) -> dict[str, Any]:
    workload = platform_cost.workload(quick)
    without, with_history = two_nights(workload, platform_cost.figures)
    return {
        "workload": workload.name,
        "without": without,
        "with": with_history,
        "polls_pass": with_history["max_polls_per_run"] <= TARGET_POLLS,
        "lag_pass": with_history["notice_lag_s"].get("max", 1e9) <= TARGET_LAG,
    }


def surprises(quick: bool = False) -> dict[str, Any]:
    """Night 1: both ten minutes. Night 2: one fails at minute 2, one takes 20 minutes."""
    import random

    rng = random.Random(13)
    speed = 60.0 if quick else 30.0
    tasks = (
        Task(
            "fails-early",
            task_uuid(rng),
            0.0,
            600.0,
            outcomes=({"outcome": "success"}, {"outcome": "failed", "duration": 120}),
        ),
        Task(
            "overruns",
            task_uuid(rng),
            0.0,
            600.0,
            outcomes=({"outcome": "success"}, {"outcome": "success", "duration": 1200}),
        ),
    )
    poll = {k: (v / speed if k != "factor" else v) for k, v in platform_cost.default_poll().items()}
    workload = Workload("fails early / overruns", tasks, speed=speed, max_parallel=2, poll=poll)
    max_interval = platform_cost.default_poll()["max_interval"]
    with EmulatorProcess(workload) as emu:
        apply_cost(emu)
        first = emu.journal()
        apply_cost(emu, expect_failure=True)
        journal = since(emu.journal(), first)
    by_task = {t.task_id: t.step_id for t in tasks}
    polls: dict[str, list[float]] = {}
    for r in journal["requests"]:
        if r["method"] == "GET" and r["path"].startswith("/v1/task-runs/"):
            polls.setdefault(r["path"].rsplit("/", 1)[1], []).append(r["time"])
    out: dict[str, Any] = {"speed": speed, "max_interval_s": max_interval}
    for run in journal["runs"]:
        times = polls.get(run["run_id"], [])
        after = [t for t in times if run["ended"] is not None and t >= run["ended"]]
        elapsed = (run["ended"] - run["started"]) * speed
        lag = (min(after) - run["ended"]) * speed if after else None
        allowed = min(0.10 * elapsed, max_interval)  # today's bound (the first night's rule)
        out[by_task[run["task_id"]]] = {
            "status": run["status"],
            "elapsed_s": round(elapsed, 1),
            "lag_s": None if lag is None else round(lag, 2),
            "allowed_s": round(max_interval if run["status"] == "failed" else allowed, 2),
            "polls": len(times),
        }
    for name in ("fails-early", "overruns"):
        got = out.get(name, {})
        got["pass"] = got.get("lag_s") is not None and got["lag_s"] <= got["allowed_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("dag", "ten", "surprises"))
    args = parser.parse_args()
    if args.only in (None, "dag"):
        print(json.dumps(dags(args.quick)), flush=True)
    if args.only in (None, "ten"):
        print(json.dumps(ten_minutes(args.quick)), flush=True)
    if args.only in (None, "surprises"):
        print(json.dumps(surprises(args.quick)), flush=True)


if __name__ == "__main__":
    main()
