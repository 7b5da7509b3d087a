"""A big run at a glance: groups, the critical path, the final summary and CI summaries."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Any

from rich.console import Console

from mftrun.reports import overview
from mftrun.reports.github import markdown_summary
from mftrun.reports.junit import render_junit
from mftrun.reports.summary import print_summary

T0 = datetime(2026, 12, 3, 22, 0, tzinfo=timezone.utc)


def step(
    sid: str, start: float, seconds: float, status: str = "success", **extra: Any
) -> dict[str, Any]:
    return {
        "id": sid,
        "status": status,
        "outcome": status,
        "conclusion": status,
        "environment": "mft",
        "action": "start_task",
        "attempts": [{"number": 1}] if status != "skipped" else [],
        "started_at": (T0 + timedelta(seconds=start)).isoformat(),
        "ended_at": (T0 + timedelta(seconds=start + seconds)).isoformat(),
        "duration": seconds if status != "skipped" else 0.0,
        **extra,
    }


def night(pairs: int = 120, *, failing: int | None = 7) -> dict[str, Any]:
    """pull-i then push-i (needs pull-i), then report (needs every push)."""
    steps = []
    for i in range(pairs):
        steps.append(step(f"pull-{i:03d}", 0, 100 if i == 42 else 10 + i % 5))
    for i in range(pairs):
        begin = 100 if i == 42 else 10 + i % 5
        status = "failed" if i == failing else "success"
        extra = {"error": "sftp: permission denied"} if status == "failed" else {}
        steps.append(
            step(
                f"push-{i:03d}",
                begin,
                50 if i == 42 else 5,
                status,
                needs=[f"pull-{i:03d}"],
                **extra,
            )
        )
    pushes = [f"push-{i:03d}" for i in range(pairs)]
    if failing is None:
        steps.append(step("report", 150, 20, needs=pushes))
    else:
        steps.append(
            step("report", 150, 0, "skipped", needs=pushes, skipped_reason="needs did not succeed")
        )
    totals = {"success": 0, "failed": 0, "skipped": 0}
    for s in steps:
        totals[s["status"]] += 1
    return {
        "pipeline": "big-night",
        "file": "night.yaml",
        "started_at": T0.isoformat(),
        "ended_at": (T0 + timedelta(seconds=170)).isoformat(),
        "duration": 170.0,
        "exit_code": 1 if failing is not None else 0,
        "totals": totals,
        "steps": steps,
    }


def test_groups_follow_for_each_and_shared_id_prefixes() -> None:
    assert overview.group_key("push[acme]") == "push"
    assert overview.group_key("push[acme-eu]") == "push"
    assert overview.group_key("pull-017") == overview.group_key("pull_eu") == "pull"
    assert overview.group_key("report") == "report"
    steps = [{"id": i} for i in ("pull-1", "push[a]", "pull_2", "report", "push[b]")]
    groups = overview.groups(steps)
    assert [(g.key, [s["id"] for s in g.steps]) for g in groups] == [
        ("pull", ["pull-1", "pull_2"]),
        ("push", ["push[a]", "push[b]"]),
        (None, ["report"]),  # a key of one step is no group
    ]


def test_the_critical_path_is_the_chain_that_released_the_last_step() -> None:
    links, seconds = overview.critical_path(night(failing=None))
    assert [link.id for link in links] == ["pull-042", "push-042", "report"]
    assert seconds == 170.0
    assert links[-1].waited == 0.0 and links[1].duration == 50
    # without needs (an older report) the chain is the step that ended last alone
    old = night(failing=None)
    for s in old["steps"]:
        s.pop("needs", None)
    assert [link.id for link in overview.critical_path(old)[0]] == ["report"]


def test_troubled_puts_failures_first_and_history_marks_slow_steps() -> None:
    report = night()
    assert [s["id"] for s in overview.troubled(report["steps"])] == ["push-007", "report"]
    slow = step("x", 0, 40, history={"runs": 9, "p50_s": 10.0, "p95_s": 30.0, "max_s": 45.0})
    assert overview.slower_than_usual(slow) == 30.0
    assert overview.slower_than_usual({**slow, "duration": 29.0}) is None
    assert overview.slower_than_usual(step("y", 0, 40)) is None


def test_the_final_summary_of_a_big_night_fits_a_screen() -> None:
    out = io.StringIO()
    print_summary(night(), console=Console(file=out, width=120, no_color=True))
    lines = out.getvalue().splitlines()
    assert len(lines) <= 12
    assert lines[0] == "mftrun · big-night  (241 steps)"
    assert (
        "critical path (2m30s, the chain that set the duration): pull-042 1m40s → push-042 50s"
        in lines[1]
    )
    assert lines[2].startswith("  slowest: pull-042 1m40s, push-042 50s")
    assert "✗ push-007 failed: sftp: permission denied" in out.getvalue()
    assert "↷ report skipped: needs did not succeed" in out.getvalue()
    assert not any("pull-001" in line for line in lines)  # successes are counted, not listed
    assert lines[-1] == "Failed in 2m50s: 239 success, 1 failed, 1 skipped (exit code 1)"


def test_junit_stays_complete_and_lists_failures_first() -> None:
    suite = ET.fromstring(render_junit(night()).encode()).find("testsuite")
    assert suite is not None
    names = [c.get("name") for c in suite.findall("testcase")]
    assert len(names) == 241 and names[0] == "push-007"
    assert names[1:] == [s["id"] for s in night()["steps"] if s["id"] != "push-007"]


def test_step_summary_of_a_big_night_is_a_digest() -> None:
    text = markdown_summary(night())
    assert "**Critical path** (2m30s): pull-042 1m40s → push-042 50s" in text
    assert "| push-007 | ✗ failed |" in text
    assert "239 steps succeeded (pull 120, push 119)" in text
    assert "pull-001" not in text
    assert len(text.splitlines()) < 20


def test_step_summary_of_10000_steps_stays_under_githubs_limit() -> None:
    """Every step failed with a long message: the rows stop at the budget and say so."""
    report = night(5000, failing=None)
    for s in report["steps"]:
        s.update(status="failed", outcome="failed", conclusion="failed", error="x" * 400)
    text = markdown_summary(report)
    assert len(text.encode()) < 1024 * 1024
    assert "**Did not succeed (10001):**" in text
    assert "more steps that did not succeed: see report.html or junit.xml." in text
    suite = ET.fromstring(render_junit(report).encode()).find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == 10001  # JUnit stays complete
