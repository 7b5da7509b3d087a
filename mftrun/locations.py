"""Where an environment's API lives, when the file says to read it at run time.

Why: one pipeline file should serve staging, production and the emulator without
machine-specific values in Git. `base_url: {env: MFT_BASE_URL}` or
`region: {env: MFT_REGION}` are read here, before anything starts, with the same
checks the validator applies to a URL written in the file (https, plain http only to
loopback, a known region). Every problem is listed at once; nothing was started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from mftrun.errors import CredentialError
from mftrun.model import Environment, Pipeline
from mftrun.providers.catalog import MFT_REGIONS


def resolve_locations(pipeline: Pipeline, environ: Mapping[str, str]) -> Pipeline:
    """The pipeline with every `{env: NAME}` base_url/region of a used environment read;
    CredentialError lists every one that cannot be."""
    located, problems = locate(pipeline, environ)
    if problems:
        raise CredentialError(
            "some environments cannot be located, so nothing was started:\n" + "\n".join(problems)
        )
    return located


def locate(pipeline: Pipeline, environ: Mapping[str, str]) -> tuple[Pipeline, list[str]]:
    """Like resolve_locations, returning the problems (one line each) instead of raising, so
    apply can list them together with unreadable credentials."""
    used = {step.environment for step in pipeline.steps}
    problems: list[str] = []
    environments = dict(pipeline.environments)
    for name, env in pipeline.environments.items():
        if name not in used or env.base_url or not (env.base_url_env or env.region_env):
            continue
        try:
            environments[name] = _located(env, environ)
        except CredentialError as exc:
            problems.append(f"environment {name!r}: {exc}")
    return replace(pipeline, environments=environments), problems


def _located(env: Environment, environ: Mapping[str, str]) -> Environment:
    from mftrun.errors import ConnectError
    from mftrun.http.session import check_base_url

    where = f" (declared at {env.position})" if env.position.line else ""
    variable = env.base_url_env or env.region_env or ""
    field = "base_url" if env.base_url_env else "region"
    value = (environ.get(variable) or "").strip()
    if not value:
        raise CredentialError(
            f"{field}: environment variable {variable} is not set{where}",
            hint=f"export {variable}=... before running"
            + (" (mftrun emulate's env.sh exports it)" if variable.startswith("MFT_") else ""),
        )
    if field == "region":
        url = MFT_REGIONS.get(value)
        if url is None:
            raise CredentialError(
                f"region from {variable} is {value!r}: use us, eu or staging{where}"
            )
        return replace(env, base_url=url, region=value)
    from urllib.parse import urlsplit

    if urlsplit(value).query or urlsplit(value).fragment:
        raise CredentialError(f"base_url from {variable} must not have a query or fragment{where}")
    try:
        url = check_base_url(value)
    except ConnectError as exc:
        raise CredentialError(f"base_url from {variable}: {exc.message}{where}") from None
    return replace(env, base_url=url)
