"""Builders the provider tests share: fast retry policies, environments on an emulator, a
step context, and a poll loop. One copy here instead of a near-copy per test file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mftrun import templating
from mftrun.emulator import Emulator
from mftrun.http.retry import DEFAULT_POLICIES, Policies
from mftrun.providers.acronis.policies import ACRONIS_POLICIES
from mftrun.model import CredentialRef, Environment, Poll


def fast(policies: Policies) -> Policies:
    """The same policies with 50 ms back-off and no jitter: retries happen, tests stay quick."""
    return policies.replace(
        read=policies.read.replace(backoff_factor=0.05, jitter=0.0),
        poll=policies.poll.replace(backoff_factor=0.05, jitter=0.0),
    )


FAST_MFT = fast(DEFAULT_POLICIES)
FAST_ACRONIS = fast(ACRONIS_POLICIES)


class Ctx:
    """The step context a provider gets from the executor: an id and template evaluation."""

    step_id = "step"
    poll = Poll()

    def evaluate(self, expression: str, **names: Any) -> Any:
        return templating.evaluate(expression, names)


def mft_env(
    emu: Emulator, folder: Path, *, timeout: float = 5.0, **overrides: CredentialRef
) -> Environment:
    """An Automate MFT environment with the emulator's generated credentials (key on disk)."""
    paths = emu.write_credentials(folder)
    creds = {
        "tenant_id": CredentialRef("value", emu.credentials.tenant_id),
        "key_id": CredentialRef("value", emu.credentials.key_id),
        "private_key": CredentialRef("file", paths["MFT_PRIVATE_KEY_FILE"]),
    }
    creds.update(overrides)
    return Environment("mft", "automate-mft", emu.url, creds, http_timeout=timeout)


def acronis_env(emu: Emulator, **overrides: CredentialRef) -> Environment:
    """An Acronis environment; the secret comes from ACRONIS_SECRET (see provider tests)."""
    creds = {
        "client_id": CredentialRef("value", emu.credentials.client_id),
        "client_secret": CredentialRef("env", "ACRONIS_SECRET"),
    }
    creds.update(overrides)
    return Environment("backup", "acronis", emu.url, creds, http_timeout=5.0)


def run_to_end(provider: Any, handle: Any, first: Any, *, limit: float = 20.0) -> Any:
    """Poll until the remote run is terminal, honouring Retry-After, within `limit` seconds."""
    obs = first
    deadline = time.monotonic() + limit
    while not obs.terminal:
        assert time.monotonic() < deadline, f"still {obs.remote_status} after {limit}s"
        time.sleep(min(obs.retry_after or 0.05, 3.0))
        obs = provider.poll(handle, Ctx())
    return obs


def start(provider: Any, kind: str, raw: Any, ctx: Any) -> Any:
    """Start an action as the executor does: the mapping as it would be after rendering,
    parsed by the action's own module, then handed to the provider as its typed spec."""
    from mftrun.actions import Where, parse_rendered

    return provider.start(kind, parse_rendered(kind, raw, Where("test", provider.name)), ctx)
