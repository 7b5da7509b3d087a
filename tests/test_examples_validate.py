"""Every shipped example validates, and the issue's example is shipped unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from mftrun.cli import main
from mftrun.plan import build_plan
from mftrun.validation import load_pipeline

EXAMPLES = Path(__file__).parent.parent / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yml"))

ISSUE_EXAMPLE = """\
# yaml-language-server: $schema=../schemas/pipeline.schema.json
version: 1
name: nightly-exchange
description: Wait for backups, pull partner orders, push invoices, alert on failure.

environments:
  mft:
    provider: automate-mft
    region: us                  # us | eu | staging; or base_url: https://...
    credentials:
      tenant_id: {env: MFT_TENANT_ID}
      key_id: {env: MFT_KEY_ID}            # the "Public Key ID" (JWT kid)
      private_key: {file: ~/.config/mftrun/mft.pem}
  backup:
    provider: acronis
    base_url: https://eu2-cloud.acronis.com
    credentials:
      client_id: {env: ACRONIS_CLIENT_ID}
      client_secret: {env: ACRONIS_CLIENT_SECRET}

defaults:
  environment: mft
  timeout: 30m
  poll: {interval: 2s, max_interval: 30s}

steps:
  - id: backups-settled
    environment: backup
    wait_tasks:
      state: [started, paused]
    timeout: 2h

  - id: pull-orders
    start_task: 02115928-16fe-4493-949b-d77d302a88ee
    needs: [backups-settled]
    retries: {attempts: 2, delay: 1m}

  - id: push-invoices
    start_task: 6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f
    needs: [pull-orders]
    timeout: 15m

  - id: archive
    start_task: 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
    needs: [pull-orders]
    continue_on_error: true

  - id: notify-failure
    start_task: 0f1e2d3c-4b5a-4697-8887-a6b5c4d3e2f1
    needs: [push-invoices, archive]
    run_if: failure
"""


def test_the_issue_example_is_shipped_unchanged() -> None:
    assert (EXAMPLES / "nightly-exchange.yaml").read_text() == ISSUE_EXAMPLE


def test_there_is_one_example_per_feature() -> None:
    assert len(FILES) >= 6


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_validates_and_plans(path: Path) -> None:
    pipeline = load_pipeline(path)
    plan = build_plan(pipeline)
    assert sorted(plan.order) == sorted(step.id for step in pipeline.steps)


def test_validate_examples_folder_exits_0(capsys: object) -> None:
    assert main(["validate", str(EXAMPLES)]) == 0
