"""Acronis task manager v2: wait for tasks (provider.py), client-credentials token (token.py)."""

from __future__ import annotations

from mftrun.providers.platform import Platform

PLATFORM = Platform(
    name="acronis",
    actions=("wait_tasks", "http"),
    credential_fields=("client_id", "client_secret"),
    secret_fields=frozenset({"client_secret"}),
    provider="mftrun.providers.acronis.provider:AcronisProvider",
)
