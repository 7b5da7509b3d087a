"""Wall-clock marks of `apply`'s fixed costs, for the benchmarks (issue 13 section 5).

Why: a run's time before the first request and after the last (interpreter,
imports, file, token, plan, reports) is invisible from outside except as one
sum. With MFTRUN_PHASES=FILE set, `apply` appends one JSON line per stage
(name, Unix time, process CPU seconds) to FILE when it ends; without it a mark
costs one list append. Nothing here is shown to users or written to reports.
"""

from __future__ import annotations

import json
import os
import time

ENV = "MFTRUN_PHASES"
_marks: list[tuple[str, float, float]] = []


def mark(name: str) -> None:
    """Record that stage `name` ended now."""
    _marks.append((name, time.time(), time.process_time()))


def write(environ: os._Environ[str] | dict[str, str] | None = None) -> None:
    """Append the marks to $MFTRUN_PHASES (if set); never fails the run."""
    path = (environ if environ is not None else os.environ).get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as out:
            for name, when, cpu in _marks:
                out.write(json.dumps({"phase": name, "time": when, "cpu": cpu}) + "\n")
    except OSError:
        pass
