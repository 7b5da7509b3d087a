"""Run memory's cost and speed (issue 10): figures, pass/miss; never a timed unit test.

    python bench/bench_state.py [--quick]

- overhead of recording on a 1,000-step run: wall and CPU with SQLite and PostgreSQL against
  --no-state (target <= 5 % wall);
- resume of a 1,000-step run SIGKILLed halfway: time from the resuming process's start to its
  first poll of a re-attached run (target < 2 s);
- lock contention: 20 processes race for one pipeline: exactly one runs, the others exit 4,
  each in < 1 s.
PostgreSQL figures need Debian's postgresql binaries (a throw-away cluster is started).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import CHILD_ENV, ROOT, EmulatorProcess, independent, run_measured  # noqa: E402

OVERHEAD_PCT = 5.0
RESUME_FIRST_POLL_S = 2.0
LOCK_LOSER_S = 1.0


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    try:
        import postgres_server

        if postgres_server.binaries() is None:
            yield None
            return
        with postgres_server.cluster() as url:
            yield postgres_server.fresh_database(url)
    except ImportError:
        yield None


def apply_argv(pipeline: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mftrun", "apply", str(pipeline), "-q", "--no-report", *extra]


def overhead(steps: int, pg_url: str | None) -> dict[str, Any]:
    workload = independent(steps, 2.0, max_parallel=100)
    variants: dict[str, list[str]] = {"--no-state": ["--no-state"]}
    folder = Path(tempfile.mkdtemp(prefix="mftrun-bench-state-"))
    variants["sqlite"] = ["--state", str(folder / "state.db")]
    if pg_url:
        variants["postgres"] = ["--state", pg_url]
    out: dict[str, Any] = {}
    for name, extra in variants.items():
        walls, cpus = [], []
        for _ in range(2):
            with EmulatorProcess(workload) as emu:
                cost = run_measured(apply_argv(emu.write_pipeline(), *extra), env=emu.env)
                if cost.exit_code != 0:
                    raise RuntimeError(f"{name}: exit {cost.exit_code}\n{cost.output[-2000:]}")
                walls.append(cost.wall)
                cpus.append(cost.cpu)
        out[name] = {"wall_s": min(walls), "cpu_s": min(cpus)}
    base = out["--no-state"]
    for name in variants:
        out[name]["wall_overhead_pct"] = 100 * (out[name]["wall_s"] / base["wall_s"] - 1)
        out[name]["cpu_overhead_pct"] = 100 * (out[name]["cpu_s"] / base["cpu_s"] - 1)
    return out


def resume_first_poll(steps: int) -> dict[str, Any]:
    """Kill a run halfway through its tasks (all started, none ended), resume, time to the
    first poll of a re-attached run."""
    workload = independent(steps, 20.0, max_parallel=steps)
    folder = Path(tempfile.mkdtemp(prefix="mftrun-bench-resume-"))
    state = ["--state", str(folder / "state.db")]
    with EmulatorProcess(workload) as emu:
        pipeline = emu.write_pipeline()
        env = {**CHILD_ENV, **emu.env}
        proc = subprocess.Popen(
            apply_argv(pipeline, *state), env=env, cwd=str(ROOT),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        t_start = time.time()
        while len(emu.journal()["runs"]) < steps:
            time.sleep(0.2)
        time.sleep(max(0.0, t_start + 10.0 - time.time()))  # halfway through the 20 s tasks
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first_ids = {r["run_id"] for r in emu.journal()["runs"]}
        t0 = time.time()
        cost = run_measured(apply_argv(pipeline, *state, "--resume"), env=emu.env)
        journal = emu.journal()
    polls = [
        r["time"]
        for r in journal["requests"]
        if r["method"] == "GET"
        and r["path"].startswith("/v1/task-runs/")
        and r["path"].rsplit("/", 1)[-1] in first_ids
        and r["time"] >= t0
    ]
    starts: dict[str, int] = {}
    for run in journal["runs"]:
        starts[run["task_id"]] = starts.get(run["task_id"], 0) + 1
    return {
        "killed_after_starts": len(first_ids),
        "first_reattached_poll_s": (min(polls) - t0) if polls else None,
        "resume_exit": cost.exit_code,
        "resume_wall_s": cost.wall,
        "tasks_started_twice": sum(1 for n in starts.values() if n > 1),
        "tasks": len(starts),
    }


def lock_race(processes: int) -> dict[str, Any]:
    workload = independent(5, 40.0, max_parallel=5)
    folder = Path(tempfile.mkdtemp(prefix="mftrun-bench-lock-"))
    with EmulatorProcess(workload) as emu:
        pipeline = emu.write_pipeline()
        env = {**CHILD_ENV, **emu.env}
        argv = apply_argv(pipeline, "--state", str(folder / "state.db"))
        procs: list[subprocess.Popen[bytes]] = []
        spawned: list[float] = []
        for _ in range(processes):  # all at once: each measured from its own spawn
            spawned.append(time.perf_counter())
            procs.append(
                subprocess.Popen(argv, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            )  # fmt: skip
        ended: dict[int, float] = {}
        while len(ended) < processes:
            for i, proc in enumerate(procs):
                if i not in ended and proc.poll() is not None:
                    ended[i] = time.perf_counter() - spawned[i]
            time.sleep(0.005)
        codes = [p.returncode for p in procs]
        starts = len(emu.journal()["runs"])
    losers = [ended[i] for i, code in enumerate(codes) if code == 4]
    return {
        "exit_codes": sorted(codes),
        "winners": codes.count(0),
        "losers": len(losers),
        "slowest_loser_s": max(losers) if losers else None,
        "median_loser_s": sorted(losers)[len(losers) // 2] if losers else None,
        "starts": starts,
        "tasks": len(workload.tasks),
    }


def measure(quick: bool) -> dict[str, Any]:
    steps = 200 if quick else 1000
    with postgres() as pg_url:
        result: dict[str, Any] = {"steps": steps, "overhead": overhead(steps, pg_url)}
    result["resume"] = resume_first_poll(steps)
    result["lock"] = lock_race(20)
    return result


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(benchmark, figure, target, passed) for bench/run.py's table and this script's."""
    steps = result["steps"]
    out = []
    for name, figures in result["overhead"].items():
        if name == "--no-state":
            continue
        pct = figures["wall_overhead_pct"]
        out.append(
            (f"state overhead, {steps} steps, {name}", f"{pct:+.1f}% wall, "
             f"{figures['cpu_overhead_pct']:+.1f}% CPU", f"<= {OVERHEAD_PCT:g}%",
             pct <= OVERHEAD_PCT)
        )  # fmt: skip
    r = result["resume"]
    first = r["first_reattached_poll_s"]
    out.append(
        (f"resume of {steps} steps killed halfway: first re-attached poll",
         f"{first:.2f} s" if first is not None else "none", f"< {RESUME_FIRST_POLL_S:g} s",
         first is not None and first < RESUME_FIRST_POLL_S and r["tasks_started_twice"] == 0)
    )  # fmt: skip
    lock = result["lock"]
    slow = lock["slowest_loser_s"]
    out.append(
        ("lock race, 20 processes", f"{lock['winners']} ran, {lock['losers']} exit 4, slowest "
         f"loser {slow:.2f} s, median {lock['median_loser_s']:.2f} s" if slow is not None
         else str(lock), f"1 runs, < {LOCK_LOSER_S:g} s",
         lock["winners"] == 1 and lock["losers"] == 19 and slow is not None
         and slow < LOCK_LOSER_S)
    )  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = measure(args.quick)
    print(json.dumps(result, indent=2))
    for name, figure, target, passed in rows(result):
        print(f"{name:<60} {figure:<48} {target:<14} {'pass' if passed else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
