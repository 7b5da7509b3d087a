"""Benchmark the emulator: request rate and latency with 100 concurrent keep-alive
clients, and memory with 10,000 Automate MFT runs in flight.

The emulator runs in its own process (`mftrun emulate`), as a user would run it,
so its CPU and memory are measured apart from the load generator. The load
generator is a lean asyncio HTTP/1.1 client (raw streams, one connection per
client, requests back to back) so that it, not `requests`, is not the bottleneck.

    python bench/bench_emulator.py [--clients 100] [--seconds 5] [--runs 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = "b0000000-0000-4000-8000-000000000001"
SCENARIO = f"""
speed: 1
automate_mft:
  token_lifetime: 10h
  tasks:
    - id: {TASK}
      name: Long transfer
      queue: 10s
      duration: 10h
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return status, body


def raw_request(
    method: str, path: str, port: int, token: str | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if token:
        lines.append(f"Authorization: bearer {token}")
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def load(
    port: int, raws: list[bytes], clients: int, seconds: float
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = i
        while time.monotonic() < stop_at:
            begin = time.perf_counter()
            status, _ = await request(reader, writer, raws[n % len(raws)])
            latencies.append(time.perf_counter() - begin)
            errors += status != 200
            n += clients
        writer.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return len(latencies), latencies, errors


async def start_runs(port: int, token: str, count: int, clients: int) -> list[str]:
    import json

    ids: list[str] = []
    raw = raw_request("POST", f"/v1/tasks/{TASK}/start", port, token, b'{"FileMask": "*.csv"}')
    per_client = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(n):
            status, body = await request(reader, writer, raw)
            assert status == 200, body
            ids.append(json.loads(body)["id"])
        writer.close()

    await asyncio.gather(*(client(n) for n in per_client))
    return ids


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> int:
    import jwt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        scenario = Path(tmp) / "scenario.yaml"
        scenario.write_text(SCENARIO)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mftrun",
                "emulate",
                "--scenario",
                str(scenario),
                "--credentials-dir",
                str(Path(tmp) / "creds"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            port = 0
            assert proc.stdout is not None
            for line in proc.stdout:
                match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if match:
                    port = int(match.group(1))
                if "Ctrl-C" in line:
                    break
            env = dict(
                re.findall(r"export (\w+)=(\S+)", (Path(tmp) / "creds" / "env.sh").read_text())
            )
            url = f"http://127.0.0.1:{port}"
            now = int(time.time())
            assertion = jwt.encode(
                {
                    "iss": env["MFT_TENANT_ID"],
                    "sub": env["MFT_TENANT_ID"],
                    "aud": f"{url}/v1/oauth/token",
                    "exp": now + 240,
                    "iat": now,
                    "nbf": now,
                    "jti": str(uuid.uuid4()),
                },
                Path(env["MFT_PRIVATE_KEY_FILE"].strip("'")).read_text(),
                algorithm="ES256",
                headers={"kid": env["MFT_KEY_ID"]},
            )
            import requests

            token = requests.post(
                f"{url}/v1/oauth/token",
                timeout=10,
                json={
                    "grant_type": "client_credentials",
                    "client_assertion_type": (
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    ),
                    "client_assertion": assertion,
                },
            ).json()["access_token"]

            print(
                f"emulator pid {proc.pid} on {url}; {os.cpu_count()} CPUs; {args.clients} "
                "keep-alive clients"
            )
            idle_rss = rss_kib(proc.pid)

            # 1. Request rate: the realistic call (a poll of a run, authenticated)
            #    and a trivial one.
            run_ids = asyncio.run(start_runs(port, token, 100, 10))
            for label, raws in (
                (
                    "GET /v1/task-runs/{id} (bearer)",
                    [raw_request("GET", f"/v1/task-runs/{r}", port, token) for r in run_ids],
                ),
                ("GET /_emulator/health", [raw_request("GET", "/_emulator/health", port)]),
            ):
                cpu0 = cpu_seconds(proc.pid)
                begin = time.monotonic()
                count, latencies, errors = asyncio.run(load(port, raws, args.clients, args.seconds))
                elapsed = time.monotonic() - begin
                cpu = cpu_seconds(proc.pid) - cpu0
                print(
                    f"{label}: {count / elapsed:,.0f} req/s over {elapsed:.1f}s ({count:,} "
                    "requests, "
                    f"{errors} non-200); latency p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                    f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, p99 "
                    f"{percentile(latencies, 0.99) * 1000:.1f} ms, "
                    f"mean {statistics.fmean(latencies) * 1000:.1f} ms; emulator CPU "
                    f"{cpu / elapsed:.0%} of one core"
                )

            # 2. Single-client latency: the Nagle/delayed-ACK stall would show here as ~40 ms.
            count, latencies, _ = asyncio.run(
                load(port, [raw_request("GET", "/_emulator/health", port)], 1, 1.0)
            )
            print(
                f"one keep-alive client: {count:,} requests in 1 s, p50 "
                f"{percentile(latencies, 0.5) * 1000:.2f} ms, "
                f"max {max(latencies) * 1000:.2f} ms"
            )

            # 3. Memory with N runs in flight (the journal keeps one entry per request too).
            before = rss_kib(proc.pid)
            begin = time.monotonic()
            asyncio.run(start_runs(port, token, args.runs, args.clients))
            elapsed = time.monotonic() - begin
            after = rss_kib(proc.pid)
            in_flight = requests.get(f"{url}/_emulator/journal", timeout=60).json()["runs"]
            running = sum(1 for r in in_flight if r["status"] in ("queued", "running"))
            print(
                f"{args.runs:,} runs started in {elapsed:.1f}s ({args.runs / elapsed:,.0f}/s); "
                f"{running:,} in flight; emulator RSS idle {idle_rss / 1024:.1f} MiB, "
                f"before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB "
                f"(+{(after - before) / 1024:.1f} MiB, "
                f"~{(after - before) * 1024 / args.runs:,.0f} bytes per run "
                f"incl. its journal entries)"
            )
        finally:
            proc.send_signal(2)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
