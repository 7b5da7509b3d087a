"""The seeded fault campaign: random pipelines through the fault proxy, checked against the
emulator's journal and the reports (issue 15). Used by tests/test_fault_campaign.py at a small
size and by bench/fault_campaign.py at 1,000 runs.

One run: a seeded random pipeline of 5-30 steps (start_task, wait_tasks, http; needs, run_if,
timeouts, retries), a real `python -m mftrun apply` process talking to the emulator through
`FaultProxy`, sometimes a SIGINT or SIGTERM at a random moment. Then every invariant:

- never start twice: a task is started at most once per recorded attempt, and a retry only
  follows an attempt the platform said failed;
- a step that ended sends nothing more: no request for its task or its runs reaches the proxy
  after the step's end;
- every run the platform started is accounted for in the report: an attempt names it, or it
  is listed in remote_may_continue (by id, or as "unknown run of task ...");
- reports are written (JSON valid against its schema, JUnit parses, HTML present; none only
  when a signal stopped mftrun before the run began, and then nothing was started: as
  docs/reports.md says), no step is left pending or running, and the exit code is the
  report's and agrees with the steps and the signal.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema

from fault_proxy import FaultProxy
from mftrun.emulator import Emulator, Scenario
from mftrun.reports import report_schema

SLACK = 0.25  # seconds: a request already on the wire when the step ended may land just after
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    seed: int
    steps: int
    exit_code: int
    signal: str | None
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


def task_id(seed: int, index: int) -> str:
    return f"{seed % 10**8:08d}-0000-4000-9000-{index:012d}"


def random_pipeline(rng: random.Random, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(steps, Automate MFT tasks, Acronis tasks) for one run."""
    count = rng.randint(5, 30)
    steps: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    backups: list[dict[str, Any]] = []
    for i in range(count):
        step: dict[str, Any] = {"id": f"s{i}"}
        earlier = [s["id"] for s in steps]
        if earlier and rng.random() < 0.6:
            step["needs"] = rng.sample(earlier, min(len(earlier), rng.randint(1, 2)))
            step["run_if"] = rng.choices(["success", "failure", "always"], [8, 1, 1])[0]
        kind = rng.choices(["start", "wait", "http"], [8, 1, 1])[0]
        if kind == "start":
            outcome = rng.choices(["success", "failed", "stuck"], [7, 2, 1])[0]
            ident = task_id(seed, i)
            tasks.append(
                {
                    "id": ident,
                    "queue": 0,
                    "duration": round(rng.uniform(0.1, 1.2), 2),
                    "outcome": outcome,
                }
            )
            step["start_task"] = ident
            if outcome == "stuck" or rng.random() < 0.3:
                step["timeout"] = round(rng.uniform(0.5, 3.0), 2)
            if rng.random() < 0.25:
                step["retries"] = {"attempts": rng.randint(1, 2), "delay": 0.2}
        elif kind == "wait":
            tag = f"t{i}"
            backups.append(
                {
                    "type": "backup",
                    "started": "-1s",
                    "completed": f"{rng.uniform(0.2, 1.5):.2f}s",
                    "result": rng.choice(["ok", "ok", "warning", "error"]),
                    "tags": [tag],
                }
            )
            step.update(environment="backup", wait_tasks={"tag": tag}, timeout=8)
            if rng.random() < 0.3:
                step["retries"] = {"attempts": 1, "delay": 0.2}
        else:
            step["http"] = {"method": "GET", "path": "/v1/licenses/current"}
        steps.append(step)
    return steps, tasks, backups


def run_one(seed: int, workdir: Path, *, signals: bool = True, rate: float = 0.15) -> Outcome:
    rng = random.Random(seed)
    steps, tasks, backups = random_pipeline(rng, seed)
    scenario = {
        "seed": seed,
        "speed": 1,
        "automate_mft": {"tasks": tasks},
        "acronis": {"tasks": backups},
    }
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (
        Emulator(Scenario.from_dict(scenario)) as emu,
        FaultProxy(emu.port, seed=seed, rate=rate, delay=1.5) as proxy,
    ):
        key = workdir / "k.pem"
        key.write_text(emu.credentials.private_key_pem or "")
        os.chmod(key, 0o600)
        doc = {
            "version": 1,
            "name": f"campaign-{seed}",
            "max_parallel": 8,
            "environments": {
                "mft": {
                    "provider": "automate-mft",
                    "base_url": proxy.url,
                    "timeout": 1,  # read timeout: the proxy's delays trip it
                    "credentials": {
                        "tenant_id": emu.credentials.tenant_id,
                        "key_id": emu.credentials.key_id,
                        "private_key": {"file": str(key)},
                    },
                },
                "backup": {
                    "provider": "acronis",
                    "base_url": proxy.url,
                    "timeout": 1,
                    "credentials": {
                        "client_id": emu.credentials.client_id,
                        "client_secret": {"env": "CAMPAIGN_SECRET"},
                    },
                },
            },
            "defaults": {"environment": "mft", "poll": {"interval": 0.1, "max_interval": 0.4}},
            "timeout": 40,
            "steps": steps,
        }
        path = workdir / "p.yaml"
        path.write_text(json.dumps(doc))
        report = workdir / "r"
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "CAMPAIGN_SECRET": emu.credentials.client_secret,
            "MFTRUN_STATE": str(workdir / "state.db"),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        env.pop("GITHUB_ACTIONS", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "mftrun", "apply", str(path), "--report-dir", str(report)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        sent: str | None = None
        if signals and rng.random() < 0.35:
            signum = rng.choice([signal.SIGINT, signal.SIGTERM])
            try:
                proc.communicate(timeout=rng.uniform(0.3, 5.0))
            except subprocess.TimeoutExpired:
                proc.send_signal(signum)
                sent = signum.name
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        outcome = Outcome(seed, len(steps), proc.returncode, sent)
        time.sleep(SLACK)
        outcome.faults = Counter(proxy.summary())
        outcome.violations = check(proc.returncode, sent, steps, report, emu, proxy, err)
    outcome.seconds = time.monotonic() - started
    return outcome


def check(
    code: int,
    sent: str | None,
    steps: list[dict],
    report: Path,
    emu: Emulator,
    proxy: FaultProxy,
    err: str,
) -> list[str]:
    bad: list[str] = []
    if "Traceback" in err:
        bad.append(f"traceback on stderr: {err[-400:]}")
    if sent and code in (130, 143) and not (report / "report.json").exists():
        # Interrupted before the run began (loading, lock, credentials): as documented, no
        # report then, and nothing may have been sent to a platform.
        if any(s.method != "GET" and not s.path.endswith("/token") for s in proxy.seen):
            bad.append("interrupted during start-up without a report, but a start was sent")
        return bad
    try:
        data = json.loads((report / "report.json").read_text())
        jsonschema.Draft202012Validator(report_schema()).validate(data)
        ET.parse(report / "junit.xml")
        if not (report / "report.html").is_file():
            bad.append("report.html missing")
    except (OSError, ValueError, jsonschema.ValidationError, ET.ParseError) as exc:
        return [*bad, f"reports not written or invalid (exit {code}): {exc}"]
    if data["exit_code"] != code:
        bad.append(f"exit code {code} but report.json says {data['exit_code']}")
    by_id = {s["id"]: s for s in data["steps"]}
    if data["interrupted"]:
        want = 143 if sent == "SIGTERM" else 130
        if sent is None or code != want:
            bad.append(f"interrupted: exit {code}, signal {sent}")
    else:
        codes = set()
        for s in data["steps"]:
            if s["conclusion"] == "error":
                codes.add(3)
            elif s["conclusion"] in ("failed", "timed_out", "cancelled"):
                codes.add(1)
        if data.get("message") and "whole-run timeout" in data["message"]:
            codes.add(1)
        expected = 3 if 3 in codes else 1 if 1 in codes else 0
        if code != expected:
            bad.append(f"exit {code} but the steps say {expected}")
    runs_by_task: dict[str, list[Any]] = {}
    for run in emu.journal.runs:
        runs_by_task.setdefault(run.task_id, []).append(run)
    for step in steps:
        got = by_id.get(step["id"])
        if got is None:
            bad.append(f"{step['id']}: missing from the report")
            continue
        if got["status"] in ("pending", "running"):
            bad.append(f"{step['id']}: left {got['status']}")
        if "start_task" not in step:
            if "wait_tasks" in step and got["outcome"] == "success":
                codes_seen = (got.get("outputs") or {}).get("result_codes") or {}
                if any(c not in ("ok", "warning") for c in codes_seen.values()):
                    bad.append(f"{step['id']}: a wait succeeded over a failed backup")
            continue
        task = step["start_task"]
        attempts = got["attempts"]
        starts = emu.journal.starts(task)
        if starts > max(1, len(attempts)):
            bad.append(f"{step['id']}: started {starts} times in {len(attempts)} attempt(s)")
        for a, b in zip(attempts, attempts[1:], strict=False):
            if a["status"] != "failed":
                bad.append(f"{step['id']}: attempt {b['number']} after a {a['status']} attempt")
        named = {a["run_id"] for a in attempts if a.get("run_id")}
        going = set(got["remote_may_continue"])
        unknown = f"unknown run of task {task}" in going
        for run in runs_by_task.get(task, []):
            if run.run_id not in named and run.run_id not in going and not unknown:
                bad.append(f"{step['id']}: run {run.run_id} of task {task} unaccounted for")
        if got.get("ended_at"):
            ended = datetime.fromisoformat(got["ended_at"]).timestamp()
            run_ids = {r.run_id for r in runs_by_task.get(task, [])}
            late = [
                s
                for s in proxy.seen
                if s.time > ended + SLACK and (task in s.path or any(r in s.path for r in run_ids))
            ]
            if late:
                first = late[0]
                bad.append(
                    f"{step['id']}: {first.method} {first.path} sent "
                    f"{first.time - ended:.2f}s after the step ended"
                )
    return bad


def campaign(runs: int, first_seed: int, workdir: Path, *, parallel: int = 2) -> list[Outcome]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(parallel) as pool:
        return list(
            pool.map(
                lambda seed: run_one(seed, workdir / f"run-{seed}"),
                range(first_seed, first_seed + runs),
            )
        )


def figures(outcomes: list[Outcome]) -> dict[str, Any]:
    faults: Counter[str] = Counter()
    for o in outcomes:
        faults.update(o.faults)
    return {
        "runs": len(outcomes),
        "steps": sum(o.steps for o in outcomes),
        "signalled": sum(1 for o in outcomes if o.signal),
        "exit_codes": dict(sorted(Counter(o.exit_code for o in outcomes).items())),
        "faults": dict(sorted(faults.items())),
        "faults_total": sum(faults.values()),
        "violations": [f"seed {o.seed}: {v}" for o in outcomes for v in o.violations],
        "seconds_per_run": round(sum(o.seconds for o in outcomes) / max(1, len(outcomes)), 2),
    }
