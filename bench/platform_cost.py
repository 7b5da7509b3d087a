"""Platform cost: what `mftrun apply` asks of the platform for 10-minute tasks.

Every figure comes from the emulator's journal (it runs in its own process):
HTTP requests and polls per remote run, token requests for the environment, TCP
connections the emulator accepted, and for every run how long after its end the
first poll came (the end "noticed"). The emulator's clock runs `speed` times
faster than real time and mftrun's poll settings are its defaults divided by the
same factor, so the schedule of polls per task is the one a real 10-minute task
gets; lags are reported in simulated seconds (real x speed).

Targets (issue 7): one token request per environment per run; connections at
most max_parallel + 1; at most 40 polls per 10-minute task while each task's end
is noticed within 10% of its elapsed time or max_interval, whichever is smaller.

The token lifetime in the scenario is one hour: Automate MFT does not publish
its token lifetime, and with the 5-minute one assumed when `expires_in` is
missing a 20-minute run needs several tokens by design (renewal before expiry).

    python bench/platform_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EmulatorProcess, Task, Workload, analyse, apply_cost, stats, task_uuid  # noqa: E402

MAX_POLLS = 40
NOTICE_FRACTION = 0.10


def default_poll() -> dict[str, float]:
    """mftrun's own defaults, read from the package (not restated here)."""
    from mftrun.model import Poll

    poll = Poll()
    return {"interval": poll.interval, "max_interval": poll.max_interval, "factor": poll.factor}


def long_tasks(
    n: int = 16,
    *,
    minutes: float = 10.0,
    speed: float = 60.0,
    max_parallel: int = 8,
    seed: int = 5,
    factor: float | None = None,
) -> Workload:
    """`n` tasks of about `minutes` each (+-5%, so their ends spread over the poll schedule),
    queued 0-10 s, `max_parallel` at a time, mftrun's default poll schedule scaled to `speed`."""
    rng = random.Random(seed)
    tasks = tuple(
        Task(
            f"t{i:03d}",
            task_uuid(rng),
            round(rng.uniform(0, 10), 3),
            round(minutes * 60 * rng.uniform(0.95, 1.05), 3),
        )
        for i in range(n)
    )
    poll = {k: (v / speed if k != "factor" else v) for k, v in default_poll().items()}
    if factor is not None:  # to try another growth factor than mftrun's default
        poll["factor"] = factor
    return Workload(
        f"{n} tasks of ~{minutes:g} min, max_parallel {max_parallel}",
        tasks,
        speed=speed,
        max_parallel=max_parallel,
        poll=poll,
        token_lifetime=3600.0,
    )


def measure(workload: Workload) -> dict[str, Any]:
    with EmulatorProcess(workload) as emu:
        cost = apply_cost(emu)
        journal = emu.journal()
    return figures(workload, cost, journal)


def figures(workload: Workload, cost: Any, journal: dict[str, Any]) -> dict[str, Any]:
    """One apply's figures from its cost and its part of the emulator's journal."""
    traffic = analyse(journal, workload)
    speed = workload.speed
    max_interval = workload.poll["max_interval"] * speed  # simulated seconds
    polls: dict[str, list[float]] = {}
    for r in journal["requests"]:
        if r["method"] == "GET" and r["path"].startswith("/v1/task-runs/"):
            polls.setdefault(r["path"].rsplit("/", 1)[1], []).append(r["time"])
    per_run = []
    for run in journal["runs"]:
        times = polls.get(run["run_id"], [])
        after = [t for t in times if run["ended"] is not None and t >= run["ended"]]
        elapsed = (run["ended"] - run["started"]) * speed if run["ended"] else None
        lag = (min(after) - run["ended"]) * speed if after else None
        allowed = min(NOTICE_FRACTION * elapsed, max_interval) if elapsed else None
        per_run.append(
            {
                "run_id": run["run_id"],
                "elapsed_s": elapsed,
                "polls": len(times),
                "lag_s": lag,
                "allowed_s": allowed,
            }
        )
    runs = len(workload.tasks)
    noticed_ok = all(p["lag_s"] is not None and p["lag_s"] <= p["allowed_s"] for p in per_run)
    worst = max(per_run, key=lambda p: (p["lag_s"] or 0) - (p["allowed_s"] or 0))
    max_polls = max(p["polls"] for p in per_run)
    return {
        "workload": workload.name,
        "runs": runs,
        "speed": speed,
        "poll_simulated_s": {
            k: (v * speed if k != "factor" else v) for k, v in workload.poll.items()
        },
        "max_parallel": workload.max_parallel,
        "token_lifetime_s": workload.token_lifetime,
        "wall_real_s": round(cost.wall, 3),
        "requests": traffic.requests,
        "requests_per_run": round(traffic.requests / runs, 2),
        "polls_per_run": {k: round(v, 2) for k, v in stats(p["polls"] for p in per_run).items()},
        "max_polls_per_run": max_polls,
        "polls_pass": max_polls <= MAX_POLLS,
        "notice_lag_s": {
            k: round(v, 2)
            for k, v in stats(p["lag_s"] for p in per_run if p["lag_s"] is not None).items()
        },
        "worst_notice": {
            "lag_s": round(worst["lag_s"] or 0, 2),
            "allowed_s": round(worst["allowed_s"] or 0, 2),
            "elapsed_s": round(worst["elapsed_s"] or 0, 1),
        },
        "notice_pass": noticed_ok,
        "token_requests": traffic.tokens,
        "tokens_pass": traffic.tokens == 1,
        "connections": traffic.connections,
        "connections_limit": workload.max_parallel + 1,
        "connections_pass": traffic.connections <= workload.max_parallel + 1,
        "cpu_s": round(cost.cpu, 3),
        "cpu_ms_per_request": round(cost.cpu / traffic.requests * 1000, 3),
    }


def workload(quick: bool = False, factor: float | None = None) -> Workload:
    # Speed: every millisecond of real scheduling delay is `speed` simulated milliseconds
    # of notice lag, so the clock is scaled no more than the run time allows.
    if quick:
        return long_tasks(4, speed=60.0, max_parallel=4, factor=factor)
    return long_tasks(16, speed=30.0, max_parallel=8, factor=factor)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--factor", type=float, help="poll growth factor instead of mftrun's default"
    )
    args = parser.parse_args()
    print(json.dumps(measure(workload(args.quick, args.factor)), indent=1))


if __name__ == "__main__":
    main()
