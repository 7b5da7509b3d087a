"""Deciding which faults hit a request: counters and seeded randomness per fault.

Each fault has its own counter and its own `random.Random(seed, index)`, so the
n-th matching request of a fault gets the same decision on every run whatever
the other faults do. Request-level faults are decided before the request is
processed; `drop_response` is decided too but applied after processing.
`revoke_tokens` is time-based and checked where tokens are validated.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass

from mftrun.emulator.scenario_data import Fault

# Kinds that replace the answer; at most one of them applies to a request.
TERMINAL = ("reset", "hang", "rate_limit", "error", "drop_response")


@dataclass(frozen=True, slots=True)
class Decision:
    latency: float  # real seconds to wait first
    latency_faults: tuple[Fault, ...]
    terminal: Fault | None


NO_FAULT = Decision(0.0, (), None)


class _State:
    __slots__ = ("matched", "applied", "burst_left", "rng")

    def __init__(self, rng: random.Random) -> None:
        self.matched = 0
        self.applied = 0
        self.burst_left = 0
        self.rng = rng


class FaultEngine:
    def __init__(self, faults: tuple[Fault, ...], seed: int) -> None:
        self._faults = tuple(f for f in faults if f.kind != "revoke_tokens")
        self.revocations = tuple(f for f in faults if f.kind == "revoke_tokens")
        self._states = [_State(random.Random(f"{seed}:{i}")) for i, _ in enumerate(self._faults)]
        self._lock = threading.Lock()

    def decide(self, platform: str | None, method: str, path: str) -> Decision:
        if not self._faults:
            return NO_FAULT
        latency = 0.0
        latency_faults: list[Fault] = []
        terminal: Fault | None = None
        with self._lock:
            for fault, state in zip(self._faults, self._states, strict=False):
                if fault.platform is not None and fault.platform != platform:
                    continue
                if fault.method is not None and fault.method != method:
                    continue
                if fault.path != "*" and not fnmatch.fnmatchcase(path, fault.path):
                    continue
                if fault.kind in TERMINAL and terminal is not None:
                    continue  # another fault already owns the answer; don't consume this one's turn
                if not self._fires(fault, state):
                    continue
                if fault.kind == "latency":
                    latency += fault.delay
                    latency_faults.append(fault)
                else:
                    terminal = fault
        if not latency_faults and terminal is None:
            return NO_FAULT
        return Decision(latency, tuple(latency_faults), terminal)

    @staticmethod
    def _fires(fault: Fault, state: _State) -> bool:
        state.matched += 1
        if fault.times is not None and state.applied >= fault.times:
            return False
        if state.burst_left > 0:
            state.burst_left -= 1
            state.applied += 1
            return True
        n = state.matched - fault.skip
        if n <= 0:
            return False
        if fault.every is not None:
            hit = n % fault.every == 0
        elif fault.probability is not None:
            hit = state.rng.random() < fault.probability
        else:
            hit = True
        if hit:
            state.applied += 1
            state.burst_left = fault.burst - 1
        return hit
