"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _state_store_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every mftrun process it starts) records runs in its own store, never in
    the repository's examples/.mftrun: no test sees another's runs or locks."""
    path = tmp_path / "mftrun-state" / "state.db"
    monkeypatch.setenv("MFTRUN_STATE", str(path))
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    from postgres_server import cluster

    with cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs against both backends: a SQLite file and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'state' / 'state.db'}"
    from postgres_server import fresh_database

    return fresh_database(request.getfixturevalue("postgres_server"))
