"""History: how long each task took on its earlier successful runs, read back per step.

Why a key and not the step id: the same transfer may be a step of several pipelines, and
one step id may mean different tasks on staging and production. A duration is recorded
under `history_key`: a sha256 of the environment's identity (provider, base URL or region,
tenant / client / key id) and the task (the action and what it targets, as written). Two
environments or tenants therefore never share a history, even in one shared PostgreSQL
store, and no URL or tenant id is stored in clear text.

The durations are on the executor's clock, from the moment the start was handed over to
the terminal poll (`seconds`, what a person calls the duration) and to the last poll that
still said "running" (`earliest`, the earliest the run can have ended): the window of dense
polls opens from the lower bound, so a first night's late notice does not push it late.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mftrun.errors import StateError
from mftrun.model import Environment, Pipeline, Step
from mftrun.poll_schedule import Expectation
from mftrun.state.store import SqlStore

IDENTITY_FIELDS = ("tenant_id", "client_id", "key_id")  # non-secret: who, not how
_CHUNK = 400  # keys per IN (...) list


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    earliest: float


def history_key(
    step: Step, env: Environment, environ: Mapping[str, str], *, emulated: bool = False
) -> str:
    """The task's identity on this environment; secrets never enter it.

    A base URL or region read from a variable (`{env: NAME}`) is identified by the value
    the variable has, as `apply` and `plan` both see it (before or after `apply` resolves
    it). Runs under `--emulate` keep a history of their own, named by the environment as
    written (not by the emulator's port or its generated credentials, which change every
    run), so a rehearsal learns from the rehearsals before it and never from, or into,
    the real platform's history."""
    who: dict[str, str] = {}
    for name in IDENTITY_FIELDS:
        ref = env.credentials.get(name)
        if ref is None:
            continue
        if ref.kind == "value":
            who[name] = ref.ref
        elif ref.kind == "env":
            who[name] = environ.get(ref.ref, f"env:{ref.ref}")
        else:
            who[name] = f"{ref.kind}:{ref.ref}"
    task: Any = step.action.written  # as written: templates stay templates
    if step.action.kind == "start_task":  # the task, not its parameters or statuses
        if isinstance(task, Mapping):
            task = {k: task.get(k) for k in ("task_id", "name") if task.get(k) is not None}
        else:
            task = {"task_id": task}
    base_url, region = env.base_url, env.region
    if env.base_url_env:  # the variable's value, resolved by `apply` or not yet (`plan`)
        base_url = environ.get(env.base_url_env, f"env:{env.base_url_env}")
    if env.region_env:
        region = environ.get(env.region_env, f"env:{env.region_env}")
        base_url = ""  # derived from the region
    identity: dict[str, Any] = {
        "environment": env.name,
        "provider": env.provider,
        "base_url": base_url,
        "region": region,
        "base_url_env": env.base_url_env,
        "who": who,
        "action": step.action.kind,
        "task": task,
    }
    if emulated:
        identity["emulated"] = True
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Duration:
    """One successful remote run's duration, as recorded."""

    key: str
    run_id: str
    step_id: str
    attempt: int
    ended_at: str
    seconds: float
    earliest: float


def record_all(store: SqlStore, durations: Sequence[Duration]) -> None:
    """Durations in one transaction (a re-recorded attempt replaces itself)."""
    if not durations:
        return
    p = store.placeholder
    with store._cursor(f"recording {len(durations)} duration(s)") as cur:
        cur.executemany(
            "INSERT INTO mftrun_durations (history_key, run_id, step_id, attempt, ended_at,"
            f" seconds, earliest) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
            " ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET seconds = excluded.seconds,"
            " earliest = excluded.earliest, ended_at = excluded.ended_at",
            [
                (d.key, d.run_id, d.step_id, d.attempt, d.ended_at, d.seconds, d.earliest)
                for d in durations
            ],
        )


def record(
    store: SqlStore,
    key: str,
    *,
    run_id: str,
    step_id: str,
    attempt: int,
    ended_at: str,
    seconds: float,
    earliest: float,
) -> None:
    """One successful remote run's duration."""
    record_all(
        store,
        [Duration(key, run_id, step_id, attempt, ended_at, float(seconds), float(earliest))],
    )


def samples(store: SqlStore, keys: Iterable[str], limit: int) -> dict[str, list[Sample]]:
    """The last `limit` durations of each key, newest first (keys without any are absent)."""
    wanted = sorted(set(keys))
    out: dict[str, list[Sample]] = {}
    if limit <= 0:
        return out
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join([store.placeholder] * len(chunk))
        query = (
            "SELECT history_key, seconds, earliest FROM ("
            " SELECT history_key, seconds, earliest, ROW_NUMBER() OVER ("
            "  PARTITION BY history_key ORDER BY ended_at DESC, run_id DESC, attempt DESC) AS n"
            f" FROM mftrun_durations WHERE history_key IN ({marks})) ranked"
            f" WHERE n <= {store.placeholder} ORDER BY history_key, n"
        )
        with store._cursor("reading the history of durations") as cur:
            cur.execute(query, (*chunk, int(limit)))
            rows = cur.fetchall()
        for key, seconds, earliest in rows:
            out.setdefault(str(key), []).append(Sample(float(seconds), float(earliest)))
    return out


@dataclass
class HistoryBook:
    """What one run knows of its steps' history, and how it adds to it.

    `expect` answers the executor's schedule (None: today's schedule); `learned` notes a
    success and `flush` writes them all in one transaction when the run ends: only the next
    run reads them, and the scheduler thread should not wait on a commit per step (a crash
    loses that run's durations, never anything resume needs). A store that fails here is
    said once and the run goes on: history is an optimisation, never a reason to stop a
    transfer.
    """

    keys: Mapping[str, str] = field(default_factory=dict)  # step id -> history key
    expected: Mapping[str, Expectation] = field(default_factory=dict)  # step id -> history
    store: SqlStore | None = None
    run_id: str | None = None
    warn: Callable[[str], None] | None = None
    failed: bool = False
    pending: list[Duration] = field(default_factory=list)

    def expect(self, step_id: str) -> Expectation | None:
        return self.expected.get(step_id)

    def learned(
        self, step_id: str, attempt: int, seconds: float, earliest: float, ended_at: str
    ) -> None:
        key = self.keys.get(step_id)
        if self.store is None or self.run_id is None or key is None or self.failed:
            return
        low = min(earliest, seconds)
        self.pending.append(
            Duration(key, self.run_id, step_id, attempt, ended_at, float(seconds), float(low))
        )

    def flush(self) -> None:
        """Write what this run learned (called once, as `apply` winds down)."""
        pending, self.pending = self.pending, []
        if self.store is None or self.failed or not pending:
            return
        try:
            record_all(self.store, pending)
        except StateError as exc:
            self.failed = True
            if self.warn is not None:
                self.warn(f"{exc.message}; this run's durations are not in its history")

    def expected_total(self, needs: Mapping[str, Sequence[str]]) -> float | None:
        """The pipeline's expected duration (critical path over p50s), None without history.

        For the live progress line (`expected_seconds`): steps without history weigh 0, so
        this is a lower bound when only some steps have one.
        """
        if not self.expected:
            return None
        from mftrun.critical_path import longest_path

        p50 = {sid: e.p50 for sid, e in self.expected.items()}
        return longest_path(needs, p50).seconds


def keys_of(
    pipeline: Pipeline, environ: Mapping[str, str], *, emulated: bool = False
) -> dict[str, str]:
    """Step id -> history key for the steps that take part in history (`poll.history` > 0)."""
    out = {}
    for step in pipeline.steps:
        env = pipeline.environments.get(step.environment)
        if env is not None and step.poll.history > 0:
            out[step.id] = history_key(step, env, environ, emulated=emulated)
    return out


def read_book(
    store: SqlStore | None,
    pipeline: Pipeline,
    environ: Mapping[str, str],
    *,
    run_id: str | None = None,
    warn: Callable[[str], None] | None = None,
    emulated: bool = False,
) -> HistoryBook:
    """The history of every step of `pipeline` as written (before `--emulate` points it at
    the emulator), of emulated runs when `emulated`; an empty book without a store."""
    if store is None:
        return HistoryBook()
    keys = keys_of(pipeline, environ, emulated=emulated)
    limit = max((s.poll.history for s in pipeline.steps), default=0)
    try:
        found = samples(store, keys.values(), limit)
    except StateError as exc:
        if warn is not None:
            warn(f"{exc.message}; polling without history")
        return HistoryBook(keys=keys, store=store, run_id=run_id, warn=warn, failed=True)
    expected: dict[str, Expectation] = {}
    for step in pipeline.steps:
        got = found.get(keys.get(step.id, ""), [])[: step.poll.history]
        if got:
            expected[step.id] = Expectation.of([s.seconds for s in got], [s.earliest for s in got])
    return HistoryBook(keys=keys, expected=expected, store=store, run_id=run_id, warn=warn)
