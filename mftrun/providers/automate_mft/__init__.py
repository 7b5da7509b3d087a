"""Progress Automate MFT: start tasks and watch their runs (provider.py), JWT token (token.py)."""

from __future__ import annotations

from types import MappingProxyType

from mftrun.providers.platform import Platform

PLATFORM = Platform(
    name="automate-mft",
    actions=("start_task", "http"),
    credential_fields=("tenant_id", "key_id", "private_key"),
    secret_fields=frozenset({"private_key"}),
    regions=MappingProxyType(
        {
            "us": "https://api.us.mft.progress.com",
            "eu": "https://api.eu.mft.progress.com",
            "staging": "https://api.staging.mft.progress.com",
        }
    ),
    provider="mftrun.providers.automate_mft.provider:AutomateMftProvider",
)
