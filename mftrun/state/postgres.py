"""The shared store for runners on many machines: PostgreSQL through psycopg 3.

Locks are session advisory locks held on the store's own connection: PostgreSQL releases
them when that connection ends, however the holder died, so a lock never goes stale. A row
in mftrun_locks says who holds it, for the message a second run prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from mftrun.errors import LockHeld, StateError
from mftrun.state.lock import LOCK_HINT, describe, held_message
from mftrun.state.store import SqlStore, _one_line

_LOCK_POLL = 0.2


def lock_id(key: str) -> int:
    """A stable signed 64-bit advisory-lock id for a lock key."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class PostgresStore(SqlStore):
    placeholder = "%s"

    def __init__(self, url: str, shown: str) -> None:
        super().__init__()
        self.name = shown
        try:
            import psycopg
        except ImportError:
            raise StateError(
                f"state store {shown} is PostgreSQL, but psycopg is not installed",
                hint="pip install 'mftrun[postgres]'",
            ) from None
        self._psycopg = psycopg
        try:
            self._conn = psycopg.connect(url, connect_timeout=10, application_name="mftrun")
        except psycopg.Error as exc:
            raise StateError(
                f"state store {shown} is unreachable: {_scrub(_one_line(exc), url)}",
                hint="check the server, the credentials (PGPASSWORD or the URL) and the network",
            ) from None
        self.migrate()

    def _connection(self) -> Any:
        return self._conn

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (self._psycopg.Error,)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    @contextlib.contextmanager
    def lock(self, key: str, holder: Mapping[str, Any], wait: float | None) -> Iterator[None]:
        ident = lock_id(key)
        deadline = time.monotonic() + (wait or 0.0)
        while True:
            with self._cursor("taking the lock") as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (ident,))
                row = cur.fetchone()
            if row and row[0]:
                break
            if wait is None or time.monotonic() >= deadline:
                raise LockHeld(held_message(key, self._holder(key), wait), hint=LOCK_HINT)
            time.sleep(_LOCK_POLL)
        try:
            with self._cursor("recording the lock holder") as cur:
                cur.execute(
                    "INSERT INTO mftrun_locks (lock_key, holder, since) VALUES (%s, %s, %s) "
                    "ON CONFLICT (lock_key) DO UPDATE SET holder = excluded.holder, "
                    "since = excluded.since",
                    (key, json.dumps(dict(holder)), str(holder.get("since", ""))),
                )
            yield
        finally:
            with contextlib.suppress(StateError), self._cursor("releasing the lock") as cur:
                cur.execute("DELETE FROM mftrun_locks WHERE lock_key = %s", (key,))
                cur.execute("SELECT pg_advisory_unlock(%s)", (ident,))

    def _holder(self, key: str) -> dict[str, Any]:
        try:
            with self._cursor("reading the lock holder") as cur:
                cur.execute("SELECT holder FROM mftrun_locks WHERE lock_key = %s", (key,))
                row = cur.fetchone()
            value = json.loads(row[0]) if row else {}
        except (StateError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def unlock(self, key: str) -> str:
        holder = self._holder(key)
        with self._cursor("removing the lock") as cur:
            cur.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                "((classid::bigint << 32) | objid::bigint) = (%s::bigint)",
                (lock_id(key),),
            )
            pids = [row[0] for row in cur.fetchall()]
            for pid in pids:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            cur.execute("DELETE FROM mftrun_locks WHERE lock_key = %s", (key,))
        what = f"ended the session(s) {', '.join(map(str, pids))} holding it" if pids else ""
        who = f" (holder: {describe(holder)})" if holder else ""
        return f"lock {key!r}: " + (what or "nobody held it; removed its holder row") + who


def _scrub(text: str, url: str) -> str:
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
