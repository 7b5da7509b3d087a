"""The default store: one SQLite file (WAL), and OS file locks beside it (`state.lock`)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mftrun.errors import StateError
from mftrun.state.lock import describe, hold, lock_file, read_holder
from mftrun.state.store import SqlStore, _one_line


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

    def lock(
        self, key: str, holder: Mapping[str, Any], wait: float | None
    ) -> contextlib.AbstractContextManager[None]:
        return hold(lock_file(self.path, key), key, holder, wait)

    def unlock(self, key: str) -> str:
        path = lock_file(self.path, key)
        if not path.exists():
            return f"no lock file for {key!r} ({path})"
        holder = read_holder(path)
        path.unlink()
        return f"removed lock file {path}" + (
            f" (last holder: {describe(holder)})" if holder else ""
        )
