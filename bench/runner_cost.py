"""Runner cost: CPU seconds and peak memory of `mftrun apply` for 1,000 and 10,000 steps,
the CPU seconds per 1,000 remote runs of 10 minutes, and the cold start of `mftrun --help`.

Every step is an independent 15-second remote task (all in flight at once:
max_parallel = steps), polled with mftrun's default settings (2 s growing x1.5 to
30 s). CPU and peak RSS are the child process's own (os.wait4); the HTTP request
count is the emulator's journal. The time after the last request (reports and the
final summary table) is shown separately, as it grows with the step count.

The CPU per 1,000 runs of 10 minutes (issue 13; it replaces "CPU per HTTP
request", which sat at the requests library's own floor) runs 1,000 tasks of
about 10 minutes at once, mftrun's default poll schedule, the emulator's clock
and the poll settings scaled by the same factor (as bench/platform_cost.py), so
each run gets the polls a real one gets; the figure is the whole process's CPU
(start, token, every poll, reports) per 1,000 runs.

    python bench/runner_cost.py [--steps 1000 10000] [--duration 15] [--ten-minute-runs 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CHILD_ENV, EmulatorProcess, analyse, apply_cost, independent, run_measured  # noqa: E402
from platform_cost import default_poll, long_tasks  # noqa: E402

DEFAULT_POLL = default_poll()  # mftrun.model.Poll(), read from the package
CPU_PER_REQUEST_MS = 1.0
RSS_10K_MB = 300.0
# 10,000 in flight at once: each run lasts longer than sending 10,000 starts takes (~25 s on 2
# shared cores), polled every 25 s (2 polls a run), so the section measures tracking 10,000
# runs, not a poll rate one core cannot serve.
IN_FLIGHT_DURATION = 45.0
IN_FLIGHT_POLL = {"interval": 25.0, "max_interval": 25.0, "factor": 1.0}
COLD_START_MS = 150.0


# An experiment, not a fix (mftrun/ is not changed by the benchmark): `requests` reads the
# environment (proxies, NO_PROXY, ~/.netrc, CA-bundle variables) again for every request when
# Session.trust_env is on. This sitecustomize, put on the child's path, memoises that lookup per
# (host, settings), to measure what resolving it once per session would save.
_ENV_ONCE = r"""
import requests.sessions as _s
_orig, _memo = _s.Session.merge_environment_settings, {}
def _merge(self, url, proxies, stream, verify, cert):
    from urllib.parse import urlsplit
    key = (urlsplit(url).netloc, repr(proxies), stream, verify, cert)
    if key not in _memo:
        _memo[key] = _orig(self, url, proxies, stream, verify, cert)
    return _memo[key]
_s.Session.merge_environment_settings = _merge
"""


def measure_apply(
    steps: int,
    duration: float = 15.0,
    *,
    report: bool = True,
    env_once: bool = False,
    poll: dict[str, float] | None = None,
) -> dict[str, Any]:
    workload = independent(steps, duration, poll=dict(poll or DEFAULT_POLL))
    with EmulatorProcess(workload) as emu:
        if env_once:
            (emu.folder / "patch").mkdir()
            (emu.folder / "patch" / "sitecustomize.py").write_text(_ENV_ONCE, encoding="utf-8")
            emu.env["PYTHONPATH"] = str(emu.folder / "patch") + os.pathsep + CHILD_ENV["PYTHONPATH"]
        cost = apply_cost(emu, report=report)
        journal = emu.journal()
    traffic = analyse(journal, workload)
    per_request_ms = cost.cpu / traffic.requests * 1000
    first_end = min((r["ended"] for r in journal["runs"] if r["ended"]), default=None)
    at_once = sum(1 for r in journal["runs"] if first_end is None or r["started"] < first_end)
    cpu_first, cpu_last = cost.cpu_at(traffic.first_request), cost.cpu_at(traffic.last_request)
    in_run_ms = (
        (cpu_last - cpu_first) / traffic.requests * 1000
        if cpu_first is not None and cpu_last is not None
        else None
    )
    return {
        "steps": steps,
        "reports": report,
        "experiment_env_once": env_once,
        "remote_duration_s": duration,
        "poll": workload.poll,
        "wall_s": round(cost.wall, 2),
        "cpu_s": round(cost.cpu, 2),
        "requests": traffic.requests,
        "cpu_ms_per_request": round(per_request_ms, 3),
        "cpu_pass": per_request_ms <= CPU_PER_REQUEST_MS,
        # CPU between the first and the last request only (no start-up, reports or summary)
        "cpu_ms_per_request_in_run": round(in_run_ms, 3) if in_run_ms is not None else None,
        "cpu_before_first_request_s": round(cpu_first, 2) if cpu_first is not None else None,
        "cpu_after_last_request_s": round(cost.cpu - cpu_last, 2) if cpu_last is not None else None,
        "peak_rss_mb": round(cost.max_rss_mb, 1),
        "rss_pass": cost.max_rss_mb < RSS_10K_MB if steps >= 10_000 else None,
        "startup_s": round(traffic.first_request - cost.t_start, 2),
        "teardown_s": round(cost.t_end - traffic.last_request, 2),
        "start_spread_s": round(traffic.start_spread, 2),  # first start -> last start sent
        "in_flight_at_once": at_once,  # remote runs started before the first one ended
        "token_requests": traffic.tokens,
        "connections": traffic.connections,
    }


def cpu_per_thousand_runs(
    runs: int = 1000, *, minutes: float = 10.0, speed: float = 10.0, report: bool = True
) -> dict[str, Any]:
    """Runner CPU seconds per 1,000 remote runs of `minutes`, all in flight at once."""
    workload = long_tasks(runs, minutes=minutes, speed=speed, max_parallel=runs)
    with EmulatorProcess(workload) as emu:
        cost = apply_cost(emu, report=report)
        journal = emu.journal()
    traffic = analyse(journal, workload)
    cpu_first, cpu_last = cost.cpu_at(traffic.first_request), cost.cpu_at(traffic.last_request)
    per = 1000 / runs
    return {
        "runs": runs,
        "minutes": minutes,
        "speed": speed,
        "reports": report,
        "wall_s": round(cost.wall, 2),
        "cpu_s": round(cost.cpu, 2),
        "cpu_s_per_1000_runs": round(cost.cpu * per, 2),
        "cpu_s_per_1000_runs_in_run": (
            round((cpu_last - cpu_first) * per, 2)
            if cpu_first is not None and cpu_last is not None
            else None
        ),
        "cpu_before_first_request_s": round(cpu_first, 2) if cpu_first is not None else None,
        "cpu_after_last_request_s": round(cost.cpu - cpu_last, 2) if cpu_last is not None else None,
        "requests": traffic.requests,
        "requests_per_run": round(traffic.requests / runs, 1),
        "polls_per_run": round(traffic.polls / runs, 1),
        "token_requests": traffic.tokens,
        "peak_rss_mb": round(cost.max_rss_mb, 1),
    }


_FLOOR_CHILD = r"""
import json, sys, threading, time
import requests
url, threads, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
session = requests.Session()
session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=max(2, threads)))
def work(n):
    for _ in range(n):
        session.get(url, headers={"Authorization": "bearer not-a-token"}, timeout=30).content
work(20)  # connections open, code paths warm
cpu0, t0 = time.process_time(), time.perf_counter()
pool = [threading.Thread(target=work, args=(total // threads,)) for _ in range(threads)]
for t in pool: t.start()
for t in pool: t.join()
print(json.dumps({"requests": total // threads * threads, "cpu": time.process_time() - cpu0,
                  "wall": time.perf_counter() - t0}))
"""


def http_floor(threads: int = 32, total: int = 4000) -> dict[str, Any]:
    """CPU per request of bare `requests.Session().get` against the same emulator: the HTTP
    library's own cost on this machine, the floor under mftrun's figure."""
    workload = independent(1, 1.0)
    with EmulatorProcess(workload) as emu:
        url = f"{emu.url}/v1/task-runs/00000000-0000-4000-8000-000000000000"  # 401: no token work
        cost = run_measured([sys.executable, "-c", _FLOOR_CHILD, url, str(threads), str(total)])
    if cost.exit_code:
        raise RuntimeError(f"the HTTP floor child exited {cost.exit_code}: {cost.output[-1000:]}")
    data = json.loads(cost.output.strip().splitlines()[-1])
    return {
        "threads": threads,
        "requests": data["requests"],
        "cpu_s": round(data["cpu"], 3),
        "cpu_ms_per_request": round(data["cpu"] / data["requests"] * 1000, 3),
    }


def cold_start(runs: int = 7) -> dict[str, Any]:
    """Best and median of `mftrun --help` against a bare interpreter start, fresh processes."""
    helps = [run_measured([sys.executable, "-m", "mftrun", "--help"]).wall for _ in range(runs)]
    bare = [run_measured([sys.executable, "-c", "pass"]).wall for _ in range(runs)]
    best = min(helps) * 1000
    return {
        "runs": runs,
        "help_ms_min": round(best, 1),
        "help_ms_median": round(statistics.median(helps) * 1000, 1),
        "python_bare_ms_min": round(min(bare) * 1000, 1),
        "pass": best < COLD_START_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--ten-minute-runs", type=int, default=1000)
    parser.add_argument(
        "--ab-env-once",
        type=int,
        metavar="ROUNDS",
        help="experiment: alternate plain and env-lookups-once runs, ROUNDS of each",
    )
    args = parser.parse_args()
    if args.ab_env_once:
        for _ in range(args.ab_env_once):
            for once in (False, True):
                for steps in args.steps:
                    r = measure_apply(steps, args.duration, report=False, env_once=once)
                    print(
                        json.dumps(
                            {
                                k: r[k]
                                for k in (
                                    "steps",
                                    "experiment_env_once",
                                    "requests",
                                    "cpu_s",
                                    "cpu_ms_per_request",
                                    "cpu_ms_per_request_in_run",
                                )
                            }
                        ),
                        flush=True,
                    )
        return
    print(json.dumps({"cold_start": cold_start()}), flush=True)
    if args.ten_minute_runs:
        print(json.dumps(cpu_per_thousand_runs(args.ten_minute_runs)), flush=True)
    for steps in args.steps:
        print(json.dumps(measure_apply(steps, args.duration)), flush=True)


if __name__ == "__main__":
    main()
