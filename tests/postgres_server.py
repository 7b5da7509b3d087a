"""A throw-away PostgreSQL cluster for the tests: initdb in a temp dir, a Unix socket only.

PostgreSQL refuses to run as root, and CI runs as root: the cluster then runs as `nobody`
in a directory it owns. Without Debian's binaries the tests that need it skip with the
reason, except under CI=true, where they fail: there nothing that matters may be skipped.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SUPERUSER = "mftrun"
PASSWORD_USER, PASSWORD = "pwuser", "s3cret-pw"


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: p.split("/")[4])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def need_binaries() -> Path:
    bindir = binaries()
    if bindir is None:
        message = "PostgreSQL binaries not found (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " - required under CI=true")
        pytest.skip(message)
    return bindir


@contextmanager
def cluster() -> Iterator[str]:
    """Yield a superuser URL over the cluster's socket; stop and remove it afterwards."""
    bindir = need_binaries()
    folder = Path(tempfile.mkdtemp(prefix="mftrun-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        run_as = ["runuser", "-u", "nobody", "--"]
    data = folder / "data"
    env = {**os.environ, "LC_ALL": "C.UTF-8"}

    def pg(*args: str) -> None:
        subprocess.run([*run_as, *args], check=True, capture_output=True, env=env, cwd=folder)

    pg(str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8")
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(f"listen_addresses = ''\nunix_socket_directories = '{folder}'\n")
        conf.write("fsync = off\nmax_connections = 100\n")
    (data / "pg_hba.conf").write_text(f"local all {SUPERUSER} trust\nlocal all all scram-sha-256\n")
    pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "start")
    url = f"postgresql://{SUPERUSER}@/postgres?host={folder}"
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
        yield url
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            env=env,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the cluster; its URL (superuser)."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {PASSWORD_USER}")
    return server_url.replace("/postgres?", f"/{name}?")
