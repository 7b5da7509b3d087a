"""`--emulate`: the pipeline pointed at an in-process emulator with generated credentials.

Nothing of the user's (variables, key files, webhook URLs) is read and nothing leaves
the machine; each action seeds the emulator with what its steps will ask for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mftrun.errors import InputError

if TYPE_CHECKING:
    from mftrun.credentials import Redactor
    from mftrun.model import Pipeline


@dataclass(frozen=True)
class Emulated:
    """The pipeline pointed at the emulator, and the scenario's speed (the run's clock)."""

    pipeline: Pipeline
    speed: float


@contextlib.contextmanager
def emulated(
    pipeline: Pipeline, scenario_path: str | None, redactor: Redactor
) -> Iterator[Emulated]:
    """Point every environment at an in-process emulator with generated credentials."""
    import tempfile

    from mftrun.emulator import Emulator, Scenario, load_scenario
    from mftrun.model import CredentialRef
    from types import MappingProxyType

    scenario = load_scenario(scenario_path) if scenario_path else Scenario.default()
    with Emulator(scenario) as emu, tempfile.TemporaryDirectory(prefix="mftrun-emulate-") as folder:
        env_vars = emu.write_credentials(Path(folder))
        creds = emu.credentials
        if "MFT_PRIVATE_KEY_FILE" not in env_vars and any(
            e.provider == "automate-mft" for e in pipeline.environments.values()
        ):
            raise InputError(
                f"scenario {scenario_path}: every Automate MFT key in it is a public key "
                "only, so mftrun cannot sign its client assertion under --emulate",
                hint="give one key a private_key, or leave keys out to have one generated",
            )
        for secret in (creds.private_key_pem, creds.client_secret):
            redactor.add(secret)
        environments = {}
        for name, env in pipeline.environments.items():
            if env.provider == "webhook":
                # The emulator's webhook sink receives the calls (journal: "webhooks"); no
                # variable or file of yours is read, and nothing leaves this machine.
                headers = {
                    header: ref if ref.kind == "value" else CredentialRef("value", "emulated")
                    for header, ref in env.headers.items()
                }
                environments[name] = replace(
                    env,
                    base_url=f"{emu.url}/_emulator/webhooks/{name}",
                    url_ref=None,
                    headers=MappingProxyType(headers),
                    ca_bundle=None,
                )
                continue
            if env.provider == "automate-mft":
                refs = {
                    "tenant_id": CredentialRef("value", creds.tenant_id),
                    "key_id": CredentialRef("value", creds.key_id),
                    "private_key": CredentialRef("file", env_vars["MFT_PRIVATE_KEY_FILE"]),
                }
            else:
                refs = {
                    "client_id": CredentialRef("value", creds.client_id),
                    "client_secret": CredentialRef("value", creds.client_secret),
                }
            environments[name] = replace(env, base_url=emu.url, credentials=refs, ca_bundle=None)
        from mftrun import actions

        for step in pipeline.steps:
            action = actions.action_type(step.action.kind)
            action.seed_emulator(actions.spec_of(step.action), emu)
        yield Emulated(replace(pipeline, environments=environments), scenario.speed)
