"""The default store: one SQLite file (WAL), and OS file locks beside it.

Why a file lock and not a row: the kernel releases an flock when its holder dies, however it
dies (SIGKILL, a crashed runner), so a lock can never go stale and need hand cleaning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mftrun.errors import LockHeld, StateError
from mftrun.state.store import SqlStore, _one_line

_LOCK_POLL = 0.2  # seconds between tries while --wait-lock waits
LOCK_HINT = (
    "wait for it with --wait-lock DURATION; `mftrun state unlock KEY` only if you know the "
    "holder is gone"
)


class SqliteStore(SqlStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.name = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when it returns, so a SIGKILL or a power cut right after
            # "start about to be sent" still leaves that record.
            self._conn.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as exc:
            raise StateError(
                f"state store {self.name} cannot be opened: {_one_line(exc)}",
                hint="check the path and its permissions, or choose another with --state",
            ) from None
        self.migrate()

    def _connection(self) -> Any:
        return self._conn

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error, OSError)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    # -- locks ---------------------------------------------------------------------------------

    def _lock_path(self, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:120]
        return self.path.parent / "locks" / f"{safe}.lock"

    @contextlib.contextmanager
    def lock(self, key: str, holder: Mapping[str, Any], wait: float | None) -> Iterator[None]:
        path = self._lock_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"lock {path} cannot be created: {_one_line(exc)}") from None
        try:
            deadline = time.monotonic() + (wait or 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if wait is None or time.monotonic() >= deadline:
                        raise LockHeld(
                            held_message(key, _read_holder(path), wait), hint=LOCK_HINT
                        ) from None
                    time.sleep(_LOCK_POLL)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(dict(holder)).encode(), 0)
            os.fsync(fd)
            yield
        finally:
            os.close(fd)  # releases the flock

    def unlock(self, key: str) -> str:
        path = self._lock_path(key)
        if not path.exists():
            return f"no lock file for {key!r} ({path})"
        holder = _read_holder(path)
        path.unlink()
        return f"removed lock file {path}" + (
            f" (last holder: {describe(holder)})" if holder else ""
        )


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def describe(holder: Mapping[str, Any]) -> str:
    parts = [f"host {holder.get('host', '?')}", f"pid {holder.get('pid', '?')}"]
    if holder.get("ci"):
        parts.append(f"CI run {holder['ci']}")
    if holder.get("run_id"):
        parts.append(f"run {holder['run_id']}")
    if holder.get("since"):
        parts.append(f"since {holder['since']}")
    return ", ".join(parts)


def held_message(key: str, holder: Mapping[str, Any], wait: float | None) -> str:
    waited = f" (waited {wait:g}s)" if wait else ""
    who = describe(holder) if holder else "another process"
    return (
        f"lock {key!r} is held by {who}{waited}: another apply of this pipeline is running; "
        "nothing was started"
    )
