"""Tokens: one per environment, shared by every step, renewed before expiry and once on 401/403.

Why single flight: when a token is revoked, every step polling in parallel sees
a 401/403 at about the same moment; they must not all ask for a new token (the
platform may rate-limit the token endpoint, and each new token can invalidate
the previous one). The cache counts generations: a caller that saw generation
g fail asks for a renewal *of g*; the first one fetches, the others wait on the
lock, see generation g+1 and use it. A failed fetch is shared the same way, so
wrong credentials cost one token request, not one per step.

Generic: each platform's token request (its URL, its credentials, how its
answer reads) is a token source in its own package, `mftrun/providers/<name>/token.py`;
this module only caches, renews and replays.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mftrun.clock import Clock
from mftrun.errors import AuthError, CredentialError, RemoteError
from mftrun.http import gate
from mftrun.http.retry import RetryPolicy, call_with_retry
from mftrun.http.session import MAX_BODY, HttpTransport

DEFAULT_TOKEN_LIFETIME = 300.0  # when the answer has no expires_in / expires_on [assumed]


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    generation: int
    expires_at: float  # monotonic seconds
    renew_at: float  # monotonic seconds: renew proactively from here on


# A fetch returns the token and its lifetime in seconds (None: unknown).
Fetch = Callable[[], tuple[str, "float | None"]]


class TokenCache:
    """Holds the current token; renews it before expiry and, single-flight, on demand."""

    def __init__(
        self,
        fetch: Fetch,
        clock: Clock,
        *,
        renew_margin: float = 60.0,
        margin_fraction: float = 0.2,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._renew_margin = renew_margin
        self._margin_fraction = margin_fraction
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._generation = 0
        self._completed = 0
        self._last_error: BaseException | None = None
        self.token_requests = 0

    def get(self) -> Token:
        token = self._token
        if token is not None and self._clock.monotonic() < token.renew_at:
            return token
        return self._refresh(stale=token, proactive=True)

    def renew(self, stale: Token) -> Token:
        """The platform refused `stale`: get a newer token (one request however many callers)."""
        return self._refresh(stale=stale, proactive=False)

    def _refresh(self, stale: Token | None, proactive: bool) -> Token:
        seen_generation = stale.generation if stale else 0
        seen_completed = self._completed  # fetches finished before we queued for the lock
        with self._lock:
            current = self._token
            if current is not None and current.generation != seen_generation:
                return current  # someone renewed while we waited
            if proactive and current is not None and self._clock.monotonic() < current.renew_at:
                return current
            if self._completed != seen_completed and self._last_error is not None:
                raise self._last_error  # the renewal we waited for failed: share its error
            self.token_requests += 1
            try:
                with gate.detached():  # shared by every step: one step's end must not stop it
                    value, lifetime = self._fetch()
            except BaseException as exc:
                self._last_error = exc
                self._completed += 1
                raise
            self._last_error = None
            self._completed += 1
            life = DEFAULT_TOKEN_LIFETIME if lifetime is None else max(1.0, float(lifetime))
            margin = min(self._renew_margin, life * self._margin_fraction)
            now = self._clock.monotonic()
            self._generation += 1
            self._token = Token(value, self._generation, now + life, now + life - margin)
            return self._token


# --------------------------------------------------------------------------- token sources


class CredentialSource:
    """Reads an environment's credentials lazily (once) and registers secrets with the redactor."""

    def __init__(
        self,
        env_name: str,
        credentials: Mapping[str, Any],
        *,
        environ: Mapping[str, str],
        redactor: Any,
    ) -> None:
        self._env_name = env_name
        self._credentials = credentials
        self._environ = environ
        self._redactor = redactor
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, field: str, *, secret: bool) -> str:
        from mftrun.credentials import resolve

        with self._lock:
            if field not in self._values:
                ref = self._credentials.get(field)
                if ref is None:
                    raise CredentialError(
                        f"environment {self._env_name!r} has no credential {field!r}",
                        hint=f"add credentials.{field} to the environment",
                    )
                self._values[field] = resolve(
                    field, ref, environ=self._environ, redactor=self._redactor, secret=secret
                )
            return self._values[field]

    def describe(self, field: str) -> str:
        ref = self._credentials.get(field)
        return ref.describe() if ref is not None else field


def _scrubbed_error(response: Any, redactor: Any, limit: int = 300) -> str:
    """A token endpoint's error body, fit to quote: token-like strings masked (an odd server
    may put the token it issued anywhere), secrets scrubbed, one inert line; scrub, then
    shorten: cutting first could leave half a secret that no longer matches."""
    from mftrun.inert import inert

    return inert(redactor.scrub(redact_tokens(error_text(response, limit=1 << 20))))[:limit]


# What a bearer token, a JWT or an opaque credential looks like in a body: a JWT's three
# dot-separated base64url parts; the value of a key named like a token; any long run of
# token characters holding both letters and digits (ordinary words and numbers do not).
_SIGNED_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_TOKEN_FIELD = re.compile(
    r"(?i)((?:access|refresh|id)_?token|token|assertion|secret|password|authorization)"
    r"([\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?([^\s\"',;&}]+)"
)
_OPAQUE = re.compile(r"(?<![A-Za-z0-9_\-.~+/])[A-Za-z0-9_\-.~+/]{20,}={0,2}")


def redact_tokens(text: str) -> str:
    """`text` (a body quoted from a token endpoint) with anything token-like shown as ***."""
    from mftrun.credentials import MASK

    text = _SIGNED_TOKEN.sub(MASK, text)
    text = _TOKEN_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)

    def opaque(match: re.Match[str]) -> str:
        run = match.group()
        has_letter = any(c.isalpha() for c in run)
        has_digit = any(c.isdigit() for c in run)
        return MASK if has_letter and has_digit else run

    return _OPAQUE.sub(opaque, text)


def _unreadable_success(response: Any) -> str:
    """What can be said of a 2xx token answer that cannot be read, without quoting it: the
    token was probably issued and is in that body, so the body is never shown."""
    kind = response.headers.get("Content-Type") or "no content type"
    size = len(response.content or b"")
    return f"{kind}, {size:,} bytes; the body is not shown, as it may hold the token"


def error_text(response: Any, limit: int = 300) -> str:
    """What an error body says, short and single-line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [
            str(body[k])
            for k in ("error", "error_description", "message", "reason", "code")
            if body.get(k) not in (None, "")
        ]
        if parts:
            text = ": ".join(dict.fromkeys(parts))
            return text[:limit]
    text = (response.text or "").strip().replace("\n", " ")
    return (text[:limit] + "...") if len(text) > limit else (text or f"HTTP {response.status_code}")


def read_token_answer(
    response: Any,
    *,
    url: str,
    env_name: str,
    redactor: Any,
    rejected: tuple[int, ...],
    hint: str,
    hints: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Judge a token endpoint's answer for either platform; register the token as a secret.
    `hints` replaces `hint` for the statuses it names (a 400/415 may be the body's encoding)."""
    status = response.status_code
    hint = (hints or {}).get(status, hint)
    if status in rejected:
        raise AuthError(
            f"environment {env_name!r}: credentials rejected by {url} "
            f"({status} {_scrubbed_error(response, redactor)})",
            hint=hint,
        )
    if status != 200:
        raise RemoteError(
            f"environment {env_name!r}: token request to {url} failed: "
            f"{status} {_scrubbed_error(response, redactor)}",
            status=status,
            hint=(hints or {}).get(status),
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        what = "a body that is not JSON" if body is None else "JSON without an access_token"
        raise RemoteError(
            f"the token endpoint {url} answered {status} with {what} "
            f"({_unreadable_success(response)})",
            status=status,
            hint="is base_url right? a proxy or a login page may be answering instead",
        )
    redactor.add(body["access_token"])
    return body


# --------------------------------------------------------------------------- the authenticated flow

Denied = Callable[[int, str, Any], AuthError]


class AuthSession:
    """Requests with `Authorization: bearer <token>`; one renewal and one replay on 401/403.

    A call refused with 401/403 was not processed, so replaying it once with a
    fresh token is safe even for a task start.
    """

    def __init__(
        self,
        transport: HttpTransport,
        tokens: TokenCache,
        *,
        clock: Clock,
        renew_on: frozenset[int],
        denied: Denied,
        scheme: str = "bearer",
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self._clock = clock
        self._renew_on = renew_on
        self._denied = denied
        self._scheme = scheme

    def request(
        self,
        method: str,
        path: str,
        *,
        policy: RetryPolicy,
        params: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        count: Callable[[], None] | None = None,
        max_body: int = MAX_BODY,
    ) -> Any:
        url = self.transport.url(path)
        step_gate = gate.current()
        if step_gate is not None:
            step_gate.waiting_for = "the access token"
        token = self.tokens.get()

        def attempt(token: Token) -> Any:
            def send() -> Any:
                gate.before_send()  # the step may have ended while this waited
                if count is not None:
                    count()
                merged = dict(headers or {})
                merged["Authorization"] = f"{self._scheme} {token.value}"
                return self.transport.send(
                    method, url, params=params, json=json, headers=merged, max_body=max_body
                )

            outcome = call_with_retry(send, policy, clock=self._clock)
            outcome.response.mftrun_retries = outcome.retries  # for "after N tries" in messages
            return outcome.response

        response = attempt(token)
        if response.status_code in self._renew_on:
            token = self.tokens.renew(token)
            response = attempt(token)
        if response.status_code in (401, 403):
            raise self._denied(response.status_code, f"{method} {_path_of(url)}", response)
        return response


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
