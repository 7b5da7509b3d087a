"""Scenarios: what the emulated platforms contain and how they misbehave.

A scenario is YAML validated against `schemas/scenario.schema.json`, then turned
into frozen data. Key pairs, ids and secrets that the file leaves out are derived
from `seed`, so the same file gives the same credentials on every start (a user
can keep the exported environment variables across restarts of `mftrun emulate`).

Time: `speed` is simulated seconds per real second. Task timelines, queue delays,
durations, token lifetimes and fault `at` times are simulated time; network-level
values (latency `delay`, `hang_for`, `retry_after`) are real seconds because they
exist to trip the client's real timeouts.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from collections.abc import Mapping

from mftrun.durations import parse_duration
from mftrun.errors import InputError, Problem, ValidationFailed
from mftrun.loader import Document
from mftrun.emulator.scenario_data import (
    AcronisClient,
    AcronisTask,
    Attempt,
    EMPTY,
    Fault,
    License,
    MftTask,
    MftTenant,
)
from mftrun.emulator.scenario_keys import read_key


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int = 0
    speed: float = 1.0
    mft_token_lifetime: float = 300.0
    mft_tenants: tuple[MftTenant, ...] = ()
    mft_tasks: tuple[MftTask, ...] = ()
    license: License = field(default_factory=License)
    acronis_token_lifetime: float = 7200.0
    acronis_clients: tuple[AcronisClient, ...] = ()
    acronis_tenant: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    acronis_tasks: tuple[AcronisTask, ...] = ()
    faults: tuple[Fault, ...] = ()
    source: str = "<dict>"

    @classmethod
    def default(cls) -> Scenario:
        """One tenant with a generated ES256 key, one Acronis client, no tasks, speed 1."""
        return cls.from_dict({}, source="<default>")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> Scenario:
        return _build(data, source, Document(source, data, ""), None)


def load_scenario(path: str | Path) -> Scenario:
    """Read a YAML scenario; every problem is reported as file:line:column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"scenario file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read scenario file {path}: {exc}") from None
    from mftrun.loader import load_text

    doc, problems = load_text(text, str(path), allow_empty=True)
    if doc is None or problems:
        raise ValidationFailed(problems)
    if doc.data is None:  # an empty scenario: the defaults
        doc = Document(doc.file, {}, doc.sha256, doc.positions, doc.key_positions)
    data = doc.data
    if not isinstance(data, dict):
        raise ValidationFailed([Problem(str(path), 1, 1, "a scenario must be a mapping")])
    return _build(data, str(path), doc, path.parent)


# ----------------------------------------------------------------------------- building


def schema() -> dict[str, Any]:
    """The scenario schema, as mftrun.schema checks it (one schema engine for both kinds)."""
    from mftrun import schema as schemas

    return schemas.schema("scenario")


class _Ctx:
    """Where problems go while a scenario is built: positions come from the loaded Document."""

    def __init__(self, source: str, doc: Document, folder: Path | None) -> None:
        self.source = source
        self.doc = doc
        self.folder = folder
        self.problems: list[Problem] = []

    def problem(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        from mftrun.schema import label

        self.problems.append(self.doc.problem(path, f"{label(path)}: {message}", hint))


def _validate_schema(data: Any, ctx: _Ctx) -> None:
    from mftrun import schema as schemas

    ctx.problems.extend(schemas.check(ctx.doc, kind="scenario"))


def _seconds(value: Any, path: tuple[Any, ...], ctx: _Ctx, *, signed: bool = False) -> float:
    negative = False
    if signed and isinstance(value, str) and value.strip().startswith("-"):
        negative, value = True, value.strip()[1:]
    elif signed and isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        negative, value = True, -value
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        ctx.problem(path, str(exc))
        return 0.0
    return -seconds if negative else seconds


def _build(data: dict[str, Any], source: str, doc: Document, folder: Path | None) -> Scenario:
    ctx = _Ctx(source, doc, folder)
    if not isinstance(data, dict):
        raise ValidationFailed([Problem(source, 1, 1, "a scenario must be a mapping")])
    _validate_schema(data, ctx)
    raw_speed = data.get("speed", 1)
    if isinstance(raw_speed, (int, float)) and (
        raw_speed != raw_speed or raw_speed > 100_000
    ):  # NaN, inf
        ctx.problem(
            ("speed",),
            f"{raw_speed} is not a usable time scale",
            "a number above 0 and at most 100000; 60 makes a 10-minute task take 10 s",
        )
    if ctx.problems:
        raise ValidationFailed(ctx.problems)
    seed = int(data.get("seed", 0))
    rng = random.Random(seed)
    speed = float(data.get("speed", 1))

    mft = data.get("automate_mft", {}) or {}
    tenants = tuple(
        _tenant(t, ("automate_mft", "tenants", i), rng, ctx)
        for i, t in enumerate(mft.get("tenants") or [{}])
    )
    tasks = tuple(
        _mft_task(t, ("automate_mft", "tasks", i), rng, ctx)
        for i, t in enumerate(mft.get("tasks") or [])
    )
    _unique([(t.id, ("automate_mft", "tasks", i)) for i, t in enumerate(tasks)], "task id", ctx)
    _unique(
        [(t.name, ("automate_mft", "tasks", i)) for i, t in enumerate(tasks) if t.name is not None],
        "task name",
        ctx,
    )
    _unique(
        [
            (k.id, ("automate_mft", "tenants", i, "keys", j))
            for i, t in enumerate(tenants)
            for j, k in enumerate(t.keys)
        ],
        "key id",
        ctx,
    )
    lic = mft.get("license", {}) or {}
    license_ = License(
        plan=str(lic.get("plan", "Professional")),
        start=str(lic.get("start", "2026-01-01")),
        end=str(lic.get("end", "2027-01-01")),
        task_executions_limit=int(lic.get("task_executions_limit", 100_000)),
    )

    acr = data.get("acronis", {}) or {}
    clients = tuple(_client(c, rng) for c in (acr.get("clients") or [{}]))
    _unique([(c.id, ("acronis", "clients", i)) for i, c in enumerate(clients)], "client id", ctx)
    tenant = dict(acr.get("tenant") or {})
    tenant.setdefault("id", str(1_000_000 + rng.randrange(9_000_000)))
    tenant.setdefault("name", "emulated-tenant")
    tenant.setdefault("locator", f"/1/{tenant['id']}/")
    acronis_tasks: list[AcronisTask] = []
    task_paths: list[tuple[str, tuple[Any, ...]]] = []
    for i, spec in enumerate(acr.get("tasks") or []):
        for _ in range(int(spec.get("count", 1))):
            acronis_tasks.append(_acronis_task(spec, ("acronis", "tasks", i), rng, ctx))
            task_paths.append((str(acronis_tasks[-1].id), ("acronis", "tasks", i)))
    _unique(task_paths, "task id", ctx)

    faults = tuple(_fault(f, ("faults", i), ctx) for i, f in enumerate(data.get("faults") or []))
    if ctx.problems:
        raise ValidationFailed(ctx.problems)
    return Scenario(
        seed=seed,
        speed=speed,
        mft_token_lifetime=_seconds(
            mft.get("token_lifetime", 300), ("automate_mft", "token_lifetime"), ctx
        ),
        mft_tenants=tenants,
        mft_tasks=tasks,
        license=license_,
        acronis_token_lifetime=_seconds(
            acr.get("token_lifetime", 7200), ("acronis", "token_lifetime"), ctx
        ),
        acronis_clients=clients,
        acronis_tenant=MappingProxyType(tenant),
        acronis_tasks=tuple(acronis_tasks),
        faults=faults,
        source=source,
    )


def _unique(values: list[tuple[str, tuple[Any, ...]]], what: str, ctx: _Ctx) -> None:
    seen: set[str] = set()
    for value, path in values:
        if value in seen:
            ctx.problem(path, f"duplicate {what} {value!r}")
        seen.add(value)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _tenant(
    spec: dict[str, Any], path: tuple[Any, ...], rng: random.Random, ctx: _Ctx
) -> MftTenant:
    tenant_id = str(spec.get("id") or _uuid(rng))
    keys = tuple(
        read_key(k, path + ("keys", i), rng, ctx) for i, k in enumerate(spec.get("keys") or [{}])
    )
    return MftTenant(tenant_id, keys)


def _mft_task(
    spec: dict[str, Any], path: tuple[Any, ...], rng: random.Random, ctx: _Ctx
) -> MftTask:
    task_id = str(spec.get("id") or _uuid(rng))
    base = {
        "outcome": spec.get("outcome", "success"),
        "queue": spec.get("queue", 1),
        "duration": spec.get("duration", 10),
        "message": spec.get("message"),
        "files": spec.get("files"),
    }
    attempts: list[Attempt] = []
    for i, item in enumerate(spec.get("outcomes") or [None]):
        merged = dict(base)
        if isinstance(item, str):
            merged["outcome"] = item
        elif isinstance(item, dict):
            merged.update({k: v for k, v in item.items() if v is not None})
        where = path + ("outcomes", i) if spec.get("outcomes") else path
        attempts.append(
            Attempt(
                outcome=str(merged["outcome"]),
                queue=_seconds(merged["queue"], where + ("queue",), ctx),
                duration=_seconds(merged["duration"], where + ("duration",), ctx),
                message=None if merged["message"] is None else str(merged["message"]),
                files=MappingProxyType(dict(merged["files"] or {})),
            )
        )
    return MftTask(
        task_id,
        None if spec.get("name") is None else str(spec["name"]),
        tuple(attempts),
        str(spec.get("agent", "emulated-agent")),
    )


def _client(spec: dict[str, Any], rng: random.Random) -> AcronisClient:
    client_id = str(spec.get("id") or _uuid(rng))
    secret = str(spec.get("secret") or f"{rng.getrandbits(128):032x}")
    scopes = tuple(spec.get("scopes", ["task_manager"]))
    return AcronisClient(client_id, secret, scopes)


def _acronis_task(
    spec: dict[str, Any], path: tuple[Any, ...], rng: random.Random, ctx: _Ctx
) -> AcronisTask:
    task_id = (
        int(spec["id"])
        if spec.get("id") is not None and int(spec.get("count", 1)) == 1
        else (1 << 59) + rng.randrange(1 << 62)
    )

    def offset(name: str) -> float | None:
        return (
            None
            if spec.get(name) is None
            else _seconds(spec[name], path + (name,), ctx, signed=True)
        )

    enqueued = offset("enqueued")
    started = offset("started")
    completed = offset("completed")
    assigned = offset("assigned")
    if enqueued is None:
        enqueued = min(x for x in (started, completed, 0.0) if x is not None)
    if assigned is None and started is not None:
        assigned = started
    if completed is not None and started is None:
        started = assigned = completed
    order = [x for x in (enqueued, assigned, started, completed) if x is not None]
    if order != sorted(order):
        ctx.problem(path, "the timeline must go enqueued <= assigned <= started <= completed")
    result = spec.get("result", "ok")
    code = result if isinstance(result, str) else result.get("code", "ok")
    error = None if isinstance(result, str) else result.get("error")
    if code in ("error", "timedout", "abandoned") and error is None:
        error = {
            "code": code.capitalize(),
            "domain": "emulator",
            "reason": spec.get("message") or f"the emulated task ended with {code}",
        }
    payload = None if isinstance(result, str) else result.get("payload")
    warnings = () if isinstance(result, str) else tuple(result.get("warnings") or ())
    return AcronisTask(
        id=task_id,
        uuid=str(spec.get("uuid"))
        if spec.get("uuid") and int(spec.get("count", 1)) == 1
        else _uuid(rng),
        type=str(spec.get("type", "backup")),
        queue=str(spec.get("queue", "backup")),
        priority=str(spec.get("priority", "normal")),
        enqueued=enqueued,
        assigned=assigned,
        started=started,
        completed=completed,
        result_code=str(code) if completed is not None else None,
        result_error=MappingProxyType(dict(error)) if isinstance(error, dict) else None,
        result_payload=None if payload is None else str(payload),
        warnings=warnings,
        policy=MappingProxyType(dict(spec["policy"])) if spec.get("policy") else None,
        resource=MappingProxyType(dict(spec["resource"])) if spec.get("resource") else None,
        tags=tuple(str(t) for t in spec.get("tags") or ()),
        started_by=str(spec.get("started_by", "")),
        workflow_id=None if spec.get("workflow_id") is None else str(spec["workflow_id"]),
        executor=MappingProxyType(dict(spec["executor"])) if spec.get("executor") else None,
        context=MappingProxyType(dict(spec.get("context") or {})),
        cancellable=bool(spec.get("cancellable", True)),
    )


def _fault(spec: dict[str, Any], path: tuple[Any, ...], ctx: _Ctx) -> Fault:
    kind = str(spec["kind"])
    match = spec.get("match") or {}
    if kind == "revoke_tokens" and spec.get("at") is None:
        ctx.problem(path, "a revoke_tokens fault needs `at` (when, from the emulator's start)")
    status = int(spec.get("status", 503))
    if kind == "error" and not 500 <= status <= 599:
        ctx.problem(path + ("status",), f"an error fault answers a 5xx status, not {status}")
    return Fault(
        name=str(spec.get("name") or kind),
        kind=kind,
        platform=match.get("platform"),
        method=None if match.get("method") is None else str(match["method"]).upper(),
        path=str(match.get("path", "*")),
        every=spec.get("every"),
        probability=spec.get("probability"),
        skip=int(spec.get("skip", 0)),
        times=spec.get("times"),
        burst=int(spec.get("burst", 1)),
        status=status,
        retry_after=None if spec.get("retry_after") is None else float(spec["retry_after"]),
        delay=_seconds(spec.get("delay", 1), path + ("delay",), ctx),
        hang_for=min(600.0, _seconds(spec.get("hang_for", 30), path + ("hang_for",), ctx)),
        at=None if spec.get("at") is None else _seconds(spec["at"], path + ("at",), ctx),
    )
