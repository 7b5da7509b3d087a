"""The polling schedule as data: its promises as properties, and the shapes people rely on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mftrun.model import Poll
from mftrun.poll_schedule import (
    Expectation,
    first_night_gap,
    next_delay,
    percentile,
    preview,
    window,
)

intervals = st.floats(min_value=0.01, max_value=30.0)
spans = st.floats(min_value=1.0, max_value=3600.0)


@st.composite
def polls(draw: st.DrawFn) -> Poll:
    interval = draw(intervals)
    top = draw(st.floats(min_value=interval, max_value=600.0))
    factor = draw(st.floats(min_value=1.0, max_value=3.0))
    return Poll(interval=interval, max_interval=top, factor=factor)


@st.composite
def expectations(draw: st.DrawFn) -> Expectation | None:
    if draw(st.booleans()):
        return None
    durations = draw(st.lists(spans, min_size=1, max_size=40))
    lows = [d * draw(st.floats(min_value=0.5, max_value=1.0)) for d in durations]
    return Expectation.of(durations, lows)


elapsed = st.floats(min_value=0.0, max_value=20_000.0)


@settings(max_examples=400, deadline=None)
@given(polls(), expectations(), elapsed)
def test_never_a_gap_over_max_interval_nor_under_interval(
    poll: Poll, expected: Expectation | None, t: float
) -> None:
    delay = next_delay(poll, t, expected)
    assert poll.interval <= delay <= poll.max_interval


@settings(max_examples=400, deadline=None)
@given(polls(), expectations(), elapsed)
def test_never_before_the_start_nor_in_the_past(
    poll: Poll, expected: Expectation | None, t: float
) -> None:
    assert t + next_delay(poll, t, expected) > t >= 0
    assert next_delay(poll, -5.0, expected) >= poll.interval  # a clock before the start


@settings(max_examples=400, deadline=None)
@given(polls(), expectations(), elapsed, st.floats(min_value=0.0, max_value=5_000.0))
def test_the_next_poll_time_is_monotone_in_elapsed(
    poll: Poll, expected: Expectation | None, t: float, later: float
) -> None:
    first = t + next_delay(poll, t, expected)
    second = (t + later) + next_delay(poll, t + later, expected)
    assert second >= first - 1e-9


@settings(max_examples=200, deadline=None)
@given(polls(), expectations(), elapsed, st.floats(min_value=0.0, max_value=7200.0))
def test_retry_after_always_wins(
    poll: Poll, expected: Expectation | None, t: float, retry_after: float
) -> None:
    assert next_delay(poll, t, expected, retry_after) == retry_after


@settings(max_examples=300, deadline=None)
@given(polls(), expectations(), elapsed)
def test_an_overrun_is_never_watched_more_loosely_than_a_first_night(
    poll: Poll, expected: Expectation | None, t: float
) -> None:
    if expected is not None and t > window(poll, expected).closes:
        assert next_delay(poll, t, expected) <= first_night_gap(poll, t) + 1e-9


def walk(poll: Poll, expected: Expectation | None, end: float) -> tuple[int, float]:
    """Polls until `end` is noticed (an injected clock: elapsed time is just a number)."""
    t, polls_made = 0.0, 0
    while True:
        t += next_delay(poll, t, expected)
        polls_made += 1
        if t >= end:
            return polls_made, t - end


def test_first_night_notices_an_end_within_ten_percent_of_its_elapsed_time() -> None:
    poll = Poll()  # 2 s .. 30 s, factor 1.1
    for end in (25.0, 47.3, 90.0, 200.0, 301.0):
        _, lag = walk(poll, None, end)
        assert lag <= 0.1 * end + 1e-9, (end, lag)
    _, lag = walk(poll, None, 3000.0)
    assert lag <= poll.max_interval


def test_history_makes_a_ten_minute_task_cheaper_and_its_end_noticed_sooner() -> None:
    poll = Poll()
    ten = Expectation.of([600.0, 590.0, 612.0], [598.0, 588.0, 610.0])
    plain_polls, plain_lag = walk(poll, None, 605.0)
    polls, lag = walk(poll, ten, 605.0)
    assert polls < plain_polls and lag < plain_lag and lag <= 2 * poll.interval
    # liveness: before the window, never longer than max_interval between polls
    times = preview(poll, ten)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert max(gaps) <= poll.max_interval and times[0] <= poll.max_interval


def test_an_overrun_falls_back_to_growth_and_still_notices_the_end() -> None:
    poll = Poll()
    ten = Expectation.of([600.0] * 5)
    polls, lag = walk(poll, ten, 1200.0)  # twice its history
    assert lag <= poll.max_interval
    dense_gap = window(poll, ten).gap
    assert next_delay(poll, 1000.0, ten) > dense_gap  # no longer dense


def test_a_flat_schedule_stays_flat_without_history() -> None:
    poll = Poll(interval=1.0, max_interval=30.0, factor=1.0)
    assert {next_delay(poll, t) for t in (0.0, 10.0, 500.0)} == {1.0}


def test_expectation_figures() -> None:
    e = Expectation.of([10.0, 12.0, 11.0, 30.0], [9.0, 11.0, 10.0, 29.0])
    assert (e.runs, e.earliest, e.p50, e.latest, e.usual_end) == (4, 9.0, 11.0, 30.0, 30.0)
    assert e.to_dict() == {"runs": 4, "p50_s": 11.0, "p95_s": 30.0, "max_s": 30.0}
    assert percentile([1.0, 2.0, 3.0], 0) == 1.0
    with pytest.raises(ValueError):
        Expectation.of([])


def test_a_coarse_first_night_opens_a_wide_window_once_then_precise_nights_replace_it() -> None:
    poll = Poll()
    coarse = Expectation.of([615.0], [585.0])  # first night: a 30 s bracket
    assert (coarse.earliest, coarse.usual_end) == (585.0, 615.0)
    assert window(poll, coarse).gap == 3.0  # the bracket split in ten
    precise = Expectation.of([615.0, 603.0, 604.0], [585.0, 601.0, 602.0])
    assert (precise.earliest, precise.usual_end) == (601.0, 604.0)  # the coarse night left out
    assert window(poll, precise).gap == poll.interval
    polls_coarse, lag_coarse = walk(poll, coarse, 600.0)
    polls_precise, lag_precise = walk(poll, precise, 602.5)
    assert polls_precise < polls_coarse and lag_precise <= poll.interval
    assert lag_coarse <= 3.0
