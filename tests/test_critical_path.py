"""The chain that sets a pipeline's duration, expected and observed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mftrun.critical_path import Chain, gating_chain, longest_path


def test_the_heaviest_branch_is_the_path() -> None:
    needs = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    chain = longest_path(needs, {"a": 1, "b": 5, "c": 2, "d": 1})
    assert chain == Chain(("a", "b", "d"), 7.0)


def test_ties_go_to_file_order_and_unknown_durations_weigh_nothing() -> None:
    needs = {"x": [], "y": [], "z": ["y", "x"]}
    assert longest_path(needs, {"x": 2, "y": 2, "z": 1}).steps == ("x", "z")
    assert longest_path({}, {}) == Chain((), 0.0)


def test_the_observed_chain_follows_the_need_that_released_each_step() -> None:
    needs = {"pull": [], "slow": [], "push": ["pull", "slow"], "tidy": []}
    started = {"pull": 0.0, "slow": 0.0, "push": 9.0, "tidy": 0.0}
    ended = {"pull": 2.0, "slow": 8.5, "push": 12.0, "tidy": 3.0}
    assert gating_chain(needs, started, ended) == Chain(("slow", "push"), 12.0)


def test_steps_that_never_ran_are_not_links() -> None:
    needs = {"a": [], "b": ["a"], "c": ["b"]}
    chain = gating_chain(needs, {"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 4.0})
    assert chain == Chain(("a", "b"), 3.0)
    assert gating_chain(needs, {}, {}) == Chain((), 0.0)


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_a_chain_weighs_the_sum_of_its_links(durations: list[float]) -> None:
    ids = [f"s{i}" for i in range(len(durations))]
    needs = {sid: ids[max(0, i - 2) : i] for i, sid in enumerate(ids)}
    weights = dict(zip(ids, durations, strict=True))
    chain = longest_path(needs, weights)
    assert abs(chain.seconds - sum(weights[s] for s in chain.steps)) < 1e-6
    for a, b in zip(chain.steps, chain.steps[1:], strict=False):
        assert a in needs[b]
    assert chain.seconds >= max(durations) - 1e-9
