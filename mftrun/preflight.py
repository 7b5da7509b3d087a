"""Before anything starts: every credential, key file and ca_bundle a run will use is read.

A missing variable or key file is a set-up mistake, not a platform answer; `apply` and
`check` list them all at once, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mftrun.model import Pipeline


def preflight_credentials(
    pipeline: Pipeline, environ: Mapping[str, str], unlocated: list[str] | None = None
) -> list[str]:
    """Read every credential reference (and find every ca_bundle) before anything starts.

    A missing variable or key file is a set-up mistake, not a platform answer: finding it
    after half the pipeline has run (and the failure branch has paged someone) helps nobody.
    All of them are listed at once, so one edit of the CI secrets fixes them all.
    Returns the warnings (a private key file other users can read) to show.
    """
    from mftrun.errors import CredentialError

    used = {step.environment for step in pipeline.steps}
    problems: list[str] = list(unlocated or [])  # base_url/region from unset variables
    warnings = key_file_warnings(pipeline)
    for name, env in pipeline.environments.items():
        if name in used:
            problems.extend(f"environment {name!r}: {p}" for p in credential_problems(env, environ))
    if problems:
        what = (
            "some environments cannot be located or their credentials read"
            if unlocated
            else "some credentials cannot be read"
        )
        raise CredentialError(f"{what}, so nothing was started:\n" + "\n".join(warnings + problems))
    return warnings


def key_file_warnings(pipeline: Pipeline) -> list[str]:
    """Private key files of the used environments that other users can read or write (what
    OpenSSH would refuse), one warning each; `apply` and `check` show the same ones."""
    from mftrun.credentials import key_file_warning

    used = {step.environment for step in pipeline.steps}
    return [
        f"environment {name!r}: {warning}"
        for name, env in pipeline.environments.items()
        if name in used
        for field, ref in env.credentials.items()
        if (warning := key_file_warning(field, ref)) is not None
    ]


def credential_problems(env: Any, environ: Mapping[str, str]) -> list[str]:
    """Every credential, webhook URL/header and ca_bundle of one environment that cannot be
    read or used, each in words (never the value); `apply` and `check` both list them all."""
    from mftrun.credentials import resolve, too_short_to_mask
    from mftrun.errors import CredentialError

    problems: list[str] = []
    if env.provider == "webhook":
        from mftrun.providers.webhook.provider import read_target

        try:
            read_target(env, environ=environ, redactor=None)
        except CredentialError as exc:
            prefix = f"environment {env.name!r}: "
            problems.extend(line.removeprefix(prefix) for line in str(exc).split("\n" + prefix))
            problems[0] = problems[0].removeprefix(prefix)
    for field, ref in env.credentials.items():
        try:
            value = resolve(field, ref, environ=environ, secret=False)
            if (short := too_short_to_mask(field, ref, value)) is not None:
                problems.append(short)
                continue
            if field == "private_key":  # unreadable keys are found now too, not at the first step
                from mftrun.providers.automate_mft.token import load_private_key

                where = f", declared at {ref.position}" if ref.position.line else ""
                load_private_key(value, source=f"{ref.kind} {ref.ref}{where}")
        except CredentialError as exc:
            problems.append(str(exc))
    if env.ca_bundle and not os.path.isfile(os.path.expanduser(env.ca_bundle)):
        problems.append(
            f"ca_bundle {env.ca_bundle} does not exist or "
            "is not a file\n  hint: point ca_bundle at a PEM file of trusted CA certificates"
        )
    return problems
