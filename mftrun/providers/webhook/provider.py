"""The `webhook` environment: an incoming webhook (Slack, Teams, PagerDuty...) for `http` steps.

Why a provider of its own: the alert of a failed night must not depend on the platform
that failed. A webhook environment has no credentials and no token, so a platform that is
down or refuses its credentials (exit 3) cannot take the alert down with it. It keeps the
rest of the `http` action as it is (retry policies, a POST never re-sent after a lost
answer, outputs, `until`, redaction) by riding on `SessionProvider`, with `request`
sending straight through the transport instead of through a token session.

Secrets: Slack and Teams put the secret in the URL itself (a path segment, a `sig=` query
parameter), others in a header. So the URL may come from `{env: ...}`/`{file: ...}` and so
may header values; everything read that way is registered with the redactor, the URL also
as its path and query, because error messages quote the path of a call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mftrun.credentials import resolve, too_short_to_mask
from mftrun.errors import ConnectError, CredentialError, InputError
from mftrun.http import gate
from mftrun.http.retry import RetryPolicy, call_with_retry
from mftrun.http.session import HttpTransport, Timeouts, check_base_url
from mftrun.model import Environment
from mftrun.providers.base import Observation, StepContext
from mftrun.providers.session import Calls, SessionProvider, http_handle


@dataclass(frozen=True, slots=True)
class Target:
    """Where a webhook environment's calls go, read at run time."""

    base: str  # scheme://host[:port]/path, canonical, no query
    query: str  # the configured URL's query (Teams: api-version, sig), sent with every call
    headers: Mapping[str, str]

    def url(self, path: str) -> str:
        url = self.base if not path else f"{self.base}/{path.lstrip('/')}"
        return f"{url}?{self.query}" if self.query else url


def read_target(env: Environment, *, environ: Mapping[str, str], redactor: Any) -> Target:
    """Read the URL and header values; CredentialError names what cannot be read or used.

    `redactor` None (preflight): read and check only, register nothing."""
    problems: list[str] = []
    url = env.base_url
    if env.url_ref is not None:
        try:
            url = resolve("base_url", env.url_ref, environ=environ, redactor=redactor)
        except CredentialError as exc:
            problems.append(str(exc))
            url = ""
        else:
            short = too_short_to_mask("base_url", env.url_ref, url)
            if short is not None:
                problems.append(short)
    base = query = ""
    if url:
        parts = urlsplit(url.strip())
        where = f" from {env.url_ref.describe()}" if env.url_ref is not None else ""
        try:
            base = check_base_url(f"{parts.scheme}://{parts.netloc}{parts.path}")
        except (ConnectError, ValueError) as exc:
            # never quote a URL read from a variable: it is the secret
            problems.append(f"credential 'base_url'{where}: {getattr(exc, 'message', exc)}")
        if parts.fragment:
            problems.append(f"credential 'base_url'{where}: the URL must not have a fragment")
        query = parts.query
        if redactor is not None and env.url_ref is not None:
            for piece in (parts.path, query, f"{parts.path}?{query}"):
                if len(piece) > 1:
                    redactor.add(piece)
    headers: dict[str, str] = {}
    for name, ref in env.headers.items():
        try:
            value = resolve(
                f"headers.{name}", ref, environ=environ, redactor=redactor, secret=False
            )
        except CredentialError as exc:
            problems.append(str(exc))
            continue
        short = too_short_to_mask(f"headers.{name}", ref, value)
        if short is not None:
            problems.append(short)
        headers[name] = value
    if problems:
        raise CredentialError(
            f"environment {env.name!r}: " + f"\nenvironment {env.name!r}: ".join(problems)
        )
    return Target(base, query, headers)


class WebhookProvider(SessionProvider):
    name = "webhook"

    def __init__(self, env: Environment, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._target: Target | None = None
        self._target_lock = threading.Lock()

    def target(self) -> Target:
        with self._target_lock:
            if self._target is None:
                target = read_target(self.env, environ=self.environ, redactor=self.redactor)
                self._transport = HttpTransport(
                    target.base,
                    max_parallel=self.max_parallel,
                    ca_bundle=self.env.ca_bundle,
                    timeouts=Timeouts(
                        connect=min(10.0, self.env.http_timeout), read=self.env.http_timeout
                    ),
                    environ=self.environ,
                )
                self._target = target
            return self._target

    def start(self, kind: str, spec: Any, ctx: StepContext) -> tuple[Any, Observation]:
        if kind != "http":
            raise InputError("a webhook environment offers only the http action")
        handle = http_handle(spec)
        return handle, self._http_call(handle, ctx, polling=False)

    def request(
        self,
        method: str,
        path: str,
        *,
        policy: RetryPolicy,
        calls: Calls | None = None,
        params: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One call with the environment's headers on top of the step's; no token."""
        target = self.target()
        transport = self._transport
        assert transport is not None
        url = target.url(path)
        merged = {**(headers or {}), **target.headers}

        def send() -> Any:
            gate.before_send()  # the step may have ended while this waited
            if calls is not None:
                calls()
            return transport.send(method, url, params=params, json=json, headers=merged)

        outcome = call_with_retry(send, policy, clock=self.clock)
        outcome.response.mftrun_retries = outcome.retries  # for "after N tries" in messages
        return outcome.response

    def check(self) -> str:
        self.target()
        return (
            "URL and headers read; nothing sent (every call to a webhook posts a message; "
            "the first alert is the real test)"
        )
