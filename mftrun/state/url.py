"""Which store a run uses: `--state URL`, else MFTRUN_STATE, else SQLite next to the pipeline.

Accepted: `sqlite:///path/state.db` (the path after `sqlite://`), a bare path, or
`postgresql://user@host/db` (`postgres://` too; the password from the URL, PGPASSWORD or
~/.pgpass). A store is always shown without its password.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mftrun.errors import UsageError
from mftrun.state.store import SqlStore

DEFAULT_FOLDER = ".mftrun"
DEFAULT_FILE = "state.db"


def default_path(pipeline_file: str | None) -> Path:
    base = Path(pipeline_file).resolve().parent if pipeline_file else Path.cwd()
    return base / DEFAULT_FOLDER / DEFAULT_FILE


def choose(url: str | None, environ: Mapping[str, str]) -> str | None:
    return url or environ.get("MFTRUN_STATE") or None


def shown(url: str) -> str:
    """The URL without its password, for every message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def open_store(url: str | None, pipeline_file: str | None) -> SqlStore:
    if not url:
        from mftrun.state.sqlite import SqliteStore

        return SqliteStore(default_path(pipeline_file))
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        from mftrun.state.postgres import PostgresStore

        return PostgresStore(url, shown(url))
    if scheme == "sqlite":
        from mftrun.state.sqlite import SqliteStore

        return SqliteStore(Path(url[len("sqlite://") :]).expanduser())
    if scheme:
        raise UsageError(
            f"--state {shown(url)}: unknown kind of store {scheme!r}",
            hint="use sqlite:///path/state.db, a path, or postgresql://user@host/db",
        )
    from mftrun.state.sqlite import SqliteStore

    return SqliteStore(Path(url).expanduser())
