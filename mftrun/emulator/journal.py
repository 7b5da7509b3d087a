"""The journal: ground truth of what the emulator saw and did.

Tests assert on it ("the start was sent exactly once", "the fault really
happened"), so it is written before a response leaves the server and is safe to
read from any thread. Request entries are bounded (the oldest are dropped past
`max_requests`, counters keep counting) so a long benchmark cannot grow it for ever.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any
from collections.abc import Callable


@dataclass(frozen=True, slots=True)
class RequestRecord:
    time: float  # Unix seconds when the request was read
    method: str
    path: str
    query: str
    status: int | None  # None: no answer was sent (reset, hang, dropped response)
    platform: str | None  # "automate-mft" | "acronis" | "emulator" | None (unknown path)
    fault: str | None  # the fault kind applied (comma-joined when several), else None
    token: str | None  # the token's journal id (e.g. "automate-mft#1"), never the token
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FaultRecord:
    time: float
    name: str
    kind: str
    method: str | None
    path: str | None


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """One call the webhook sink received under --emulate (header values left out)."""

    time: float
    environment: str  # the webhook environment's name: /_emulator/webhooks/<environment>/...
    method: str
    path: str  # below the environment's sink, "" for the URL as it is
    query: str
    header_names: list[str]
    body: Any  # the JSON body, or the text when it is not JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    task_id: str
    name: str | None
    parameters: dict[str, Any]
    status: str  # as GET /v1/task-runs/{id} would say right now
    attempt: int  # 1 for the task's first start
    started: float  # Unix seconds when the start was processed
    ended: float | None  # Unix seconds of the terminal status, None while not ended

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    def __init__(self, *, max_requests: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._requests: deque[RequestRecord] = deque(maxlen=max_requests)
        self._request_count = 0
        self._faults: list[FaultRecord] = []
        self._tokens: dict[str, int] = {}
        self._starts: dict[str, int] = {}
        self._connections = 0
        self._webhooks: deque[WebhookRecord] = deque(maxlen=1000)
        self.runs_source: Callable[[], list[RunRecord]] = lambda: []

    # writers (the server)

    def record_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)
            self._request_count += 1

    def record_fault(self, record: FaultRecord) -> None:
        with self._lock:
            self._faults.append(record)

    def record_token(self, platform: str) -> int:
        with self._lock:
            count = self._tokens.get(platform, 0) + 1
            self._tokens[platform] = count
            return count

    def record_start(self, task_id: str, name: str | None) -> None:
        with self._lock:
            self._starts[task_id] = self._starts.get(task_id, 0) + 1
            if name is not None and name != task_id:
                self._starts[name] = self._starts.get(name, 0) + 1

    def record_webhook(self, record: WebhookRecord) -> None:
        with self._lock:
            self._webhooks.append(record)

    def record_connection(self) -> None:
        with self._lock:
            self._connections += 1

    # readers

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._request_count

    @property
    def faults(self) -> list[FaultRecord]:
        with self._lock:
            return list(self._faults)

    def faults_applied(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for f in self._faults if kind is None or f.kind == kind or f.name == kind)

    def tokens_issued(self, platform: str) -> int:
        with self._lock:
            return self._tokens.get(platform, 0)

    def starts(self, task: str) -> int:
        """Start requests processed (a run was created) for a task id or name."""
        with self._lock:
            return self._starts.get(task, 0)

    @property
    def runs(self) -> list[RunRecord]:
        return self.runs_source()

    @property
    def webhooks(self) -> list[WebhookRecord]:
        with self._lock:
            return list(self._webhooks)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def to_dict(self) -> dict[str, Any]:
        runs = [r.to_dict() for r in self.runs]
        with self._lock:
            return {
                "requests": [r.to_dict() for r in self._requests],
                "request_count": self._request_count,
                "faults": [asdict(f) for f in self._faults],
                "tokens_issued": dict(self._tokens),
                "starts": dict(self._starts),
                "connections": self._connections,
                "runs": runs,
                "webhooks": [w.to_dict() for w in self._webhooks],
            }
