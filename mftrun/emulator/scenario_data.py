"""The frozen data a scenario is made of: keys, tenants, tasks and their attempts, faults.

Split from the building code (issue 12) because the platforms only ever read this data:
`automate_mft`, `acronis` and `faults` import these types and never the YAML reading,
key loading and problem reporting in `scenario`, which turns a document into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})
MFT_ALGORITHMS = ("ES256", "RS256", "EdDSA")
MFT_OUTCOMES = ("success", "failed", "stuck")
ACRONIS_RESULTS = ("ok", "error", "warning", "cancelled", "abandoned", "timedout")
PRIORITIES = ("low", "belowNormal", "normal", "aboveNormal", "high")
FAULT_KINDS = ("rate_limit", "error", "reset", "latency", "hang", "drop_response", "revoke_tokens")
PLATFORMS = ("automate-mft", "acronis")


@dataclass(frozen=True, slots=True)
class MftKey:
    id: str
    algorithm: str  # ES256 | RS256 | EdDSA: the only `alg` the token endpoint accepts for it
    public_key_pem: str
    private_key_pem: str | None  # None when the scenario registered only a public key
    allow_ips: tuple[str, ...] = ()  # CIDRs; empty = any caller


@dataclass(frozen=True, slots=True)
class MftTenant:
    id: str
    keys: tuple[MftKey, ...]


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one start of a task behaves; a task's attempts are used in order, the last repeats."""

    outcome: str  # success | failed | stuck (stays running for ever)
    queue: float  # simulated seconds in `queued`
    duration: float  # simulated seconds in `running`
    message: str | None = None
    files: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class MftTask:
    id: str
    name: str | None
    attempts: tuple[Attempt, ...]
    agent: str = "emulated-agent"


@dataclass(frozen=True, slots=True)
class License:
    plan: str = "Professional"
    start: str = "2026-01-01"
    end: str = "2027-01-01"
    task_executions_limit: int = 100_000


@dataclass(frozen=True, slots=True)
class AcronisClient:
    id: str
    secret: str
    scopes: tuple[str, ...] = ("task_manager",)


@dataclass(frozen=True, slots=True)
class AcronisTask:
    """One task-manager task; the offsets are simulated seconds from the emulator's start."""

    id: int
    uuid: str
    type: str
    queue: str
    priority: str
    enqueued: float
    assigned: float | None
    started: float | None
    completed: float | None
    result_code: str | None  # set when `completed` is
    result_error: Mapping[str, Any] | None = None
    result_payload: str | None = None
    warnings: tuple[Any, ...] = ()
    policy: Mapping[str, Any] | None = None
    resource: Mapping[str, Any] | None = None
    tags: tuple[str, ...] = ()
    started_by: str = ""
    workflow_id: str | None = None
    executor: Mapping[str, Any] | None = None
    context: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    cancellable: bool = True


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    kind: str  # one of FAULT_KINDS
    platform: str | None = None  # None: both
    method: str | None = None  # None: any
    path: str = "*"  # fnmatch glob on the path without the query
    every: int | None = None  # every Nth matching request (after `skip`)
    probability: float | None = None
    skip: int = 0  # matching requests let through before the fault may apply
    times: int | None = None  # at most this many applications (a burst counts each request)
    burst: int = 1  # once triggered, this many consecutive matching requests get it
    status: int = 503  # kind error
    retry_after: float | None = None  # kind rate_limit; None: no Retry-After header
    delay: float = 1.0  # kind latency, real seconds
    hang_for: float = 30.0  # kind hang, real seconds before the server gives up and closes
    at: float | None = None  # kind revoke_tokens: simulated seconds from start
