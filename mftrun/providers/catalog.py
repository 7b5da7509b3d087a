"""The platforms mftrun knows: each package's declaration, by the name used in YAML.

To add a platform: a package `mftrun/providers/<name>/` with its `PLATFORM` in
`__init__.py` (light: no I/O imports), its provider class (`provider.py`, usually a
`mftrun.providers.session.SessionProvider`), its token source (`token.py`), and a line
below.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mftrun.providers import acronis, automate_mft, webhook
from mftrun.providers.platform import Platform

PLATFORMS: Mapping[str, Platform] = MappingProxyType(
    {p.name: p for p in (automate_mft.PLATFORM, acronis.PLATFORM, webhook.PLATFORM)}
)
NAMES = tuple(PLATFORMS)
# Which actions each platform offers (an `http` step works on every platform's session).
ACTIONS_OFFERED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: p.actions for name, p in PLATFORMS.items()}
)
CREDENTIAL_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: p.credential_fields for name, p in PLATFORMS.items()}
)
SECRET_FIELDS = frozenset(f for p in PLATFORMS.values() for f in p.secret_fields)
MFT_REGIONS = automate_mft.PLATFORM.regions
