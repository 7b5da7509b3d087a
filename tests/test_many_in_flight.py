"""10,000 remote runs in flight in one process (issue 13 section 6).

`max_parallel` was capped at 1,000 because a huge value locked `apply` up: the
connection pool was sized by it, and urllib3 allocates every slot when a pool is
created. These tests pin the cause away (pool and workers sized by the worker
count) and run 10,000 steps at once end to end, the emulator's journal as ground
truth. The memory figure (< 300 MB) is measured in bench/runner_cost.py, not here.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from mftrun.cli import main
from mftrun.concurrency import WORKERS_MAX, connection_pool_size, worker_count
from mftrun.emulator import Emulator, Scenario
from mftrun.http.session import HttpTransport

STEPS = 10_000
SPEED = 60  # emulated seconds per real second
DURATION = 1800  # emulated seconds: 30 s real, longer than sending 10,000 starts takes


def test_a_huge_max_parallel_sizes_threads_and_connections_by_the_workers():
    assert worker_count(1) == 2 and worker_count(8) == 8
    assert worker_count(10_000) == worker_count(10**11) == WORKERS_MAX
    transport = HttpTransport("http://127.0.0.1:9", max_parallel=10**11)
    try:
        adapter = transport._session.get_adapter("http://127.0.0.1:9/")
        # creating the pool for a host is where 10**11 slots used to be allocated
        pool = adapter.poolmanager.connection_from_url("http://127.0.0.1:9/")
        assert pool.pool.qsize() == connection_pool_size(10**11) == WORKERS_MAX
    finally:
        transport.close()


def test_ten_thousand_steps_in_flight_in_one_process(tmp_path: Path) -> None:
    ids = [f"00000000-0000-4000-a000-{i:012d}" for i in range(STEPS)]
    tasks = [{"id": t, "queue": 0, "duration": DURATION, "outcome": "success"} for t in ids]
    emu = Emulator(
        Scenario.from_dict(
            # a token of 10 emulated hours: one token for the run (the default 300 s lifetime
            # is 5 real seconds at this speed, renewed by design)
            {"seed": 5, "speed": SPEED, "automate_mft": {"tasks": tasks, "token_lifetime": 36_000}}
        )
    ).start()
    try:
        key = tmp_path / "mft.pem"
        key.write_text(emu.credentials.private_key_pem)
        doc = {
            "version": 1,
            "name": "ten-thousand",
            "environments": {
                "mft": {
                    "provider": "automate-mft",
                    "base_url": emu.url,
                    "credentials": {
                        "tenant_id": emu.credentials.tenant_id,
                        "key_id": emu.credentials.key_id,
                        "private_key": {"file": str(key)},
                    },
                }
            },
            # the first poll comes when the run has ended: one poll per run keeps the test short
            "defaults": {
                "environment": "mft",
                "timeout": "2h",
                "poll": {"interval": DURATION / SPEED, "max_interval": 60},
            },
            "max_parallel": STEPS,
            "steps": [{"id": f"s{i}", "start_task": t} for i, t in enumerate(ids)],
        }
        path = tmp_path / "p.yaml"
        path.write_text(json.dumps(doc))  # JSON is YAML
        threads, done = [threading.active_count()], threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                threads.append(threading.active_count())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = main(
                ["apply", str(path), "-q", "--no-state", "--report", "json"]
                + ["--report-dir", str(tmp_path / "r")]
            )
        finally:
            done.set()
            sampler.join()
        assert code == 0
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        assert [s["status"] for s in report["steps"]] == ["success"] * STEPS
        runs = emu.journal.runs
        assert len(runs) == STEPS and {r.task_id for r in runs} == set(ids)
        assert all(emu.journal.starts(t) == 1 for t in ids)
        # every run was started before the first one ended: all 10,000 were in flight at once
        assert max(r.started for r in runs) < min(r.ended or 0.0 for r in runs)
        assert emu.journal.tokens_issued("automate-mft") == 1
        # a waiting run is a heap entry: the threads are the workers (+ the sampler, the login
        # check's one), never one per run; the connections are one per worker at most
        assert max(threads) - threads[0] <= WORKERS_MAX + 2
        assert emu.journal.connections <= WORKERS_MAX + 2
    finally:
        emu.stop()
