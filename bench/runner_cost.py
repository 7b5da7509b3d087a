"""Runner cost: CPU seconds and peak memory of `mftrun apply` for 1,000 and 10,000 steps,
and the cold start of `mftrun --help`.

Every step is an independent 15-second remote task (all in flight at once:
max_parallel = steps), polled with mftrun's default settings (2 s growing x1.5 to
30 s). CPU and peak RSS are the child process's own (os.wait4); the HTTP request
count is the emulator's journal. The time after the last request (reports and the
final summary table) is shown separately, as it grows with the step count.

    python bench/runner_cost.py [--steps 1000 10000] [--duration 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EmulatorProcess, analyse, apply_cost, independent, run_measured  # noqa: E402
from platform_cost import default_poll  # noqa: E402

DEFAULT_POLL = default_poll()  # mftrun.model.Poll(), read from the package
CPU_PER_REQUEST_MS = 1.0
RSS_10K_MB = 300.0
COLD_START_MS = 150.0


def measure_apply(steps: int, duration: float = 15.0, *, report: bool = True) -> dict[str, Any]:
    workload = independent(steps, duration, poll=dict(DEFAULT_POLL))
    with EmulatorProcess(workload) as emu:
        cost = apply_cost(emu, report=report)
        journal = emu.journal()
    traffic = analyse(journal, workload)
    per_request_ms = cost.cpu / traffic.requests * 1000
    return {
        "steps": steps,
        "reports": report,
        "remote_duration_s": duration,
        "poll": DEFAULT_POLL,
        "wall_s": round(cost.wall, 2),
        "cpu_s": round(cost.cpu, 2),
        "requests": traffic.requests,
        "cpu_ms_per_request": round(per_request_ms, 3),
        "cpu_pass": per_request_ms <= CPU_PER_REQUEST_MS,
        "peak_rss_mb": round(cost.max_rss_mb, 1),
        "rss_pass": cost.max_rss_mb < RSS_10K_MB if steps >= 10_000 else None,
        "startup_s": round(traffic.first_request - cost.t_start, 2),
        "teardown_s": round(cost.t_end - traffic.last_request, 2),
        "token_requests": traffic.tokens,
        "connections": traffic.connections,
    }


def cold_start(runs: int = 7) -> dict[str, Any]:
    """Best and median of `mftrun --help` against a bare interpreter start, fresh processes."""
    helps = [run_measured([sys.executable, "-m", "mftrun", "--help"]).wall for _ in range(runs)]
    bare = [run_measured([sys.executable, "-c", "pass"]).wall for _ in range(runs)]
    best = min(helps) * 1000
    return {"runs": runs, "help_ms_min": round(best, 1), "help_ms_median": round(statistics.median(helps) * 1000, 1),
            "python_bare_ms_min": round(min(bare) * 1000, 1), "pass": best < COLD_START_MS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    print(json.dumps({"cold_start": cold_start()}), flush=True)
    for steps in args.steps:
        print(json.dumps(measure_apply(steps, args.duration)), flush=True)


if __name__ == "__main__":
    main()
