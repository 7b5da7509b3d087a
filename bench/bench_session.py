"""The shared authenticated session under load: latency, throughput, token requests.

Runs an in-process emulator (so absolute numbers include the emulator's share
of this machine's CPU and the interpreter lock: they are a floor, not a ceiling)
and prints:

1. sequential authenticated GETs through one session: per-call latency;
2. N task runs started and polled to the end by a pool of W threads sharing one
   session: wall time, requests/s, token requests (must be 1);
3. tokens revoked while W threads poll: token requests after the revocation
   (must be exactly 1 more).

    python bench/bench_session.py [--runs N] [--workers W] [--calls C]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mftrun.credentials import Redactor  # noqa: E402 - after the sys.path fix above
from mftrun.emulator import Emulator, Scenario  # noqa: E402 - after the sys.path fix above
from mftrun.http.retry import DEFAULT_POLICIES  # noqa: E402 - after the sys.path fix above
from mftrun.model import CredentialRef, Environment  # noqa: E402 - after the sys.path fix above
from mftrun.providers.registry import create_provider  # noqa: E402 - after the sys.path fix above

TASK = "02115928-16fe-4493-949b-d77d302a88ee"


class Ctx:
    step_id = "bench"

    def evaluate(self, expression, **names):  # not used: no `until` here
        raise AssertionError


def environment(emu: Emulator, folder: Path) -> Environment:
    paths = emu.write_credentials(folder)
    return Environment(
        "mft",
        "automate-mft",
        emu.url,
        {
            "tenant_id": CredentialRef("value", emu.credentials.tenant_id),
            "key_id": CredentialRef("value", emu.credentials.key_id),
            "private_key": CredentialRef("file", paths["MFT_PRIVATE_KEY_FILE"]),
        },
        http_timeout=30.0,
    )


def sequential(calls: int, folder: Path) -> None:
    with Emulator(Scenario.default()) as emu:
        provider = create_provider(environment(emu, folder), redactor=Redactor())
        provider.check()  # token and connection first
        samples = []
        for _ in range(calls):
            began = time.perf_counter()
            provider.request("GET", "/v1/licenses/current", policy=DEFAULT_POLICIES.read)
            samples.append((time.perf_counter() - began) * 1000)
        samples.sort()
        print(
            f"sequential GETs        : {calls} calls, median {statistics.median(samples):.2f} ms, "
            f"p95 {samples[int(len(samples) * 0.95)]:.2f} ms, "
            f"{provider.stats()['token_requests']} token request"
        )
        provider.close()


def many_runs(runs: int, workers: int, folder: Path, *, revoke_at: float | None = None) -> None:
    # Token lifetime long enough that only a revocation renews it (the emulator scales it by speed).
    data = {
        "speed": 100,
        "automate_mft": {
            "token_lifetime": "100000s",
            "tasks": [{"id": TASK, "queue": "2s", "duration": "20s"}],
        },
    }
    if revoke_at is not None:
        data["faults"] = [{"kind": "revoke_tokens", "at": f"{revoke_at * 100:g}s"}]
    with Emulator(Scenario.from_dict(data)) as emu:
        provider = create_provider(
            environment(emu, folder), redactor=Redactor(), max_parallel=workers
        )
        done = threading.Semaphore(0)
        failures: list[str] = []
        began = time.perf_counter()

        def one() -> None:
            try:
                handle, obs = provider.start("start_task", {"task_id": TASK}, Ctx())
                while not obs.terminal:
                    time.sleep(0.05)  # the executor's poll interval, scaled down
                    obs = provider.poll(handle, Ctx())
                if obs.state != "success":
                    failures.append(obs.message or obs.state)
            except Exception as exc:  # noqa: BLE001
                failures.append(str(exc))
            finally:
                done.release()

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in range(runs):
                pool.submit(one)
            for _ in range(runs):
                done.acquire()
        wall = time.perf_counter() - began
        stats = provider.stats()
        label = "runs, tokens revoked  " if revoke_at is not None else "runs to the end        "
        print(
            f"{label}: {runs} runs x {workers} threads in {wall:.2f} s, "
            f"{stats['http_requests']} requests ({stats['http_requests'] / wall:.0f}/s), "
            f"token requests {stats['token_requests']} (emulator issued "
            f"{emu.journal.tokens_issued('automate-mft')}), failures {len(failures)}"
        )
        if failures:
            print("  first failure:", failures[0][:200])
        provider.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sequential(args.calls, Path(folder))
        many_runs(args.runs, args.workers, Path(folder))
        many_runs(args.runs, args.workers, Path(folder), revoke_at=0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
