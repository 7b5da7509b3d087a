"""How long writing the reports takes, and how big they get, for runs of 10 to 10,000 steps.

    python bench/bench_reports.py [--steps 10,1000,10000] [--memory]

Prints one line per size and format: seconds to render+write and file size, and
the console's final summary table; --memory: peak RSS each format adds.

Report-time target (issue 17): report.html of a 10,000-step run built, scrubbed,
rendered and written in under REPORT_HTML_S seconds (CPU time, the best of three
runs: wall time on a shared 2-core machine measures the neighbours). Printed with
pass/MISS; also the wall time of that best run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mftrun.credentials import Redactor
from mftrun.reports import build_report, write_reports
from mftrun.results import Attempt, RunResult, Status, StepResult

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
REPORT_HTML_S = 2.5  # 10,000 steps: about half of the 4.6 s issue 13 measured before issue 17
TARGET_STEPS = 10_000
CYCLE = (Status.SUCCESS,) * 7 + (Status.FAILED, Status.TIMED_OUT, Status.SKIPPED)


def make_run(count: int) -> RunResult:
    steps = []
    for i in range(count):
        status = CYCLE[i % len(CYCLE)]
        start = T0 + timedelta(seconds=i % 600)
        attempts = (
            []
            if status is Status.SKIPPED
            else [
                Attempt(
                    number=n,
                    started_at=start + timedelta(seconds=40 * (n - 1)),
                    ended_at=start + timedelta(seconds=40 * n - 5),
                    run_id=f"{i:08d}-0000-4000-8000-{n:012d}",
                    remote_status="failed" if status is Status.FAILED else "success",
                    status=status,
                )
                for n in range(1, 3 if status is Status.FAILED else 2)
            ]
        )
        steps.append(
            StepResult(
                id=f"step-{i:05d}",
                environment="mft",
                action="start_task",
                line=10 + 5 * i,
                column=5,
                outcome=status,
                conclusion=status,
                attempts=attempts,
                started_at=start if attempts else None,
                ended_at=attempts[-1].ended_at if attempts else None,
                error="task failed: sftp permission denied" if status is Status.FAILED else None,
                outputs={
                    "run_id": attempts[0].run_id,
                    "run": {
                        "status": {"taskRunStatus": "success"},
                        "fileStatistics": {"bytes": 1024 * i},
                    },
                }
                if attempts
                else {},
                http_calls=4,
            )
        )
    return RunResult(
        pipeline="bench",
        file="bench.yaml",
        sha256="0" * 64,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=700),
        steps=steps,
        exit_code=1,
    )


_MEMORY_CHILD = r"""
import resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench_reports import make_run
from mftrun.credentials import Redactor
from mftrun.reports import write_reports
result = make_run(int(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[2] != "none":
    with tempfile.TemporaryDirectory() as folder:
        formats = tuple(sys.argv[2].split("+"))
        write_reports(result, report_dir=Path(folder), formats=formats, redactor=Redactor())
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before / 1024, after / 1024)
"""


def memory(count: int) -> None:
    """Peak RSS added by each format alone, each in a fresh process (ru_maxrss only grows)."""
    import subprocess
    import sys

    here = str(Path(__file__).resolve().parent)
    for fmt in ("json", "html", "junit", "json+html+junit"):
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(count), fmt, here],
            capture_output=True,
            text=True,
            check=True,
            cwd=str(Path(here).parent),
            env={**__import__("os").environ, "PYTHONPATH": str(Path(here).parent)},
        )
        before, after = map(float, out.stdout.split())
        print(
            f"{count:>6} {fmt:<16} peak RSS {before:>6.0f} MB -> {after:>6.0f} MB "
            f"(+{after - before:.0f})"
        )


def html_time(result: RunResult, redactor: Redactor, repeat: int = 3) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the fastest of `repeat` report.html writes."""
    best: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeat):
            cpu, wall = time.process_time(), time.perf_counter()
            write_reports(result, report_dir=Path(folder), formats=("html",), redactor=redactor)
            took = (time.process_time() - cpu, time.perf_counter() - wall)
            best = took if best is None or took[0] < best[0] else best
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="10,1000,10000")
    parser.add_argument(
        "--memory", action="store_true", help="peak RSS added by each format (fresh processes)"
    )
    args = parser.parse_args()
    if args.memory:
        for count in (int(n) for n in args.steps.split(",")):
            memory(count)
        return
    redactor = Redactor()
    redactor.add("canary-client-secret-0123456789")
    redactor.add("another-secret-value-abcdefgh")
    print(f"{'steps':>6} {'stage':<14} {'seconds':>8} {'size':>10}")
    for count in (int(n) for n in args.steps.split(",")):
        result = make_run(count)
        started = time.perf_counter()
        build_report(result, redactor)
        print(f"{count:>6} {'build+scrub':<14} {time.perf_counter() - started:>8.3f} {'':>10}")
        with tempfile.TemporaryDirectory() as folder:
            for fmt in ("json", "html", "junit"):
                started = time.perf_counter()
                path = write_reports(
                    result, report_dir=Path(folder), formats=(fmt,), redactor=redactor
                )[fmt]
                elapsed = time.perf_counter() - started
                print(f"{count:>6} {fmt:<14} {elapsed:>8.3f} {path.stat().st_size / 1e6:>8.2f} MB")
            started = time.perf_counter()
            write_reports(result, report_dir=Path(folder), redactor=redactor)
            print(f"{count:>6} {'all three':<14} {time.perf_counter() - started:>8.3f}")
        # The console's final summary table (what `mftrun apply` prints last, even with -q).
        import io

        from rich.console import Console

        from mftrun.reports.summary import print_summary

        started = time.perf_counter()
        print_summary(
            redactor.scrub_data(result.to_dict()), console=Console(file=io.StringIO(), width=100)
        )
        print(f"{count:>6} {'summary table':<14} {time.perf_counter() - started:>8.3f}")
        if count == TARGET_STEPS:
            cpu, wall = html_time(result, redactor)
            verdict = "pass" if cpu < REPORT_HTML_S else "MISS"
            print(
                f"{count:>6} {'html target':<14} {cpu:>8.3f} CPU s (wall {wall:.3f} s), "
                f"target < {REPORT_HTML_S} s: {verdict}"
            )


if __name__ == "__main__":
    main()
