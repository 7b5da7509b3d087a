"""Retry policy as data.

Back-off math, Retry-After parsing, and the loop's decisions (fake clock).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from mftrun.clock import FakeClock
from mftrun.providers.acronis.policies import ACRONIS_READ
from mftrun.http.retry import (
    POLL,
    READ,
    START,
    RetryLater,
    RetryPolicy,
    call_with_retry,
    parse_retry_after,
)
from mftrun.http.session import NoResponseError, NotSentError

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeResponse:
    def __init__(self, status: int, retry_after: str | None = None) -> None:
        self.status_code = status
        self.headers = {"Retry-After": retry_after} if retry_after is not None else {}


class Script:
    """Answers (or raises) from a list, and records when each call happened on the fake clock."""

    def __init__(self, clock: FakeClock, answers: list) -> None:
        self.clock = clock
        self.answers = list(answers)
        self.times: list[float] = []

    def __call__(self):
        self.times.append(self.clock.monotonic())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("2", NOW) == 2.0
    assert parse_retry_after(" 0 ", NOW) == 0.0
    assert parse_retry_after("-5", NOW) == 0.0
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=30), usegmt=True), NOW) == 30.0
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=30), usegmt=True), NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("nan", NOW) is None


def test_backoff_grows_exponentially_with_bounded_jitter_and_cap():
    policy = RetryPolicy(backoff_factor=0.5, backoff_max=3.0, jitter=0.5)
    rng = random.Random(7)
    for n, base in [(1, 0.5), (2, 1.0), (3, 2.0)]:
        for _ in range(50):
            wait = policy.backoff(n, rng)
            assert base <= wait <= min(3.0, base * 1.5)
    assert all(policy.backoff(10, rng) == 3.0 for _ in range(20))
    assert RetryPolicy(jitter=0.0, backoff_factor=1.0).backoff(3, rng) == 4.0


def test_acronis_retries_twice_one_to_two_seconds_apart():
    clock = FakeClock()
    script = Script(clock, [FakeResponse(500), FakeResponse(502), FakeResponse(500)])
    outcome = call_with_retry(script, ACRONIS_READ, clock=clock, rng=random.Random(1))
    assert outcome.response.status_code == 500 and outcome.retries == 2
    gaps = [b - a for a, b in zip(script.times, script.times[1:], strict=False)]
    assert len(gaps) == 2 and all(1.0 <= g <= 2.0 for g in gaps)


def test_get_retries_connection_errors_and_5xx_then_succeeds():
    clock = FakeClock()
    script = Script(
        clock,
        [NotSentError("refused"), NoResponseError("dropped"), FakeResponse(503), FakeResponse(200)],
    )
    outcome = call_with_retry(script, READ, clock=clock, rng=random.Random(1))
    assert outcome.response.status_code == 200 and outcome.retries == 3


def test_start_is_never_resent_after_a_lost_answer():
    clock = FakeClock()
    script = Script(clock, [NoResponseError("read timeout"), FakeResponse(200)])
    with pytest.raises(NoResponseError):
        call_with_retry(script, START, clock=clock)
    assert len(script.times) == 1


def test_start_is_resent_when_it_certainly_was_not_sent():
    clock = FakeClock()
    script = Script(clock, [NotSentError("refused"), FakeResponse(200)])
    assert call_with_retry(script, START, clock=clock).response.status_code == 200
    assert len(script.times) == 2


def test_start_does_not_retry_5xx_but_honours_429_retry_after():
    clock = FakeClock()
    script = Script(clock, [FakeResponse(500), FakeResponse(200)])
    assert call_with_retry(script, START, clock=clock).response.status_code == 500
    script = Script(clock, [FakeResponse(429, "2"), FakeResponse(429, "2"), FakeResponse(200)])
    outcome = call_with_retry(script, START, clock=clock)
    assert outcome.response.status_code == 200
    assert [b - a for a, b in zip(script.times, script.times[1:], strict=False)] == [2.0, 2.0]


def test_attempts_and_total_time_are_bounded():
    clock = FakeClock()
    script = Script(clock, [FakeResponse(429, "1")] * 10)
    outcome = call_with_retry(script, START.replace(retries=3), clock=clock)
    assert outcome.response.status_code == 429 and len(script.times) == 4
    script = Script(clock, [FakeResponse(429, "50")] * 10)
    outcome = call_with_retry(script, START.replace(max_total=120.0), clock=clock)
    assert len(script.times) == 3  # 0, 50, 100: a third wait would pass 120 s
    script = Script(clock, [FakeResponse(429, "1000")])
    assert call_with_retry(script, START, clock=clock).retries == 0  # longer than max_retry_after


def test_poll_policy_hands_retry_after_back_instead_of_sleeping():
    clock = FakeClock()
    start = clock.monotonic()
    with pytest.raises(RetryLater) as caught:
        call_with_retry(Script(clock, [FakeResponse(429, "7")]), POLL, clock=clock)
    assert caught.value.seconds == 7.0 and clock.monotonic() == start
    with pytest.raises(RetryLater):
        call_with_retry(Script(clock, [FakeResponse(503, "3")]), POLL, clock=clock)


def test_statuses_outside_the_policy_are_returned_at_once():
    clock = FakeClock()
    for status in (200, 400, 401, 404):
        script = Script(clock, [FakeResponse(status)])
        assert call_with_retry(script, READ, clock=clock).response.status_code == status
        assert len(script.times) == 1


def test_policy_is_immutable_data():
    with pytest.raises(AttributeError):
        READ.retries = 10  # type: ignore[misc]
    assert READ.replace(retries=1).retries == 1 and READ.retries == 3
