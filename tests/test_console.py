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


def test_plain_console_puts_an_errors_hint_on_its_own_line_and_keeps_other_breaks_escaped() -> None:
    from mftrun.console import PlainConsole

    stream = io.StringIO()
    console = PlainConsole(stream)
    step = StepResult(id="k[acme]", environment="chat", action="http")
    step.outcome = Status.ERROR
    console.step_changed(
        StepEvent(step, "template '{{ item.key }}': no attribute 'key'\n  hint: check the name")
    )
    first, second = stream.getvalue().splitlines()
    assert first.endswith("error    : template '{{ item.key }}': no attribute 'key'")
    assert second.strip() == "hint: check the name" and second.startswith("    ")
    # a platform's own line break is not a line of mftrun's: it stays escaped, one line
    stream.truncate(0), stream.seek(0)
    other = StepResult(id="x", environment="chat", action="http")
    other.outcome = Status.FAILED
    console.step_changed(StepEvent(other, "boom\n12:00:00 y   success"))
    assert len(stream.getvalue().splitlines()) == 1 and "\\n12:00:00" in stream.getvalue()
