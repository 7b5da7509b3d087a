"""The dependency graph of a pipeline: order, parallel levels, cycles. Pure, no I/O.

`graphlib` finds cycles (with their path); the order itself is Kahn's algorithm
with the file's list order as the tie-break, because that is the promise the
format makes ("list order matters only as the tie-break").
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping, Sequence

from mftrun.errors import Problem, ValidationFailed
from mftrun.model import Pipeline

_MAX_CYCLES = 20


def find_cycles(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Distinct cycles, each as a path `[a, b, ..., a]` where every node is needed by the next.

    graphlib reports one cycle per `prepare()`; we cut one edge of it and ask
    again, so independent cycles are all reported (up to a sane limit).
    """
    from graphlib import CycleError, TopologicalSorter

    graph = {node: [n for n in deps if n != node] for node, deps in needs.items()}
    found: list[list[str]] = []
    while len(found) < _MAX_CYCLES:
        try:
            TopologicalSorter(graph).prepare()
            return found
        except CycleError as exc:
            cycle = list(exc.args[1])
        found.append(_rotate(cycle))
        # cycle[0] is a predecessor of cycle[1]: cycle[1] needs cycle[0]; cut that edge.
        graph[cycle[1]] = [n for n in graph[cycle[1]] if n != cycle[0]]
    return found


def _rotate(cycle: list[str]) -> list[str]:
    """Start a cycle at its smallest id so the same cycle always reads the same."""
    ring = cycle[:-1]
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return ring + [ring[0]]


def ancestors_of(step_id: str, needs: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """Every step `step_id` depends on, directly or transitively."""
    seen: set[str] = set()
    stack = list(needs.get(step_id, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(needs.get(node, ()))
    return frozenset(seen)


class Walk:
    """The one way the graph is walked (plan order, levels, the executor's readiness):
    graphlib.TopologicalSorter's get_ready/done, with the file's list order as the
    tie-break the format promises. Not thread-safe: one owner (the scheduler) drives it."""

    def __init__(
        self,
        needs: Mapping[str, Sequence[str]],
        dependents: Mapping[str, Sequence[str]],
        index: Mapping[str, int],
    ) -> None:
        self._dependents = dependents
        self._index = index
        self._waiting = {sid: len(deps) for sid, deps in needs.items()}
        self._ready = [(index[sid], sid) for sid, count in self._waiting.items() if count == 0]
        heapq.heapify(self._ready)

    def get_ready(self) -> tuple[str, ...]:
        """Every step whose needs are all done and that was not handed out yet, in file order."""
        out = []
        while self._ready:
            out.append(heapq.heappop(self._ready)[1])
        return tuple(out)

    def pop(self) -> str | None:
        """The first ready step in file order (None when none is ready)."""
        return heapq.heappop(self._ready)[1] if self._ready else None

    def done(self, step_id: str) -> tuple[str, ...]:
        """Mark one step done; the dependents that became ready by it, in file order (they
        are handed out here, not again by get_ready)."""
        became = []
        for child in self._dependents.get(step_id, ()):
            self._waiting[child] -= 1
            if self._waiting[child] == 0:
                became.append(child)
        return tuple(sorted(became, key=self._index.__getitem__))

    def done_later(self, step_id: str) -> None:
        """Mark one step done; its newly ready dependents wait for the next get_ready."""
        for child in self.done(step_id):
            heapq.heappush(self._ready, (self._index[child], child))


@dataclass(frozen=True, eq=False)
class Plan:
    """What would run: a topological order, parallel levels, and both edge directions."""

    order: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    needs: Mapping[str, tuple[str, ...]]
    dependents: Mapping[str, tuple[str, ...]]
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    index: Mapping[str, int] = field(default_factory=dict)

    def ancestors(self, step_id: str) -> frozenset[str]:
        """Every step `step_id` depends on, directly or transitively (memoised)."""
        known = self._ancestors.get(step_id)
        if known is None:
            known = self._ancestors[step_id] = ancestors_of(step_id, self.needs)
        return known

    def walk(self) -> Walk:
        """A fresh walk over this plan (get_ready / done, file order as the tie-break)."""
        return Walk(self.needs, self.dependents, self.index)

    def descendants(self, step_id: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(self.dependents.get(step_id, ()))
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self.dependents.get(node, ()))
        return frozenset(seen)

    def level_of(self, step_id: str) -> int:
        for number, level in enumerate(self.levels):
            if step_id in level:
                return number
        raise KeyError(step_id)


def build_plan(pipeline: Pipeline) -> Plan:
    """Order and levels of a pipeline; a cycle raises ValidationFailed with its path.

    `load_pipeline` already rejects cycles, so this raises only for a Pipeline
    built by hand.
    """
    index = {step.id: step.index for step in pipeline.steps}
    needs = {
        step.id: tuple(dict.fromkeys(n for n in step.needs if n in index))
        for step in pipeline.steps
    }
    cycles = find_cycles(needs)
    if cycles:
        position = pipeline.position
        raise ValidationFailed(
            [
                Problem(
                    position.file,
                    position.line,
                    position.column,
                    f"dependency cycle: {' -> '.join(cycle)}",
                    "remove one of these needs",
                )
                for cycle in cycles
            ]
        )
    dependents: dict[str, list[str]] = {sid: [] for sid in needs}
    for sid, deps in needs.items():
        for dep in deps:
            dependents[dep].append(sid)
    walk = Walk(needs, dependents, index)
    order: list[str] = []
    level: dict[str, int] = {}
    while (next_id := walk.pop()) is not None:  # Kahn's order, the file order as tie-break
        order.append(next_id)
        level[next_id] = 1 + max((level[d] for d in needs[next_id]), default=-1)
        walk.done_later(next_id)
    levels: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for sid in sorted(level, key=index.__getitem__):
        levels[level[sid]].append(sid)
    return Plan(
        order=tuple(order),
        levels=tuple(tuple(group) for group in levels),
        needs=MappingProxyType(needs),
        dependents=MappingProxyType(
            {k: tuple(sorted(v, key=index.__getitem__)) for k, v in dependents.items()}
        ),
        index=MappingProxyType(index),
    )
