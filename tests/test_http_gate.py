"""The step gate (issue 15 item 16): once a step has ended, no request for it leaves."""

from __future__ import annotations

import threading
import time

import pytest

from mftrun.clock import SystemClock
from mftrun.http import gate as gates
from mftrun.http.retry import START, call_with_retry


class Answer:
    def __init__(self, status: int, retry_after: str | None = None) -> None:
        self.status_code = status
        self.headers = {"Retry-After": retry_after} if retry_after else {}


def test_a_start_sleeping_on_retry_after_wakes_when_the_step_ends_and_is_never_sent():
    gate = gates.Gate("step pull attempt 1")
    sends: list[float] = []

    def send():
        gates.before_send()
        sends.append(time.monotonic())
        return Answer(429, "30") if len(sends) == 1 else Answer(200)

    threading.Timer(0.2, gate.close, args=("timed_out",)).start()
    began = time.monotonic()
    with gates.entered(gate), pytest.raises(gates.Abandoned, match="before this request"):
        call_with_retry(send, START, clock=SystemClock())
    assert time.monotonic() - began < 2, "the 30 s Retry-After sleep must end with the step"
    assert len(sends) == 1
    assert gate.sent == 0, "a 429 proves the one request sent was not processed"
    assert "Retry-After 30s" in gate.waiting_for


def test_close_reports_a_request_that_may_have_been_processed():
    gate = gates.Gate()
    with gates.entered(gate):
        gates.before_send()
    assert gate.close("timed_out") == 1
    with gates.entered(gate), pytest.raises(gates.Abandoned):
        gates.before_send()


def test_admit_refuses_after_close_and_close_waits_for_an_admitted_block():
    gate = gates.Gate()
    order: list[str] = []
    with gate.admit():
        closer = threading.Thread(target=lambda: order.append(f"closed {gate.close('x')}"))
        closer.start()
        time.sleep(0.05)
        order.append("intent written")
    closer.join()
    assert order == ["intent written", "closed 0"]
    with pytest.raises(gates.Abandoned), gate.admit():
        order.append("never")
    assert "never" not in order


def test_the_shared_token_request_runs_without_the_step_gate():
    gate = gates.Gate()
    gate.close("timed_out")
    with gates.entered(gate), gates.detached():
        gates.before_send()  # no gate here: does not raise
        assert gates.current() is None
    assert gates.current() is None
