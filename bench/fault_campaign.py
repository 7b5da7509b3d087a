"""The fault campaign at scale: `.venv/bin/python bench/fault_campaign.py --runs 1000`.

Random pipelines of 5-30 steps through the tests' fault-injecting proxy in front of the
emulator, some with a random SIGINT/SIGTERM, each checked against the emulator's journal and
the reports (tests/campaign.py says which invariants). Prints the figures as JSON: runs,
faults injected by kind, exit codes, violations (each with its seed, to replay one:
`--runs 1 --seed SEED`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from campaign import campaign, figures  # noqa: E402 - after the path set-up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="the first run's seed")
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mftrun-campaign-") as folder:
        outcomes = campaign(args.runs, args.seed, Path(folder), parallel=args.parallel)
    result = figures(outcomes)
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
