"""Where `mftrun apply`'s CPU goes: cProfile in every thread, merged, top functions printed.

The benchmark's runner-cost figure is one number (CPU seconds / HTTP requests);
this explains it. `mftrun apply` runs in this process (the emulator in its own)
with a profiler installed in the main thread and in every worker thread, and the
merged statistics are printed by cumulative and by own time.

    python bench/profile_apply.py [--steps 1000] [--duration 15] [--report] [--top 30]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EmulatorProcess, analyse, independent  # noqa: E402
from runner_cost import DEFAULT_POLL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument(
        "--report", action="store_true", help="also write the reports (default: --no-report)"
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime,cumulative")
    args = parser.parse_args()

    profiles: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        prof = cProfile.Profile(time.thread_time)  # CPU of this thread, not wall
        profiles.append(prof)
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()

    workload = independent(args.steps, args.duration, poll=dict(DEFAULT_POLL))
    with EmulatorProcess(workload) as emu:
        import os

        os.environ.update(emu.env)
        pipeline = emu.write_pipeline()
        argv = ["apply", str(pipeline), "-q"]
        argv += ["--report-dir", str(emu.folder / "report")] if args.report else ["--no-report"]
        threading.Thread.run = profiled_run  # type: ignore[method-assign]
        main_prof = cProfile.Profile(time.thread_time)  # CPU of this thread, not wall
        cpu0, t0 = time.process_time(), time.perf_counter()
        main_prof.enable()
        from mftrun.cli import main as cli_main

        code = cli_main(argv)
        main_prof.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        threading.Thread.run = original_run  # type: ignore[method-assign]
        journal = emu.journal()
    traffic = analyse(journal, workload)
    print(
        f"exit {code}; {args.steps} steps; wall {wall:.1f} s; CPU {cpu:.2f} s (profiled, so "
        "inflated); "
        f"{traffic.requests} requests; {cpu / traffic.requests * 1000:.2f} ms CPU per request "
        "(profiled)"
    )
    stats = pstats.Stats(main_prof)
    for prof in profiles:
        with contextlib.suppress(TypeError):  # a thread that never ran profiled code
            stats.add(prof)
    for key in args.sort.split(","):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(key).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
