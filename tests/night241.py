"""The 241-step night of issue 17 under --emulate: 120 pulls, 120 pushes, one report step.

push-007 fails (the platform says so), so `report`, which needs every push, is
skipped; pull-003 fails once and succeeds on its retry. Durations vary so the
slowest steps and the critical path are well defined: pull-042 -> push-042 (the
longest pair) -> report would set the duration if report ran; as it is skipped,
the chain ends at the push that ended last.
"""

from __future__ import annotations

from pathlib import Path

PULLS = 120
STEPS = 2 * PULLS + 1
FAILING_PUSH = 7
RETRIED_PULL = 3
SLOW_PAIR = 42


def task_id(kind: int, index: int) -> str:
    return f"{index:08x}-0000-4000-8000-{kind:012x}"


def _duration(kind: int, index: int) -> int:
    """Simulated seconds: 5..29 by a fixed pattern, the slow pair far longer."""
    if index == SLOW_PAIR:
        return 240 if kind == 1 else 180
    return 5 + (index * 7 + kind * 3) % 25


def pipeline_text(*, max_parallel: int = 24, interval: str = "0.1s") -> str:
    lines = [
        "version: 1",
        "name: big-night",
        f"max_parallel: {max_parallel}",
        "environments:",
        "  mft:",
        "    provider: automate-mft",
        "    region: us",
        "    credentials:",
        "      tenant_id: {env: MFT_TENANT_ID}",
        "      key_id: {env: MFT_KEY_ID}",
        "      private_key: {env: MFT_PRIVATE_KEY}",
        "defaults:",
        "  environment: mft",
        f"  poll: {{interval: {interval}, max_interval: {interval}}}",
        "steps:",
    ]
    for i in range(PULLS):
        lines += [f"  - id: pull-{i:03d}", f"    start_task: {task_id(1, i)}"]
        if i == RETRIED_PULL:
            lines.append("    retries: {attempts: 1, delay: 1s}")
    for i in range(PULLS):
        lines += [
            f"  - id: push-{i:03d}",
            f"    needs: [pull-{i:03d}]",
            f"    start_task: {task_id(2, i)}",
        ]
    lines += [
        "  - id: report",
        "    needs: [" + ", ".join(f"push-{i:03d}" for i in range(PULLS)) + "]",
    ]
    lines += [f"    start_task: {task_id(3, 0)}"]
    return "\n".join(lines) + "\n"


def scenario_text(speed: int = 100) -> str:
    lines = [f"seed: 17\nspeed: {speed}\nautomate_mft:\n  tasks:"]
    for kind in (1, 2):
        for i in range(PULLS):
            base = f"    - {{id: {task_id(kind, i)}, queue: 0, duration: {_duration(kind, i)}s"
            if kind == 2 and i == FAILING_PUSH:
                lines.append(base + ', outcome: failed, message: "sftp: permission denied"}')
            elif kind == 1 and i == RETRIED_PULL:
                lines.append(base + ", outcomes: [failed, success]}")
            else:
                lines.append(base + "}")
    lines.append(f"    - {{id: {task_id(3, 0)}, queue: 0, duration: 5s}}")
    return "\n".join(lines) + "\n"


def write(folder: Path) -> tuple[Path, Path]:
    """The pipeline and the scenario files in folder."""
    pipeline = folder / "big-night.yaml"
    scenario = folder / "big-night-scenario.yaml"
    pipeline.write_text(pipeline_text())
    scenario.write_text(scenario_text())
    return pipeline, scenario
