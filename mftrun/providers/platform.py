"""What a platform declares about itself, in one place: its package's `PLATFORM`.

Read by validation (credential fields, the actions offered, regions) without importing
the provider's I/O code: each `mftrun/providers/<name>/__init__.py` holds only its
declaration; `provider` names the class that does the platform's I/O, imported when an
environment of that platform is first used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Platform:
    name: str  # the `provider:` value in YAML
    actions: tuple[str, ...]  # the actions its environments run (mftrun.actions names)
    credential_fields: tuple[str, ...] = ()
    secret_fields: frozenset[str] = frozenset()  # never inline in the file
    regions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    provider: str = ""  # "module:Class", imported on first use
