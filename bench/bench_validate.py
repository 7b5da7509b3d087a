"""Validate a generated 10,000-step pipeline; print wall time and peak memory.

Targets (issue 2): under 2 s and under 200 MB. Each measurement runs in a fresh
subprocess so imports, schema compilation and the peak RSS are all counted.

    python bench/bench_validate.py [--steps N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEADER = """\
version: 1
name: bench-{steps}
environments:
  mft:
    provider: automate-mft
    region: eu
    credentials:
      tenant_id: {{env: MFT_TENANT_ID}}
      key_id: {{env: MFT_KEY_ID}}
      private_key: {{file: ~/.config/mftrun/mft.pem}}
  backup:
    provider: acronis
    base_url: https://eu2-cloud.acronis.com
    credentials:
      client_id: {{env: ACRONIS_CLIENT_ID}}
      client_secret: {{env: ACRONIS_CLIENT_SECRET}}
defaults:
  environment: mft
  timeout: 30m
  poll: {{interval: 2s, max_interval: 30s}}
max_parallel: 64
steps:
"""


def generate(steps: int) -> str:
    """Layers of 100 steps; each step needs one or two steps of the previous layer, a
    tenth read an upstream output through a template, every 50th waits on backups."""
    rng_ids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(steps)]
    out = [HEADER.format(steps=steps)]
    width = 100
    for i in range(steps):
        sid = f"s{i:05d}"
        lines = [f"  - id: {sid}"]
        if i % 50 == 49:
            lines += [
                "    environment: backup",
                "    wait_tasks:",
                "      state: [started, paused]",
                f"      policyName: 'nightly-{i}'",
            ]
        elif i % 10 == 3 and i >= width:
            lines += [
                "    start_task:",
                f"      task_id: {rng_ids[i]}",
                "      parameters:",
                f'        FileMask: "{{{{ steps.s{i - width:05d}.outputs.mask }}}}"',
            ]
        else:
            lines.append(f"    start_task: {rng_ids[i]}")
        if i >= width:
            needs = [f"s{i - width:05d}"]
            if i % 3 == 0:
                needs.append(f"s{i - width + 1:05d}")
            lines.append(f"    needs: [{', '.join(needs)}]")
        if i % 10 == 3:
            lines += ["    outputs:", '      mask: "{{ result.run_id }}-*.csv"']
        if i % 7 == 0:
            lines.append("    retries: {attempts: 1, delay: 30s}")
        out.append("\n".join(lines) + "\n")
    return "".join(out)


CHILD = textwrap.dedent("""
    import json, resource, sys, time
    t0 = time.perf_counter()
    from mftrun.cli import main
    code = main(["validate", "--format", "json", sys.argv[1]])
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = usage.ru_maxrss / 1024  # KiB -> MiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"code": code, "wall": wall, "cpu": cpu, "rss_mb": rss}), file=sys.stderr)
""")


def measure(path: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, path],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"validate failed:\n{proc.stdout[-2000:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    text = generate(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        runs = [measure(path) for _ in range(args.runs)]
    walls = [r["wall"] for r in runs]
    cpus = [r["cpu"] for r in runs]
    peak = max(r["rss_mb"] for r in runs)
    print(
        f"validate {args.steps} steps ({len(text) / 1e6:.1f} MB of YAML), {args.runs} runs "
        f"in fresh processes"
    )
    print(
        f"  wall time: median {statistics.median(walls):.2f} s, "
        f"min {min(walls):.2f} s, max {max(walls):.2f} s   (target < 2 s)"
    )
    print(
        f"  CPU time:  median {statistics.median(cpus):.2f} s (whole process, incl. "
        f"interpreter start; robust when other jobs share the cores)"
    )
    print(f"  load average during the runs: {os.getloadavg()[0]:.2f}")
    print(f"  peak RSS:  {peak:.0f} MB   (target < 200 MB)")


if __name__ == "__main__":
    main()
