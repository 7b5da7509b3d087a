"""`environments:` -> `mftrun.model.Environment`, with each platform's rules.

Which fields a platform reads (credentials, secrets, regions, the actions it offers)
is its declaration (`mftrun/providers/<name>/__init__.py`); the rules here say what a
user wrote wrong: a region and a base_url together, plain http to a real host, a
secret written inline, a webhook URL that is its own secret.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from mftrun.checks import Checks, Path
from mftrun.http.session import is_loopback
from mftrun.model import CredentialRef, Environment
from mftrun.providers.catalog import CREDENTIAL_FIELDS, MFT_REGIONS, SECRET_FIELDS
from mftrun.providers.catalog import NAMES as PROVIDERS

# Header names whose value is a secret however it is spelled: never inline in a webhook env.
_SECRET_HEADER = re.compile(r"authorization|token|secret|key|signature|password|auth", re.I)


class EnvironmentBuilder(Checks):
    def environment(self, name: str, raw: Any, path: Path) -> Environment | None:
        if not isinstance(raw, dict) or raw.get("provider") not in PROVIDERS:
            return None
        provider = raw["provider"]
        if provider == "webhook":
            return self.webhook(name, raw, path)
        region, base_url = raw.get("region"), raw.get("base_url")
        resolved: str | None = None
        if "headers" in raw:
            self.problem(
                path + ("headers",),
                "headers are for webhook environments only",
                "put per-call headers on the http step instead",
                key=True,
            )
        base_url_env = region_env = None
        if isinstance(base_url, dict):
            if set(base_url) == {"env"} and isinstance(base_url["env"], str):
                base_url_env = base_url["env"]
            else:
                self.problem(
                    path + ("base_url",),
                    f"{provider} base_url is a URL or {{env: NAME}}",
                    "only a webhook environment reads its URL from {file: PATH}",
                )
            base_url = None
        if isinstance(region, dict):
            if set(region) == {"env"} and isinstance(region["env"], str):
                region_env = region["env"]
            else:
                self.problem(path + ("region",), "region is us, eu, staging or {env: NAME}")
            region = None
        given_url = base_url is not None or base_url_env is not None
        given_region = region is not None or region_env is not None
        if provider == "automate-mft":
            if given_region and given_url:
                self.problem(
                    path + ("base_url",),
                    f"environment {name!r} sets both region and base_url",
                    "keep one: region picks the vendor's URL",
                    key=True,
                )
            elif isinstance(region, str):
                resolved = MFT_REGIONS.get(region)
                if resolved is None:
                    self.problem(
                        path + ("region",),
                        f"unknown automate-mft region {region!r}: use us, eu or staging",
                        "or give base_url: https://... for another host",
                    )
            elif not given_region and not given_url:
                self.problem(
                    path,
                    f"environment {name!r} needs region (us, eu or staging) or base_url",
                    "e.g. region: us",
                )
        else:
            if given_region:
                self.problem(
                    path + ("region",),
                    "region is for automate-mft environments only",
                    "acronis environments give their data-centre URL as base_url, "
                    "e.g. https://eu2-cloud.acronis.com",
                    key=True,
                )
            if not given_url:
                self.problem(
                    path,
                    f"environment {name!r} (acronis) needs base_url",
                    "the data-centre URL, e.g. https://eu2-cloud.acronis.com",
                )
        if isinstance(base_url, str):
            resolved = self.url(base_url, path + ("base_url",))
        credentials = self.credentials(provider, raw.get("credentials"), path + ("credentials",))
        timeout = self.duration(raw.get("timeout"), path + ("timeout",))
        if timeout is not None and timeout <= 0:
            self.problem(path + ("timeout",), "the HTTP timeout must be more than 0")
        ca_bundle = raw.get("ca_bundle")
        token_body = raw.get("token_body")
        if token_body is not None and provider != "automate-mft":
            self.problem(
                path + ("token_body",),
                "token_body is for automate-mft environments only",
                "remove it: the Acronis token request is always form-encoded",
                key=True,
            )
        return Environment(
            name=name,
            provider=provider,
            base_url=resolved or "",
            credentials=MappingProxyType(credentials),
            region=region if isinstance(region, str) else None,
            ca_bundle=ca_bundle if isinstance(ca_bundle, str) else None,
            http_timeout=timeout if timeout else 30.0,
            token_body=token_body if token_body in ("json", "form") else "json",
            base_url_env=base_url_env,
            region_env=region_env,
            position=self.pos(path, key=True),
        )

    def webhook(self, name: str, raw: dict[str, Any], path: Path) -> Environment | None:
        """An incoming webhook: a URL (a secret one through env:/file:) and optional headers,
        no credentials and no token. Only the http action runs on it."""
        for key, why in (
            ("credentials", "a webhook has no platform token; put a secret in headers"),
            ("region", "give the webhook's URL as base_url"),
            ("token_body", "a webhook has no token request"),
        ):
            if key in raw:
                self.problem(
                    path + (key,), f"{key} is not used by webhook environments", why, key=True
                )
        base_url = raw.get("base_url")
        resolved, url_ref = "", None
        if base_url is None:
            self.problem(
                path,
                f"environment {name!r} (webhook) needs base_url",
                "the incoming webhook's URL, e.g. base_url: {env: SLACK_WEBHOOK_URL}",
            )
        elif isinstance(base_url, str):
            resolved = self.url(base_url, path + ("base_url",), query=True) or ""
            if resolved and (leak := _secret_in_url(resolved)):
                self.problem(
                    path + ("base_url",),
                    f"this webhook URL {leak}: pipeline files live in Git, and a secret "
                    "there is a leaked secret",
                    "use base_url: {env: NAME} or base_url: {file: PATH}",
                )
        elif isinstance(base_url, dict) and len(base_url) == 1:
            kind, ref = next(iter(base_url.items()))
            if kind in ("env", "file") and isinstance(ref, str) and ref:
                url_ref = CredentialRef(kind, ref, self.pos(path + ("base_url",)))
        headers: dict[str, CredentialRef] = {}
        raw_headers = raw.get("headers")
        for header, value in (raw_headers if isinstance(raw_headers, dict) else {}).items():
            hpath = path + ("headers", header)
            if isinstance(value, str):
                if _SECRET_HEADER.search(str(header)):
                    self.problem(
                        hpath,
                        f"header {header} must not be written inline: pipeline files live in "
                        "Git, and a secret there is a leaked secret",
                        f"use {header}: {{env: NAME}} or {header}: {{file: PATH}}",
                    )
                    continue
                headers[str(header)] = CredentialRef("value", value, self.pos(hpath))
            elif isinstance(value, dict) and len(value) == 1:
                kind, ref = next(iter(value.items()))
                if kind in ("env", "file") and isinstance(ref, str) and ref:
                    headers[str(header)] = CredentialRef(kind, ref, self.pos(hpath))
        timeout = self.duration(raw.get("timeout"), path + ("timeout",))
        if timeout is not None and timeout <= 0:
            self.problem(path + ("timeout",), "the HTTP timeout must be more than 0")
        ca_bundle = raw.get("ca_bundle")
        return Environment(
            name=name,
            provider="webhook",
            base_url=resolved,
            credentials=MappingProxyType({}),
            ca_bundle=ca_bundle if isinstance(ca_bundle, str) else None,
            http_timeout=timeout if timeout else 30.0,
            headers=MappingProxyType(headers),
            url_ref=url_ref,
            position=self.pos(path, key=True),
        )

    def url(self, text: str, path: Path, *, query: bool = False) -> str | None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(text.strip())
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            self.problem(path, f"base_url {text!r} is not a valid URL: {exc}")
            return None
        if parts.scheme not in ("https", "http") or not host:
            self.problem(
                path,
                f"base_url {text!r} is not an https:// URL",
                "write e.g. https://eu2-cloud.acronis.com",
            )
            return None
        if parts.scheme == "http" and not is_loopback(host):
            self.problem(
                path,
                f"base_url {text!r} uses plain http: tokens and credentials "
                "would cross the network unencrypted",
                "use https://; http:// is allowed only for loopback hosts "
                "(127.0.0.1, ::1, localhost), e.g. the emulator",
            )
            return None
        if parts.fragment or (parts.query and not query):
            self.problem(path, f"base_url {text!r} must not have a query or fragment")
            return None
        return text.strip().rstrip("/")

    def credentials(self, provider: str, raw: Any, path: Path) -> dict[str, CredentialRef]:
        out: dict[str, CredentialRef] = {}
        if not isinstance(raw, dict):
            return out
        wanted = CREDENTIAL_FIELDS[provider]
        for field, value in raw.items():
            fpath = path + (field,)
            if field not in wanted:
                if field in CREDENTIAL_FIELDS["automate-mft"] + CREDENTIAL_FIELDS["acronis"]:
                    self.problem(
                        fpath,
                        f"{provider} environments do not use credentials.{field}",
                        f"{provider} needs: {', '.join(wanted)}",
                        key=True,
                    )
                continue  # unknown names: the schema reported them
            position = self.pos(fpath)
            if isinstance(value, str):
                if field in SECRET_FIELDS:
                    # The schema says this too; the semantic check keeps the message
                    # even for documents validated without it.
                    self.problem(
                        fpath,
                        f"{field} must not be written inline: pipeline files "
                        "live in Git, and a secret there is a leaked secret",
                        f"use {field}: {{env: NAME}} or {field}: {{file: PATH}}",
                    )
                    continue
                out[field] = CredentialRef("value", value, position)
            elif isinstance(value, dict) and len(value) == 1:
                kind, ref = next(iter(value.items()))
                if kind in ("env", "file") and isinstance(ref, str) and ref:
                    out[field] = CredentialRef(kind, ref, position)
                elif kind == "file" and isinstance(ref, dict) and isinstance(ref.get("env"), str):
                    out[field] = CredentialRef("file_env", ref["env"], position)
        return out


# Incoming-webhook URLs that are their own secret: Slack's /services/T/B/secret, Discord's
# /api/webhooks/<id>/<token>, Teams and Power Automate's signed `sig=` query, a token in the
# query. Written inline they would be committed; `{env: ...}` keeps them out of Git.
_SECRET_URL_PATH = re.compile(r"/services/[^/]+/[^/]+/[^/]+|/api/webhooks/\d+/[^/]+", re.I)
_SECRET_URL_QUERY = re.compile(r"(^|&)(sig|signature|token|key|code|secret)=", re.I)


def _secret_in_url(url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if _SECRET_URL_QUERY.search(parts.query):
        return "carries a secret in its query"
    if _SECRET_URL_PATH.search(parts.path):
        return "carries its secret in the path"
    return None
