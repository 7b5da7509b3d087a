"""The progress model (done/total, counts, expected end), its plain-line rate and the live view.

Clocks are injected: no sleeps, every figure is computed from given moments.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from rich.console import Console

from mftrun.console import LiveConsole, PlainConsole
from mftrun.events import StepEvent
from mftrun.live_view import rows_that_matter
from mftrun.progress import Throttle, measure
from mftrun.results import Attempt, RunResult, Status, StepResult

T0 = datetime(2026, 12, 3, 22, 0, tzinfo=timezone.utc)


def night(count: int = 241) -> list[StepResult]:
    """count pending steps named like the big night (pull-/push-, then report)."""
    half = (count - 1) // 2
    ids = [f"pull-{i:03d}" for i in range(half)] + [f"push-{i:03d}" for i in range(half)]
    return [StepResult(id=sid, environment="mft", action="start_task") for sid in ids + ["report"]]


def run(steps: list[StepResult], seconds: float, status: Status, *, at: float = 0.0) -> None:
    for step in steps:
        step.outcome = step.conclusion = status
        step.started_at = T0 + timedelta(seconds=at)
        step.attempts = [Attempt(number=1, started_at=step.started_at, status=status)]
        if status.is_final:
            step.ended_at = step.started_at + timedelta(seconds=seconds)
            step.attempts[0].ended_at = step.ended_at


def test_done_counts_elapsed_and_the_step_that_holds_the_run_up() -> None:
    steps = night()
    run(steps[:100], 30, Status.SUCCESS)
    run(steps[100:101], 20, Status.FAILED)
    run(steps[101:110], 0, Status.RUNNING, at=60)
    run(steps[110:111], 0, Status.RUNNING, at=10)  # running longest
    state = measure(steps, T0, now=T0.timestamp() + 125)
    assert (state.done, state.total, state.percent) == (101, 241, 41)
    assert state.counts == (("success", 100), ("failed", 1), ("running", 10), ("pending", 130))
    assert state.holding == (steps[110].id, 115.0)
    assert state.expected_end is None and state.expected_text() == ""
    assert state.line() == (
        "progress: 101/241 steps done (41%) · 100 success, 1 failed, 10 running, 130 waiting"
        f" · elapsed 2m5s · longest running: {steps[110].id} (1m55s)"
    )


def test_expected_end_from_the_given_total_and_lateness() -> None:
    steps = night(5)
    state = measure(steps, T0, now=T0.timestamp() + 60, expected_seconds=600)
    assert state.expected_end == T0 + timedelta(minutes=10)
    assert state.expected_text() == "expected end 22:10:00 UTC"
    late = measure(steps, T0, now=T0.timestamp() + 700, expected_seconds=600)
    assert late.expected_text() == "expected end 22:10:00 UTC (late by 1m40s)"


def test_the_plain_line_comes_every_tenth_of_the_steps_or_every_30_seconds() -> None:
    clock = [0.0]
    throttle = Throttle(241, now=lambda: clock[0])
    printed = []
    for done in range(1, 242):
        clock[0] += 0.05  # a fast run: the tenths decide
        if throttle.due(done):
            printed.append(done)
    assert printed == [24, 48, 72, 96, 120, 144, 168, 192, 216, 240, 241]
    slow = Throttle(1000, now=lambda: clock[0])
    clock[0] += 31
    assert slow.due(1) is True  # 30 s since the last line
    assert slow.due(1) is False  # never twice for the same count
    clock[0] += 5
    assert slow.due(2) is False


def test_plain_console_prints_bounded_progress_lines_not_one_per_change() -> None:
    out = io.StringIO()
    clock = [T0.timestamp()]
    console = PlainConsole(out, expected_seconds=3600, now=lambda: clock[0])
    steps = night()
    result = RunResult(pipeline="big-night", file="n.yaml", sha256="", started_at=T0, steps=steps)
    console.run_started(result)
    for step in steps:
        clock[0] += 1
        run([step], 1, Status.RUNNING, at=clock[0] - T0.timestamp())
        console.step_changed(StepEvent(step, "remote status: running"))
        run([step], 1, Status.SUCCESS, at=clock[0] - T0.timestamp())
        console.step_changed(StepEvent(step))
    lines = [line for line in out.getvalue().splitlines() if " progress: " in line]
    # every tenth (24 steps), every 30 s (a step a second here), and the end
    assert 11 <= len(lines) <= 241 // 24 + 241 // 30 + 2
    assert lines[-1].endswith(
        "progress: 241/241 steps done (100%) · 241 success · elapsed 4m1s"
        " · expected end 23:00:00 UTC"
    )
    assert len(out.getvalue().splitlines()) < 2 * 241 + 30


def test_rows_that_matter_failures_retries_then_longest_running() -> None:
    steps = night()
    run(steps[:50], 5, Status.SUCCESS)
    run(steps[50:52], 5, Status.FAILED, at=10)
    run(steps[60:70], 0, Status.RUNNING, at=100)
    run(steps[70:71], 0, Status.RUNNING, at=20)
    steps[65].attempts.append(Attempt(number=2, started_at=T0))
    rows = rows_that_matter(steps, 8)
    assert [s.id for s in rows[:4]] == [
        steps[50].id,
        steps[51].id,
        steps[65].id,
        steps[70].id,
    ]
    assert len(rows) == 8 and all(s.outcome is not Status.SUCCESS for s in rows)
    assert rows_that_matter(steps[:5], 8) == steps[:5]  # what fits is shown whole


def test_live_view_has_a_progress_bar_and_fits_the_terminal() -> None:
    out = io.StringIO()
    clock = [T0.timestamp() + 90]
    console = Console(file=out, width=140, height=30, no_color=True, force_terminal=True)
    live = LiveConsole(console=console, expected_seconds=600, now=lambda: clock[0])
    steps = night()
    run(steps[:100], 5, Status.SUCCESS)
    run(steps[100:101], 5, Status.FAILED)
    run(steps[101:140], 0, Status.RUNNING, at=30)
    live._steps, live._started = steps, T0
    live.step_changed(StepEvent(steps[100], "partner said [red]no[/red] " + "x" * 300))
    with console.capture() as capture:
        console.print(live._view())
    text = capture.get()
    lines = text.splitlines()
    assert len(lines) <= 30
    assert "101/241" in lines[0] and "━" in lines[0]  # rich's own bar
    assert "100 success, 1 failed, 39 running, 101 waiting" in lines[0]
    assert "0:01:30" in lines[0]  # elapsed
    assert "expected end 22:10:00 UTC" in lines[1]  # a line of its own: never squeezes line 0
    assert steps[100].id in lines[3]  # the failure first
    assert "partner said [red]no[/red]" in text  # platform text verbatim, no markup
    assert "of 241 steps: problems, retries, longest running" in text


def test_a_narrow_terminal_keeps_done_total_and_elapsed_on_the_bar_line() -> None:
    out = io.StringIO()
    clock = [T0.timestamp() + 90]
    console = Console(file=out, width=100, height=30, no_color=True, force_terminal=True)
    live = LiveConsole(console=console, expected_seconds=600, now=lambda: clock[0])
    steps = night()
    run(steps[:207], 5, Status.SUCCESS)
    run(steps[207:208], 5, Status.FAILED)
    run(steps[208:238], 0, Status.RUNNING, at=30)
    live._steps, live._started = steps, T0
    with console.capture() as capture:
        console.print(live._view())
    first, second = capture.get().splitlines()[:2]
    assert "208/241" in first and "0:01:30" in first and "…" not in first, first
    assert second.startswith("expected end") and len(second) <= 100, second
