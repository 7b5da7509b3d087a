"""Helpers shared by the benchmarks: an emulator in its own process, workloads, measurement.

Why a separate process for the emulator: mftrun's CPU and memory must be measured
alone (the OS accounts per process), and an in-process server would steal the
interpreter's lock from the runner under test. Ground truth (requests, tokens,
connections, run start and end times) comes from the emulator's journal over
HTTP; the runner's CPU and peak RSS from `os.wait4`; wall time from outside.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from collections.abc import Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHILD_ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    "NO_COLOR": "1",
}
CHILD_ENV.pop("GITHUB_ACTIONS", None)  # no CI annotations on the benchmark's stdout

# The emulator process: load the scenario, start on a free loopback port, write the
# credentials, print one JSON line, then serve until stdin closes (so it can never outlive us).
_EMULATOR_MAIN = r"""
import json, sys
from pathlib import Path
from mftrun.emulator import Emulator, load_scenario
emu = Emulator(load_scenario(sys.argv[1])).start()
env = emu.write_credentials(Path(sys.argv[2]))
print(json.dumps({"url": emu.url, "env": env}), flush=True)
sys.stdin.read()
emu.stop()
"""


@dataclass(frozen=True, slots=True)
class Task:
    """One step of a workload and the remote task behind it (simulated seconds)."""

    step_id: str
    task_id: str
    queue: float
    duration: float
    needs: tuple[str, ...] = ()
    # per start, in order (the scenario's `outcomes`): e.g. a second night that fails early
    outcomes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    tasks: tuple[Task, ...]
    speed: float = 1.0  # simulated seconds per real second
    max_parallel: int = 8
    poll: dict[str, float] = field(
        default_factory=lambda: {"interval": 0.2, "max_interval": 5.0, "factor": 1.5}
    )
    token_lifetime: float | None = None  # simulated seconds; None: the emulator's default (300 s)
    # one step with `for_each` over the task ids instead of one step per task (issue 16);
    # only for workloads without needs (a fan-out)
    for_each: bool = False

    def real(self, task: Task) -> float:
        return (task.queue + task.duration) / self.speed

    def critical_path(self) -> float:
        """Longest path of remote (queue + duration) times over the DAG, in real seconds."""
        finish: dict[str, float] = {}
        for task in self.tasks:  # generated in topological order
            finish[task.step_id] = max((finish[n] for n in task.needs), default=0.0) + self.real(
                task
            )
        return max(finish.values(), default=0.0)

    def subset(self, count: int) -> Workload:
        """The first `count` tasks with needs outside the subset dropped (for the slow baseline)."""
        keep = self.tasks[:count]
        ids = {t.step_id for t in keep}
        tasks = tuple(
            Task(t.step_id, t.task_id, t.queue, t.duration, tuple(n for n in t.needs if n in ids))
            for t in keep
        )
        return Workload(
            f"{self.name}[:{count}]",
            tasks,
            self.speed,
            self.max_parallel,
            self.poll,
            self.token_lifetime,
        )


def task_uuid(rng: random.Random) -> str:
    import uuid

    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# ----------------------------------------------------------------------------- workloads


def chain(n: int = 20, seconds: float = 1.0, **kw: Any) -> Workload:
    rng = random.Random(1)
    tasks = [
        Task(f"c{i:03d}", task_uuid(rng), 0.0, seconds, (f"c{i - 1:03d}",) if i else ())
        for i in range(n)
    ]
    return Workload(f"chain of {n} x {seconds:g}s", tuple(tasks), **kw)


def fan_out(n: int = 200, seconds: float = 2.0, **kw: Any) -> Workload:
    rng = random.Random(2)
    tasks = [Task(f"f{i:04d}", task_uuid(rng), 0.0, seconds) for i in range(n)]
    kw.setdefault("max_parallel", n)
    return Workload(f"fan-out of {n} x {seconds:g}s", tuple(tasks), **kw)


def fan_out_for_each(n: int = 200, seconds: float = 2.0, **kw: Any) -> Workload:
    """The same fan-out (same tasks, same durations) written as one for_each step."""
    same = fan_out(n, seconds, **kw)
    return replace(same, name=f"fan-out of {n} via for_each", for_each=True)


def random_dag(
    n: int = 1000, levels: int = 10, seed: int = 7, low: float = 0.5, high: float = 2.5, **kw: Any
) -> Workload:
    """`n` steps spread over `levels` random levels; each step past level 0 needs 1-3 random
    steps of earlier levels (at least one of the level just before, so depth is `levels`);
    remote durations uniform in [low, high] simulated seconds, queue 0-0.3 s."""
    rng = random.Random(seed)
    by_level: list[list[str]] = [[] for _ in range(levels)]
    tasks: list[Task] = []
    level_of = sorted(rng.randrange(levels) if i >= levels else i for i in range(n))
    for i, level in enumerate(level_of):
        sid = f"r{i:05d}"
        needs: list[str] = []
        if level:
            needs.append(rng.choice(by_level[level - 1]))
            earlier = [s for lv in by_level[:level] for s in lv]
            for _ in range(rng.randrange(3)):
                pick = rng.choice(earlier)
                if pick not in needs:
                    needs.append(pick)
        by_level[level].append(sid)
        tasks.append(
            Task(
                sid,
                task_uuid(rng),
                round(rng.uniform(0, 0.3), 3),
                round(rng.uniform(low, high), 3),
                tuple(needs),
            )
        )
    kw.setdefault("max_parallel", n)
    return Workload(f"random DAG of {n} steps ({levels} levels, seed {seed})", tuple(tasks), **kw)


def independent(n: int, seconds: float, *, seed: int = 3, **kw: Any) -> Workload:
    rng = random.Random(seed)
    tasks = [Task(f"s{i:05d}", task_uuid(rng), 0.0, seconds) for i in range(n)]
    kw.setdefault("max_parallel", n)
    return Workload(f"{n} independent x {seconds:g}s", tuple(tasks), **kw)


# ----------------------------------------------------------------------------- files


def scenario_dict(workload: Workload) -> dict[str, Any]:
    mft: dict[str, Any] = {
        "tasks": [
            {"id": t.task_id, "queue": t.queue, "duration": t.duration, "outcome": "success"}
            | ({"outcomes": list(t.outcomes)} if t.outcomes else {})
            for t in workload.tasks
        ]
    }
    if workload.token_lifetime is not None:
        mft["token_lifetime"] = workload.token_lifetime
    return {"seed": 11, "speed": workload.speed, "automate_mft": mft}


def pipeline_text(workload: Workload, url: str, key_file: str) -> str:
    """A pipeline as a user would write it, pointed at the emulator (JSON is valid YAML)."""
    if workload.for_each:
        return for_each_text(workload, url, key_file)
    steps = []
    for t in workload.tasks:
        step: dict[str, Any] = {"id": t.step_id, "start_task": t.task_id}
        if t.needs:
            step["needs"] = list(t.needs)
        steps.append(step)
    doc = {
        "version": 1,
        "name": workload.name,
        "environments": {
            "mft": {
                "provider": "automate-mft",
                "base_url": url,
                "credentials": {
                    "tenant_id": {"env": "MFT_TENANT_ID"},
                    "key_id": {"env": "MFT_KEY_ID"},
                    "private_key": {"file": key_file},
                },
            }
        },
        "defaults": {
            "environment": "mft",
            "timeout": "2h",
            "poll": {k: v for k, v in workload.poll.items()},
        },
        "max_parallel": workload.max_parallel,
        "steps": steps,
    }
    return json.dumps(doc, indent=1)


def for_each_text(workload: Workload, url: str, key_file: str) -> str:
    """The fan-out as one for_each step: each item is a task id (its instance `fan[<id>]`).
    Every mapping on one line (flow style), so the whole file is a handful of lines."""
    assert not any(t.needs for t in workload.tasks), "for_each workloads are fan-outs"
    env = {
        "provider": "automate-mft",
        "base_url": url,
        "credentials": {
            "tenant_id": {"env": "MFT_TENANT_ID"},
            "key_id": {"env": "MFT_KEY_ID"},
            "private_key": {"file": key_file},
        },
    }
    defaults = {"environment": "mft", "timeout": "2h", "poll": dict(workload.poll)}
    ids = json.dumps([t.task_id for t in workload.tasks])
    return "\n".join(
        [
            "version: 1",
            f"name: {json.dumps(workload.name)}",
            f"max_parallel: {workload.max_parallel}",
            f"environments: {{mft: {json.dumps(env)}}}",
            f"defaults: {json.dumps(defaults)}",
            "steps:",
            "  - id: fan",
            f"    for_each: {ids}",
            '    start_task: "{{ item }}"',
            "",
        ]
    )


# ----------------------------------------------------------------------------- emulator process


class EmulatorProcess:
    """`with EmulatorProcess(workload) as emu:` -> emu.url, emu.env, emu.journal()."""

    def __init__(self, workload: Workload, *, faults: list[dict[str, Any]] | None = None) -> None:
        self.workload = workload
        self.faults = faults or []  # scenario faults, e.g. latency on the token endpoint
        self._tmp = tempfile.TemporaryDirectory(prefix="mftrun-bench-")
        self.folder = Path(self._tmp.name)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.env: dict[str, str] = {}

    def __enter__(self) -> EmulatorProcess:
        scenario = self.folder / "scenario.json"  # JSON is YAML; the loader takes it as is
        doc = {**scenario_dict(self.workload), **({"faults": self.faults} if self.faults else {})}
        scenario.write_text(json.dumps(doc), encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EMULATOR_MAIN, str(scenario), str(self.folder / "creds")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
            cwd=str(ROOT),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError("the emulator process did not start")
        info = json.loads(line)
        self.url, self.env = info["url"], info["env"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        self._tmp.cleanup()

    def journal(self) -> dict[str, Any]:
        import requests

        return requests.get(f"{self.url}/_emulator/journal", timeout=60).json()

    def write_pipeline(self) -> Path:
        path = self.folder / "pipeline.yaml"
        path.write_text(
            pipeline_text(self.workload, self.url, self.env["MFT_PRIVATE_KEY_FILE"]),
            encoding="utf-8",
        )
        return path


# ----------------------------------------------------------------------------- running mftrun


@dataclass(frozen=True, slots=True)
class ProcessCost:
    wall: float  # seconds, measured from outside
    cpu: float  # user + system seconds of the child
    max_rss_mb: float
    exit_code: int
    t_start: float  # Unix time just before the child was spawned
    t_end: float
    output: str
    # (Unix time, CPU seconds so far) read from /proc/<pid>/stat every ~20 ms (Linux; else empty):
    # splits the CPU between start-up, the run itself and the reports at the end.
    cpu_samples: tuple[tuple[float, float], ...] = ()

    def cpu_at(self, when: float) -> float | None:
        """The child's CPU seconds at Unix time `when` (last sample at or before it)."""
        before = [cpu for t, cpu in self.cpu_samples if t <= when]
        return before[-1] if before else None


def run_measured(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 900
) -> ProcessCost:
    """Spawn, wait with wait4 (that child's own rusage), return its cost."""
    out = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - the child writes it; closed below
    t_start = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**CHILD_ENV, **(env or {})},
        cwd=str(ROOT),
        text=True,
    )
    deadline = t0 + timeout
    samples: list[tuple[float, float]] = []
    next_sample = 0.0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.perf_counter()
        if now > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        if now >= next_sample:
            cpu = _proc_cpu(proc.pid)
            if cpu is not None:
                samples.append((time.time(), cpu))
            next_sample = now + 0.02
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    t_end = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read()
    out.close()
    return ProcessCost(
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        proc.returncode,
        t_start,
        t_end,
        text,
        tuple(samples),
    )


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float | None:
    """utime + stime of a live process from /proc (10 ms resolution), None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15 of stat(5)
    except (OSError, IndexError, ValueError):
        return None


def apply_cost(
    emu: EmulatorProcess, *, report: bool = True, expect_failure: bool = False
) -> ProcessCost:
    """One `mftrun apply` of the workload (its state store next to the pipeline, so a second
    apply against the same emulator has the first one's history)."""
    pipeline = emu.write_pipeline()
    argv = [sys.executable, "-m", "mftrun", "apply", str(pipeline), "-q"]
    argv += ["--report-dir", str(emu.folder / "report")] if report else ["--no-report"]
    cost = run_measured(argv, env=emu.env)
    if cost.exit_code != (1 if expect_failure else 0):
        raise RuntimeError(f"mftrun apply exited {cost.exit_code}:\n{cost.output[-3000:]}")
    return cost


# ----------------------------------------------------------------------------- journal analysis


@dataclass(frozen=True, slots=True)
class Traffic:
    requests: int  # platform requests (the emulator's own /_emulator/ paths excluded)
    starts: int
    polls: int
    tokens: int
    connections: int
    first_request: float
    last_request: float
    notice_lags: tuple[float, ...]  # real seconds from a run's end to the first poll after it
    dispatch_lags: tuple[float, ...]  # real seconds from the last need noticed to the start sent
    polls_per_run: tuple[int, ...]
    start_spread: float = 0.0  # real seconds from the first start sent to the last


def analyse(journal: dict[str, Any], workload: Workload, *, journal_fetches: int = 1) -> Traffic:
    reqs = [r for r in journal["requests"] if r["platform"] in ("automate-mft", "acronis")]
    runs = {r["run_id"]: r for r in journal["runs"]}
    polls_by_run: dict[str, list[float]] = {}
    start_time: dict[str, float] = {}
    for r in reqs:
        if r["method"] == "GET" and r["path"].startswith("/v1/task-runs/"):
            polls_by_run.setdefault(r["path"].rsplit("/", 1)[1], []).append(r["time"])
        elif r["method"] == "POST" and r["path"].endswith("/start") and r["status"] == 200:
            start_time.setdefault(r["path"].split("/")[3], r["time"])
    notice: dict[str, float] = {}  # task id -> when mftrun (could have) learnt the end
    lags: list[float] = []
    for run_id, times in polls_by_run.items():
        run = runs.get(run_id)
        if run is None or run["ended"] is None:
            continue
        after = [t for t in times if t >= run["ended"]]
        if after:
            notice[run["task_id"]] = min(after)
            lags.append(min(after) - run["ended"])
    by_step = {t.step_id: t for t in workload.tasks}
    dispatch: list[float] = []
    for t in workload.tasks:
        if (
            t.needs
            and t.task_id in start_time
            and all(by_step[n].task_id in notice for n in t.needs)
        ):
            dispatch.append(
                start_time[t.task_id] - max(notice[by_step[n].task_id] for n in t.needs)
            )
    times = [r["time"] for r in reqs] or [0.0]
    return Traffic(
        requests=len(reqs),
        starts=sum(1 for r in reqs if r["method"] == "POST" and r["path"].endswith("/start")),
        polls=sum(len(v) for v in polls_by_run.values()),
        tokens=sum(journal["tokens_issued"].values()),
        connections=journal["connections"] - journal_fetches,
        first_request=min(times),
        last_request=max(times),
        notice_lags=tuple(lags),
        dispatch_lags=tuple(dispatch),
        polls_per_run=tuple(len(v) for v in polls_by_run.values()),
        start_spread=(max(start_time.values()) - min(start_time.values())) if start_time else 0.0,
    )


def stats(values: Iterable[float]) -> dict[str, float]:
    vals = sorted(values)
    if not vals:
        return {"n": 0}
    pick = lambda q: vals[min(len(vals) - 1, int(q * len(vals)))]  # noqa: E731
    return {
        "n": len(vals),
        "mean": sum(vals) / len(vals),
        "p50": pick(0.5),
        "p95": pick(0.95),
        "max": vals[-1],
    }


# ----------------------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": mem_gb,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


# ----------------------------------------------------------------------------- the plain script


def baseline_cost(
    workload: Workload, subset: int, *, poll: float = 5.0, accel: float = 1.0
) -> dict[str, Any]:
    """Run bench/baseline.py on the first `subset` tasks; extrapolate to the whole workload.

    The script is sequential, so its wall time is the sum over tasks of the remote
    time rounded up to its poll period plus a per-task overhead (token, start, new
    connections) that is measured on the subset. Requests, tokens and connections
    are per task, so they scale linearly. When `subset` covers the workload (and
    `accel` is 1), the figures are measured, not extrapolated.

    `poll` is in the workload's real seconds. `accel` > 1 runs the subset on an
    emulator `accel` times faster with the script polling `accel` times as often
    (same number of polls per task); only the per-task overhead is taken from that
    run, in real seconds, since signing a JWT and opening connections do not speed up.
    """
    part = workload.subset(min(subset, len(workload.tasks)))
    fast = replace(part, speed=part.speed * accel)
    with EmulatorProcess(fast) as emu:
        tasks_file = emu.folder / "tasks.json"
        tasks_file.write_text(json.dumps([t.task_id for t in fast.tasks]), encoding="utf-8")
        cost = run_measured(
            [
                sys.executable,
                str(ROOT / "bench" / "baseline.py"),
                "--base-url",
                emu.url,
                "--tasks",
                str(tasks_file),
                "--poll",
                repr(poll / accel),
            ],
            env=emu.env,
        )
        journal = emu.journal()
    if cost.exit_code != 0:
        raise RuntimeError(f"baseline exited {cost.exit_code}:\n{cost.output[-3000:]}")
    traffic = analyse(journal, fast)
    n, total = len(part.tasks), len(workload.tasks)

    def waited(w: Workload, period: float) -> float:
        return sum(period * max(1, -(-w.real(t) // period)) for t in w.tasks)

    overhead = (cost.wall - waited(fast, poll / accel)) / n
    scale = total / n
    measured = n == total and accel == 1.0
    return {
        "measured_tasks": n,
        "extrapolated": not measured,
        "accel": accel,
        "poll_s": poll,
        "wall_s": round(cost.wall if measured else waited(workload, poll) + overhead * total, 3),
        "measured_wall_s": round(cost.wall, 3),
        "overhead_per_task_s": round(overhead, 3),
        "cpu_s": round(cost.cpu * scale, 3),
        "requests": round(traffic.requests * scale),
        "requests_per_run": round(traffic.requests / n, 2),
        "polls": round(traffic.polls * scale),
        "polls_per_run": round(traffic.polls / n, 2),
        "token_requests": round(traffic.tokens * scale),
        "connections": round(traffic.connections * scale),
        "notice_lag_s": {k: round(v * accel, 3) for k, v in stats(traffic.notice_lags).items()},
    }
