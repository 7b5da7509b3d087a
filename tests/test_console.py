"""The live table shows platform text as text: markup-like characters cannot break it."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from rich.console import Console

from mftrun.console import LiveConsole
from mftrun.events import StepEvent
from mftrun.results import Attempt, Status, StepResult


def test_remote_status_and_details_with_rich_markup_render_verbatim() -> None:
    out = io.StringIO()
    live = LiveConsole(console=Console(file=out, width=160, no_color=True))
    now = datetime.now(timezone.utc)
    step = StepResult(
        id="pull", environment="mft", action="start_task", outcome=Status.RUNNING, started_at=now
    )
    step.attempts.append(Attempt(number=1, started_at=now, remote_status="[/] weird [bold]status"))
    live._steps = [step]
    live.step_changed(StepEvent(step, "partner said [red]no[/red]"))
    live.console.print(live._table())
    text = out.getvalue()
    assert "[/] weird [bold]status" in text
    assert "partner said [red]no[/red]" in text
