"""The plan: topological order with list order as tie-break, levels, edges, cycles."""

from __future__ import annotations

import pytest

from mftrun.errors import ValidationFailed
from mftrun.model import Action, Pipeline, Step
from mftrun.plan import build_plan, find_cycles


def pipeline(*specs: tuple[str, tuple[str, ...]]) -> Pipeline:
    steps = tuple(
        Step(id=sid, action=Action("http", {"path": "/"}), environment="e", index=i, needs=needs)
        for i, (sid, needs) in enumerate(specs)
    )
    return Pipeline(name="p", path="p.yaml", sha256="", environments={}, steps=steps)


def test_order_levels_and_edges_of_a_diamond() -> None:
    plan = build_plan(pipeline(("d", ("b", "c")), ("c", ("a",)), ("b", ("a",)), ("a", ())))
    assert plan.order == ("a", "c", "b", "d")  # c is listed before b
    assert plan.levels == (("a",), ("c", "b"), ("d",))
    assert plan.needs["d"] == ("b", "c")
    assert plan.dependents["a"] == ("c", "b")
    assert plan.dependents["d"] == ()
    assert plan.ancestors("d") == frozenset({"a", "b", "c"})
    assert plan.ancestors("a") == frozenset()
    assert plan.descendants("a") == frozenset({"b", "c", "d"})


def test_list_order_is_the_tie_break_for_ready_steps() -> None:
    plan = build_plan(pipeline(("z", ()), ("y", ()), ("x", ("z",)), ("w", ())))
    assert plan.order == ("z", "y", "x", "w")  # x became ready before w was taken
    assert plan.levels == (("z", "y", "w"), ("x",))


def test_levels_follow_the_longest_path() -> None:
    plan = build_plan(
        pipeline(("a", ()), ("b", ("a",)), ("c", ("b",)), ("d", ("a", "c")), ("e", ()))
    )
    assert plan.levels == (("a", "e"), ("b",), ("c",), ("d",))


def test_a_cycle_raises_with_its_path() -> None:
    with pytest.raises(ValidationFailed) as info:
        build_plan(pipeline(("a", ("c",)), ("b", ("a",)), ("c", ("b",)), ("d", ())))
    assert [p.message for p in info.value.problems] == ["dependency cycle: a -> b -> c -> a"]


def test_independent_cycles_are_all_found() -> None:
    cycles = find_cycles({"a": ["b"], "b": ["a"], "c": ["d"], "d": ["e"], "e": ["c"], "f": []})
    assert sorted(cycles) == [["a", "b", "a"], ["c", "e", "d", "c"]]
    assert find_cycles({"a": ["a"], "b": ["a"]}) == []  # self-needs are reported elsewhere


def test_big_chain_is_fast_enough_and_correct() -> None:
    n = 5000
    plan = build_plan(pipeline(*[(f"s{i}", (f"s{i - 1}",) if i else ()) for i in range(n)]))
    assert plan.order[0] == "s0" and plan.order[-1] == f"s{n - 1}"
    assert len(plan.levels) == n
    assert len(plan.ancestors(f"s{n - 1}")) == n - 1


def test_the_walk_hands_out_each_step_once_when_its_needs_are_done() -> None:
    plan = build_plan(
        pipeline(("d", ("b", "c")), ("c", ("a",)), ("b", ("a",)), ("a", ()), ("e", ()))
    )
    walk = plan.walk()
    assert walk.get_ready() == ("a", "e")  # roots, in file order
    assert walk.get_ready() == ()  # handed out once
    assert walk.done("e") == ()
    assert walk.done("a") == ("c", "b")  # became ready, file order
    assert walk.done("c") == ()  # d still needs b
    assert walk.done("b") == ("d",)
    fresh = plan.walk()
    fresh.done_later("a")  # e.g. carried over by resume: handed out by the next get_ready
    # a itself was never handed out, so it comes too (the executor skips what is final)
    assert fresh.get_ready() == ("c", "b", "a", "e")


def test_the_plan_order_is_a_walk_taking_the_first_ready_step_each_time() -> None:
    import random

    rng = random.Random(7)
    for _ in range(50):
        ids = [f"s{i}" for i in range(12)]
        specs = [
            (sid, tuple(rng.sample(ids[:i], k=min(i, rng.randint(0, 2)))))
            for i, sid in enumerate(ids)
        ]
        rng.shuffle(specs)  # file order differs from the dependency order
        plan = build_plan(pipeline(*specs))
        walk, order = plan.walk(), []
        while (sid := walk.pop()) is not None:
            order.append(sid)
            walk.done_later(sid)
        assert tuple(order) == plan.order
        position = {sid: n for n, sid in enumerate(order)}
        assert all(position[n] < position[sid] for sid, needs in specs for n in needs)
