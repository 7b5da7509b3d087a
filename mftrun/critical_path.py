"""The chain of steps that sets a pipeline's duration.

Two questions share this module because they share the graph walk:

- *expected* (from durations, e.g. history): the longest path through the
  `needs` graph, weighted by each step's duration (`longest_path`);
- *observed* (from one run's timestamps): starting from the step that ended
  last, the need that released it, and so on back to a step that waited for
  nothing (`gating_chain`). That is the chain a user must shorten to make the
  night shorter.

Pure functions over plain mappings, so the plan, the executor's reports and
the benchmarks can all call them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter


@dataclass(frozen=True, slots=True)
class Chain:
    """Step ids from the first to the last link, and the seconds the chain spans."""

    steps: tuple[str, ...]
    seconds: float


def longest_path(needs: Mapping[str, Sequence[str]], durations: Mapping[str, float]) -> Chain:
    """The heaviest path through the graph; steps without a duration weigh 0.

    `needs` maps every step id to the ids it waits for (unknown ids are
    ignored). Ties go to the step that comes first in `needs`' order, so the
    answer is stable from run to run.
    """
    order = list(needs)
    rank = {sid: i for i, sid in enumerate(order)}
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    sorter = TopologicalSorter({sid: [n for n in needs[sid] if n in needs] for sid in order})
    for sid in sorter.static_order():
        best: str | None = None
        for need in needs[sid]:
            if need not in finish:
                continue
            if best is None or (finish[need], -rank[need]) > (finish[best], -rank[best]):
                best = need
        finish[sid] = (finish[best] if best else 0.0) + max(0.0, durations.get(sid, 0.0))
        via[sid] = best
    if not finish:
        return Chain((), 0.0)
    last = max(order, key=lambda sid: (finish[sid], -rank[sid]))
    return Chain(_walk_back(last, via), finish[last])


def gating_chain(
    needs: Mapping[str, Sequence[str]],
    started: Mapping[str, float],
    ended: Mapping[str, float],
) -> Chain:
    """The observed chain: last-ending step, then the need that ended last before it started.

    Steps that never started or never ended are not part of it. The span is
    from the first link's start to the last link's end.
    """
    done = [sid for sid in needs if sid in ended and sid in started]
    if not done:
        return Chain((), 0.0)
    rank = {sid: i for i, sid in enumerate(needs)}
    last = max(done, key=lambda sid: (ended[sid], -rank[sid]))
    via: dict[str, str | None] = {}
    sid: str | None = last
    seen: set[str] = set()
    while sid is not None and sid not in seen:
        seen.add(sid)
        candidates = [n for n in needs.get(sid, ()) if n in ended and n not in seen]
        via[sid] = (
            max(candidates, key=lambda n: (ended[n], -rank.get(n, 0))) if candidates else None
        )
        sid = via[sid]
    steps = _walk_back(last, via)
    return Chain(steps, max(0.0, ended[last] - started[steps[0]]))


def _walk_back(last: str, via: Mapping[str, str | None]) -> tuple[str, ...]:
    chain = [last]
    while (previous := via.get(chain[-1])) is not None:
        chain.append(previous)
    return tuple(reversed(chain))
