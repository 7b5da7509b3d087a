"""The run-state store: runs and their steps, in SQL that SQLite and PostgreSQL both speak.

Why one JSON document per step and not a column per field: a step's record has the shape of a
step in report.json (`StepResult.to_dict`), so resume reads the store and an earlier
report.json (`--resume-from`) with one reader, and a field added to the report needs no
migration. Each transition is one UPSERT of that document, committed before it returns.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mftrun.errors import StateError

SCHEMA_VERSION = 2

# Each entry brings the schema from version i to i + 1. Both dialects read these statements.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS mftrun_runs ("
        " id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, lock_key TEXT NOT NULL,"
        " file TEXT NOT NULL, sha256 TEXT NOT NULL, started_at TEXT NOT NULL,"
        " ended_at TEXT, verdict TEXT, exit_code INTEGER, meta TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS mftrun_runs_pipeline ON mftrun_runs (pipeline, started_at)",
        "CREATE TABLE IF NOT EXISTS mftrun_steps ("
        " run_id TEXT NOT NULL, step_id TEXT NOT NULL, position INTEGER NOT NULL,"
        " record TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, step_id))",
        "CREATE TABLE IF NOT EXISTS mftrun_locks ("
        " lock_key TEXT PRIMARY KEY, holder TEXT NOT NULL, since TEXT NOT NULL)",
    ),
    # 2: durations of successful remote runs, keyed by environment identity + task
    # (`state.history`): what history-aware polling and `plan` read.
    (
        "CREATE TABLE IF NOT EXISTS mftrun_durations ("
        " history_key TEXT NOT NULL, run_id TEXT NOT NULL, step_id TEXT NOT NULL,"
        " attempt INTEGER NOT NULL, ended_at TEXT NOT NULL, seconds DOUBLE PRECISION NOT NULL,"
        " earliest DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, step_id, attempt))",
        "CREATE INDEX IF NOT EXISTS mftrun_durations_key ON mftrun_durations"
        " (history_key, ended_at)",
    ),
)


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: str
    pipeline: str
    lock_key: str
    file: str
    sha256: str
    started_at: str  # ISO 8601, UTC
    ended_at: str | None = None
    verdict: str | None = None  # success / failed / error / interrupted ... (None: unfinished)
    exit_code: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)  # version, host, pid, ci, resumed_from

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "lock": self.lock_key,
            "file": self.file,
            "sha256": self.sha256,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            **dict(self.meta),
        }


class SqlStore:
    """Runs and steps over one DB-API connection; subclasses connect and lock.

    `name` is how messages show the store (a path, or a URL without its password).
    """

    placeholder = "?"
    name = "store"

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one connection: one statement at a time

    # -- subclasses ----------------------------------------------------------------------------

    def _connection(self) -> Any:
        raise NotImplementedError

    def _errors(self) -> tuple[type[BaseException], ...]:
        raise NotImplementedError

    def _upsert_step_sql(self) -> str:
        p = self.placeholder
        return (
            "INSERT INTO mftrun_steps (run_id, step_id, position, record, updated_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (run_id, step_id) DO UPDATE SET "
            "record = excluded.record, updated_at = excluded.updated_at"
        )

    def close(self) -> None:
        raise NotImplementedError

    def lock(
        self, key: str, holder: Mapping[str, Any], wait: float | None
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the run lock `key` (LockHeld when another process holds it)."""
        raise NotImplementedError

    def unlock(self, key: str) -> str:
        """Remove the lock `key` by hand; says what it removed."""
        raise NotImplementedError

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _cursor(self, what: str) -> Iterator[Any]:
        """One committed transaction; any driver error becomes a StateError naming the store."""
        with self._lock:
            conn = self._connection()
            try:
                cur = conn.cursor()
                try:
                    yield cur
                finally:
                    cur.close()
                conn.commit()
            except self._errors() as exc:
                try:
                    conn.rollback()
                except self._errors():
                    pass
                raise StateError(
                    f"state store {self.name}: {what} failed: {_one_line(exc)}"
                ) from None

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def migrate(self) -> None:
        with self._cursor("reading the schema version") as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS mftrun_schema (version INTEGER NOT NULL)")
            cur.execute("SELECT MAX(version) FROM mftrun_schema")
            row = cur.fetchone()
        version = int(row[0]) if row and row[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state store {self.name} was written by a newer mftrun (schema version "
                f"{version}; this mftrun knows up to {SCHEMA_VERSION})",
                hint="upgrade mftrun, or point --state at another store",
            )
        for number in range(version, SCHEMA_VERSION):
            with self._cursor(f"migrating to schema version {number + 1}") as cur:
                for statement in MIGRATIONS[number]:
                    cur.execute(statement)
                cur.execute(
                    self._sql("INSERT INTO mftrun_schema (version) VALUES (?)"), (number + 1,)
                )

    # -- runs ---------------------------------------------------------------------------------

    def begin_run(self, info: RunInfo) -> None:
        with self._cursor("recording the run's start") as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO mftrun_runs (id, pipeline, lock_key, file, sha256, started_at,"
                    " meta) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    info.id,
                    info.pipeline,
                    info.lock_key,
                    info.file,
                    info.sha256,
                    info.started_at,
                    json.dumps(dict(info.meta)),
                ),
            )

    def finish_run(self, run_id: str, *, ended_at: str, verdict: str, exit_code: int) -> None:
        with self._cursor("recording the run's end") as cur:
            cur.execute(
                self._sql(
                    "UPDATE mftrun_runs SET ended_at = ?, verdict = ?, exit_code = ? WHERE id = ?"
                ),
                (ended_at, verdict, exit_code, run_id),
            )

    def put_step(
        self, run_id: str, step_id: str, position: int, record: Mapping[str, Any], at: str
    ) -> None:
        payload = json.dumps(record, ensure_ascii=False, default=str)
        with self._cursor(f"recording step {step_id}") as cur:
            cur.execute(self._upsert_step_sql(), (run_id, step_id, position, payload, at))

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[RunInfo]:
        query = "SELECT * FROM mftrun_runs"
        args: tuple[Any, ...] = ()
        if pipeline is not None:
            query += " WHERE pipeline = ?"
            args = (pipeline,)
        query += " ORDER BY started_at DESC, id DESC LIMIT ?"
        with self._cursor("listing runs") as cur:
            cur.execute(self._sql(query), (*args, limit))
            return [_run_info(cur, row) for row in cur.fetchall()]

    def run(self, run_id: str) -> RunInfo | None:
        with self._cursor("reading a run") as cur:
            cur.execute(self._sql("SELECT * FROM mftrun_runs WHERE id = ?"), (run_id,))
            row = cur.fetchone()
            return _run_info(cur, row) if row else None

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        with self._cursor("reading a run's steps") as cur:
            cur.execute(
                self._sql("SELECT record FROM mftrun_steps WHERE run_id = ? ORDER BY position"),
                (run_id,),
            )
            rows = cur.fetchall()
        out = []
        for (record,) in rows:
            try:
                value = json.loads(record)
            except ValueError:
                raise StateError(
                    f"state store {self.name}: run {run_id} holds a damaged step"
                ) from None
            out.append(value)
        return out

    def step_counts(self, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {run_id: {} for run_id in run_ids}
        for run_id in run_ids:
            for record in self.steps(run_id):
                status = str(record.get("status", "pending"))
                counts[run_id][status] = counts[run_id].get(status, 0) + 1
        return counts


def _run_info(cur: Any, row: Sequence[Any]) -> RunInfo:
    names = [d[0] for d in cur.description]
    data = dict(zip(names, row, strict=True))
    try:
        meta = json.loads(data.get("meta") or "{}")
    except ValueError:
        meta = {}
    return RunInfo(
        id=data["id"],
        pipeline=data["pipeline"],
        lock_key=data["lock_key"],
        file=data["file"],
        sha256=data["sha256"],
        started_at=data["started_at"],
        ended_at=data["ended_at"],
        verdict=data["verdict"],
        exit_code=data["exit_code"],
        meta=meta if isinstance(meta, dict) else {},
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text[:300]
