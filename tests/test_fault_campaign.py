"""The seeded fault campaign at CI size (see tests/campaign.py; 1,000 runs:
`.venv/bin/python bench/fault_campaign.py --runs 1000`)."""

from __future__ import annotations

import os

from campaign import campaign, figures

RUNS = int(os.environ.get("MFTRUN_CAMPAIGN_RUNS", "8"))
FIRST_SEED = int(os.environ.get("MFTRUN_CAMPAIGN_SEED", "1000"))


def test_seeded_fault_campaign_keeps_every_invariant(tmp_path):
    outcomes = campaign(RUNS, FIRST_SEED, tmp_path)
    result = figures(outcomes)
    assert result["runs"] == RUNS
    assert result["faults_total"] > 0, "the proxy must really have injected faults"
    assert result["violations"] == [], "\n".join(result["violations"])
