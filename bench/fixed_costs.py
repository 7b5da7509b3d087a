"""Fixed costs of `mftrun apply`: where the time before the first request and after the last
goes (issue 13 section 5).

One `mftrun apply` process against an emulator in its own process (the issue's
fan-out of 200 x 2 s by default). The stages come from the process itself
(MFTRUN_PHASES: one mark per stage of mftrun/run.py, Unix time and CPU), the
requests from the emulator's journal, the spawn and exit times from outside.
The imports loaded before the first request are listed from a second run
(`python -X importtime`, a sys.modules snapshot at the first socket connect).

    python bench/fixed_costs.py [--steps 200] [--duration 2] [--runs 3] [--imports]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CHILD_ENV, EmulatorProcess, fan_out, run_measured  # noqa: E402

DAG_POLL = {"interval": 0.05, "max_interval": 1.0, "factor": 1.1}

# At the first socket connect (the token request), write sys.modules to a file; then run mftrun.
_SNAPSHOT = r"""
import json, sys
OUT = sys.argv[1]
done = []
def hook(event, args):
    if event == "socket.connect" and not done:
        done.append(1)
        with open(OUT, "w") as f:
            json.dump(sorted(sys.modules), f)
sys.addaudithook(hook)
from mftrun.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


_NAMES = {
    "started": "interpreter, cli and apply imports",
    "imported": "lock, state store, imports of the run",
    "validated": "read and validate the file",
    "connected": "run memory, credentials, sessions",
    "planned": "plan (login check in flight)",
    "prepared": "console, run record, executor set-up",
    "logged_in": "waiting for the login check",
    "ready": "report fields",
    "first start": "-> first start request",
    "last request": "the run (first start to last request)",
    "ran": "last request -> run ended",
    "reported": "reports and summary",
    "exit": "unwinding (sessions, lock, store)",
    "process end": "interpreter exit",
}


def _stages(
    marks: list[dict[str, Any]], traffic: dict[str, float], t_start: float, t_end: float
) -> list[tuple[str, float]]:
    """Seconds from each point to the next, in time order: the process's stage marks, the
    journal's first token, first start and last request, the spawn and the exit."""
    points = [(m["time"], m["phase"]) for m in marks]
    points += [(traffic["first_start"], "first start"), (traffic["last_request"], "last request")]
    points += [(t_end, "process end")]
    points.sort()
    out, before = [], t_start
    for when, name in points:
        out.append((_NAMES.get(name, name), round(when - before, 4)))
        before = when
    return out


def measure(steps: int, duration: float, latency_ms: float = 0.0) -> dict[str, Any]:
    """One run; `latency_ms` delays the token and licence answers, as a real platform's round
    trips (TLS, a distant region) would, to show what overlapping the login check saves."""
    workload = fan_out(steps, duration, poll=dict(DAG_POLL))
    faults = [
        {"kind": "latency", "delay": f"{latency_ms:g}ms", "match": {"path": path}}
        for path in ("/v1/oauth/token", "/v1/licenses/current")
        if latency_ms
    ]
    with EmulatorProcess(workload, faults=faults) as emu:
        pipeline = emu.write_pipeline()
        marks_file = emu.folder / "phases.jsonl"
        argv = [sys.executable, "-m", "mftrun", "apply", str(pipeline), "-q"]
        argv += ["--report-dir", str(emu.folder / "report")]
        cost = run_measured(argv, env={**emu.env, "MFTRUN_PHASES": str(marks_file)})
        if cost.exit_code != 0:
            raise RuntimeError(f"mftrun apply exited {cost.exit_code}:\n{cost.output[-3000:]}")
        journal = emu.journal()
        lines = marks_file.read_text().splitlines() if marks_file.exists() else []
        marks = [json.loads(line) for line in lines]  # none from a commit before the marks
    reqs = [r for r in journal["requests"] if r["platform"] == "automate-mft"]
    tokens = [r["time"] for r in reqs if r["path"].endswith("/oauth/token")]
    starts = [r["time"] for r in reqs if r["method"] == "POST" and r["path"].endswith("/start")]
    traffic = {
        "first_request": min(r["time"] for r in reqs),
        "first_token": min(tokens),
        "first_start": min(starts),
        "last_request": max(r["time"] for r in reqs),
    }
    cpu = {m["phase"]: m["cpu"] for m in marks}
    return {
        "steps": steps,
        "wall_s": round(cost.wall, 3),
        "cpu_s": round(cost.cpu, 3),
        "spawn_to_first_request_s": round(traffic["first_request"] - cost.t_start, 3),
        "spawn_to_first_start_s": round(traffic["first_start"] - cost.t_start, 3),
        "last_request_to_exit_s": round(cost.t_end - traffic["last_request"], 3),
        "token_requests": len(tokens),
        # the login check's token left while the run was still being prepared
        "token_sent_before_prepared": traffic["first_token"]
        < {m["phase"]: m["time"] for m in marks}.get("prepared", 0.0),
        "cpu_before_ready_s": round(cpu["ready"], 3) if "ready" in cpu else None,
        "stages": _stages(marks, traffic, cost.t_start, cost.t_end),
    }


def imports_before_first_request(steps: int = 20) -> dict[str, Any]:
    """Modules loaded when the first request leaves, and -X importtime's top cumulative ones."""
    workload = fan_out(steps, 0.5, poll=dict(DAG_POLL))
    with EmulatorProcess(workload) as emu:
        pipeline = emu.write_pipeline()
        snapshot = emu.folder / "modules.json"
        argv = [sys.executable, "-X", "importtime", "-c", _SNAPSHOT, str(snapshot)]
        argv += ["apply", str(pipeline), "-q", "--no-report"]
        done = subprocess.run(
            argv, env={**CHILD_ENV, **emu.env}, capture_output=True, text=True, timeout=300
        )
        modules = json.loads(snapshot.read_text())
    loaded = set(modules)
    top: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if name.strip() in loaded and len(name) - len(name.lstrip()) <= 3:
            top[name.strip()] = max(top.get(name.strip(), 0), int(cumulative))
    return {
        "modules_at_first_request": len(modules),
        "mftrun_modules": sorted(m for m in modules if m.startswith("mftrun")),
        "third_party_packages": sorted(
            {m.split(".")[0] for m in modules}
            & {"requests", "urllib3", "jwt", "cryptography", "jsonschema", "yaml", "jinja2", "rich"}
        ),
        "top_cumulative_ms": {
            k: round(v / 1000, 1) for k, v in sorted(top.items(), key=lambda kv: -kv[1])[:15]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--imports", action="store_true", help="also list the imports")
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="MS", help="delay token and licence answers"
    )
    args = parser.parse_args()
    runs = [measure(args.steps, args.duration, args.latency) for _ in range(args.runs)]
    for r in runs:
        print(json.dumps({k: v for k, v in r.items() if k != "stages"}), flush=True)
    print(f"stages, median of {len(runs)} runs ({args.steps} x {args.duration:g} s fan-out):")
    for name, _ in runs[0]["stages"]:
        values = [dict(r["stages"]).get(name, 0.0) for r in runs]
        print(f"  {name:<40} {statistics.median(values) * 1000:8.1f} ms")
    if args.imports:
        print(json.dumps(imports_before_first_request(), indent=1))


if __name__ == "__main__":
    main()
