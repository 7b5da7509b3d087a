"""Which provider class serves which platform; the one place the executor asks for a provider."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mftrun.clock import Clock, SystemClock
from mftrun.errors import InputError
from mftrun.http.retry import Policies
from mftrun.model import Environment


def provider_class(name: str) -> type:
    """The platform's provider class, imported now (its declaration names it)."""
    import importlib

    from mftrun.providers.catalog import PLATFORMS

    platform = PLATFORMS.get(name)
    if platform is None:
        raise InputError(f"unknown provider {name!r}; expected one of: {', '.join(PLATFORMS)}")
    module, _, cls = platform.provider.partition(":")
    provider: type = getattr(importlib.import_module(module), cls)
    return provider


def create_provider(
    env: Environment,
    *,
    max_parallel: int = 8,
    redactor: Any,
    environ: Mapping[str, str] = os.environ,
    clock: Clock | None = None,
    policies: Policies | None = None,
) -> Any:
    """One provider, i.e. one authenticated session, for `env`. Nothing is read or sent yet:
    credentials are resolved and the token fetched on the first call that needs them."""
    return provider_class(env.provider)(
        env,
        max_parallel=max_parallel,
        redactor=redactor,
        environ=environ,
        clock=clock or SystemClock(),
        policies=policies,
    )
