"""Request/response values passed between the server loop and the platform handlers,
and the emulator's time base (real wall clock, simulated durations)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    client_ip: str

    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    @property
    def host(self) -> str:
        return self.headers.get("host", "")


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    token: str | None = None  # journal id of the token the request carried
    fault: str | None = None  # a fault applied while handling (token revocation)
    extra: dict[str, Any] = field(default_factory=dict)


def json_response(
    status: int,
    data: Any,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    token: str | None = None,
    fault: str | None = None,
) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, body, "application/json", headers, token, fault)


class SimClock:
    """Wall-clock timestamps in real time; scenario durations divided by `speed`.

    The origin is reset when the server starts, so scenario offsets ("started: 2m")
    count from the moment the emulator can be reached.
    """

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.reset()

    def _monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def reset(self) -> None:
        self.wall0_ns = time.time_ns()
        self.mono0_ns = self._monotonic_ns()

    def now_ns(self) -> int:
        return self.wall0_ns + (self._monotonic_ns() - self.mono0_ns)

    def now(self) -> float:
        return self.now_ns() / 1e9

    def sim_elapsed(self) -> float:
        return (self._monotonic_ns() - self.mono0_ns) / 1e9 * self.speed

    def real(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed

    def at_ns(self, sim_offset: float) -> int:
        """Wall time (ns) of a simulated offset from the origin."""
        return self.wall0_ns + int(sim_offset / self.speed * 1e9)


def rfc3339_ns(ns: int) -> str:
    """2020-04-22T11:34:03.290396913Z: nine fractional digits, as Acronis writes them."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def rfc3339_ms(seconds: float) -> str:
    whole = int(seconds)
    millis = int(round((seconds - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


class SteppedClock(SimClock):
    """A SimClock that moves only when told: `advance(seconds)` of real time.

    Why: tests that wait for a token to expire, a task to finish or a timed fault
    would otherwise sleep on the wall clock (slow, and flaky on a loaded machine).
    Pass one to `Emulator(scenario, clock=SteppedClock())` (the speed stays the
    scenario's); everything the emulator decides by time (run states, token
    expiry, `revoke_tokens at`, Acronis timelines) then follows `advance`.
    Connection-level faults (latency, hang) still act in real time: they are about
    the socket, not the platform's clock.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self._offset_ns = 0
        self._base_ns = time.monotonic_ns()
        super().__init__(speed)

    def _monotonic_ns(self) -> int:
        return self._base_ns + self._offset_ns

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._offset_ns += int(seconds * 1e9)
