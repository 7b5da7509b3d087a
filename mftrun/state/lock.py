"""The run lock, and everything a losing `apply` needs to learn it lost: cheap on purpose.

Why a module of its own: twenty applies racing for one pipeline on two cores should each exit 4
in well under a second, so the loser's path (read the lock key from the file's top lines, who
am I, flock, the holder's message) imports only the standard library: no YAML, no schema, no
SQLite. The SQLite store takes the same lock through `hold`, which is reentrant within the
process, so `apply` can take it before it opens (or even imports) the store.

Why a file lock and not a row: the kernel releases an flock when its holder dies, however it
dies (SIGKILL, a crashed runner), so a lock never goes stale and needs hand cleaning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mftrun.errors import LockHeld, StateError

_LOCK_POLL = 0.2  # seconds between tries while --wait-lock waits
LOCK_HINT = (
    "wait for it with --wait-lock DURATION; `mftrun state unlock KEY` only if you know the "
    "holder is gone"
)

# CI systems' own run identity, first match wins: (variable, how it is shown)
CI_VARIABLES = (
    ("GITHUB_RUN_ID", "github"),
    ("CI_JOB_ID", "gitlab"),
    ("BUILD_URL", "jenkins"),
    ("BUILDKITE_BUILD_ID", "buildkite"),
    ("CIRCLE_WORKFLOW_ID", "circleci"),
)

# -- who holds it -------------------------------------------------------------------------------


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and readable: 20261202T131500Z-3f9a1c."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


def ci_identity(environ: Mapping[str, str]) -> str | None:
    for name, system in CI_VARIABLES:
        value = environ.get(name)
        if value:
            if name == "GITHUB_RUN_ID":
                repo = environ.get("GITHUB_REPOSITORY", "")
                attempt = environ.get("GITHUB_RUN_ATTEMPT", "")
                value = f"{repo}#{value}" + (f".{attempt}" if attempt else "")
            elif name == "CI_JOB_ID" and environ.get("CI_PROJECT_PATH"):
                value = f"{environ['CI_PROJECT_PATH']}#{value}"
            return f"{system} {value}"
    return None


def run_meta(run_id: str, environ: Mapping[str, str]) -> dict[str, Any]:
    from mftrun import __version__

    return {
        "run_id": run_id,
        "host": os.uname().nodename,  # socket.gethostname(), without importing socket
        "pid": os.getpid(),
        "ci": ci_identity(environ),
        "mftrun_version": __version__,
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


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


# -- which lock ---------------------------------------------------------------------------------

_TOP_KEY = re.compile(r"^(name|lock):[ \t]*(?P<value>[^#\n]*?)[ \t]*(#.*)?$", re.MULTILINE)


def quick_lock_key(path: str) -> str | None:
    """The lock key from the file's top-level `lock:` or `name:` lines, without parsing it.

    Why: twenty racing applies on two cores should learn "locked" before each validates its
    file (jsonschema, templates). None when the lines are not plain: the lock is then taken
    after validation, from the typed pipeline, which `apply` checks agrees either way.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, ValueError):
        return None
    found: dict[str, str] = {}
    for match in _TOP_KEY.finditer(text):
        value = match.group("value")
        if value[:1] in ("'", '"'):
            if len(value) < 2 or value[-1] != value[0] or "\\" in value:
                return None
            value = value[1:-1]
        if not value or value[:1] in "[{&*!|>":
            return None
        found.setdefault(match.group(1), value)
    if "lock" in found:
        return found["lock"]
    if "name" in found:
        return found["name"]
    stem = path.replace("\\", "/").rsplit("/", 1)[-1]
    return stem.rsplit(".", 1)[0] or stem


def sqlite_path(url: str | None, pipeline_file: str | None) -> Path | None:
    """The SQLite file a store URL names (None for any other kind of store).

    Kept in step with `mftrun.state.url.open_store`, which a test checks.
    """
    if not url:
        base = Path(pipeline_file).resolve().parent if pipeline_file else Path.cwd()
        return base / ".mftrun" / "state.db"
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        return Path(url[len("sqlite://") :]).expanduser() if scheme == "sqlite" else None
    return Path(url).expanduser()


def lock_file(store_path: Path, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:120]
    return store_path.parent / "locks" / f"{safe}.lock"


# -- holding it ---------------------------------------------------------------------------------

_held: dict[str, list[int]] = {}  # lock file -> [fd, holds] in this process


@contextlib.contextmanager
def hold(path: Path, key: str, holder: Mapping[str, Any], wait: float | None) -> Iterator[None]:
    """Hold the flock on `path` (LockHeld naming the holder when another process has it).

    Reentrant within one process: an flock belongs to an open file, so taking it a second
    time through a second open would wait for ourselves.
    """
    name = os.path.abspath(path)
    if name in _held:
        _held[name][1] += 1
        try:
            yield
        finally:
            _held[name][1] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(f"lock {path} cannot be created: {' '.join(str(exc).split())}") from None
    try:
        deadline = time.monotonic() + (wait or 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if wait is None or time.monotonic() >= deadline:
                    raise LockHeld(
                        held_message(key, read_holder(path), wait), hint=LOCK_HINT
                    ) from None
                time.sleep(_LOCK_POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(dict(holder)).encode(), 0)
        os.fsync(fd)
        _held[name] = [fd, 1]
        try:
            yield
        finally:
            del _held[name]
    finally:
        os.close(fd)  # releases the flock


def read_holder(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
