"""Tokens: one per environment, shared by every step, renewed before expiry and once on 401/403.

Why single flight: when a token is revoked, every step polling in parallel sees
a 401/403 at about the same moment; they must not all ask for a new token (the
platform may rate-limit the token endpoint, and each new token can invalidate
the previous one). The cache counts generations: a caller that saw generation
g fail asks for a renewal *of g*; the first one fetches, the others wait on the
lock, see generation g+1 and use it. A failed fetch is shared the same way, so
wrong credentials cost one token request, not one per step.

The client assertion for Automate MFT (RFC 7523) is built here too: ES256 for
the P-256 keys the platform generates, RS256 / EdDSA when the key is RSA or
Ed25519, header `kid`, claims aud/iss/sub/jti/iat/nbf/exp with exp 240 s ahead
(the vendor sample; the platform allows at most 10 minutes).
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mftrun.clock import Clock
from mftrun.errors import AuthError, CredentialError, RemoteError
from mftrun.http import gate
from mftrun.http.retry import RetryPolicy, call_with_retry
from mftrun.http.session import MAX_BODY, HttpTransport

ASSERTION_LIFETIME = 240  # seconds; the vendor sample's value, well under the 10-minute limit
DEFAULT_TOKEN_LIFETIME = 300.0  # when the answer has no expires_in / expires_on [assumed]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --------------------------------------------------------------------------- keys and assertions


def load_private_key(pem: str, *, source: str = "private_key") -> tuple[Any, str]:
    """Parse a PEM private key; return (key, JWT alg). CredentialError says what is wrong."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    text = pem.strip()
    if "\\n" in text and "\n" not in text:  # a PEM pasted into one env var line
        text = text.replace("\\n", "\n")
    if "-----BEGIN" not in text:
        raise CredentialError(
            f"credential 'private_key' ({source}) is not a PEM private key",
            hint="expected a file starting with -----BEGIN PRIVATE KEY-----",
        )
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except TypeError:
        raise CredentialError(
            f"credential 'private_key' ({source}) is encrypted with a passphrase",
            hint="export it without a passphrase, e.g. openssl pkey -in key.pem -out plain.pem",
        ) from None
    except Exception as exc:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm, ... all mean 'bad key'
        kind = (
            "an unsupported key type"
            if exc.__class__.__name__ == "UnsupportedAlgorithm"
            else "damaged or not a private key"
        )
        raise CredentialError(
            f"credential 'private_key' ({source}) cannot be read: the PEM is {kind}",
            hint="use the PEM private key (EC P-256, RSA or Ed25519) that belongs to "
            "the API key's key id",
        ) from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(key.curve.name)
        if alg is None:
            raise CredentialError(
                f"credential 'private_key' ({source}): unsupported curve {key.curve.name}",
                hint="Automate MFT generates P-256 (ES256) keys",
            )
        return key, alg
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise CredentialError(
                f"credential 'private_key' ({source}): RSA key of {key.key_size} bits",
                hint="the platform accepts RSA keys of at least 2048 bits",
            )
        return key, "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key, "EdDSA"
    raise CredentialError(
        f"credential 'private_key' ({source}): unsupported key type {type(key).__name__}",
        hint="use an EC P-256, RSA or Ed25519 key",
    )


def build_client_assertion(
    *,
    key: Any,
    alg: str,
    key_id: str,
    tenant_id: str,
    audience: str,
    now: datetime,
    lifetime: int = ASSERTION_LIFETIME,
    jti: str | None = None,
) -> str:
    """The signed JWT the token endpoint expects (RFC 7523 client assertion)."""
    import jwt

    issued = int(now.timestamp())
    claims = {
        "aud": audience,
        "iss": tenant_id,
        "sub": tenant_id,
        "jti": jti or str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + min(lifetime, 600),
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": key_id})


# --------------------------------------------------------------------------- token cache


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

    return inert(redactor.scrub(redact_tokens(_error_text(response, limit=1 << 20))))[:limit]


# What a bearer token, a JWT or an opaque credential looks like in a body: a JWT's three
# dot-separated base64url parts; the value of a key named like a token; any long run of
# token characters holding both letters and digits (ordinary words and numbers do not).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_TOKEN_FIELD = re.compile(
    r"(?i)((?:access|refresh|id)_?token|token|assertion|secret|password|authorization)"
    r"([\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?([^\s\"',;&}]+)"
)
_OPAQUE = re.compile(r"(?<![A-Za-z0-9_\-.~+/])[A-Za-z0-9_\-.~+/]{20,}={0,2}")


def redact_tokens(text: str) -> str:
    """`text` (a body quoted from a token endpoint) with anything token-like shown as ***."""
    from mftrun.credentials import MASK

    text = _JWT.sub(MASK, text)
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


def _error_text(response: Any, limit: int = 300) -> str:
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


def _token_answer(
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


ACRONIS_CLIENT_HINT = (
    "check client_id and client_secret, and that the base_url is the data centre "
    "where the API client was created"
)
MFT_KEY_HINT = (
    "the key id (kid) and the private key must belong to the same API key, the key must "
    "not be deleted, and tenant_id must be that key's tenant"
)


class MftTokenSource:
    """POST <base>/v1/oauth/token with a fresh client assertion.

    JSON body, like the vendor sample.
    """

    def __init__(
        self,
        transport: HttpTransport,
        creds: CredentialSource,
        *,
        clock: Clock,
        redactor: Any,
        policy: RetryPolicy,
        env_name: str,
        form_body: bool = False,
    ) -> None:
        self._transport = transport
        self._creds = creds
        self._clock = clock
        self._redactor = redactor
        self._policy = policy
        self._env_name = env_name
        self._form_body = form_body  # [assumed] JSON like the vendor sample; form as the OAuth norm
        self._key: tuple[Any, str] | None = None
        self.url = transport.url("/v1/oauth/token")

    def __call__(self) -> tuple[str, float | None]:
        tenant = self._creds.get("tenant_id", secret=False)
        kid = self._creds.get("key_id", secret=False)
        if self._key is None:
            pem = self._creds.get("private_key", secret=True)
            self._key = load_private_key(pem, source=self._creds.describe("private_key"))
        key, alg = self._key

        def send() -> Any:
            assertion = build_client_assertion(
                key=key,
                alg=alg,
                key_id=kid,
                tenant_id=tenant,
                audience=self.url,
                now=self._clock.now(),
            )
            self._redactor.add(assertion)
            body = {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            }
            if self._form_body:
                return self._transport.send("POST", self.url, data=body)
            return self._transport.send("POST", self.url, json=body)

        response = call_with_retry(send, self._policy, clock=self._clock).response
        body = _token_answer(
            response,
            url=self.url,
            env_name=self._env_name,
            redactor=self._redactor,
            rejected=(400, 401, 403),
            hint=MFT_KEY_HINT,
            hints=dict.fromkeys((400, 415), self._body_hint()),
        )
        lifetime = body.get("expires_in")
        return body["access_token"], float(lifetime) if isinstance(lifetime, (int, float)) else None

    def _body_hint(self) -> str:
        """A 400 or 415 may be the body's encoding, not the key: the vendor documents a JSON
        body but calls the call a "standard OAuth-style POST", usually form-encoded."""
        sent, other = ("form", "json") if self._form_body else ("json", "form")
        return (
            f"the token request was sent {sent}-encoded (token_body: {sent}); if the endpoint "
            f"wants the other encoding, set token_body: {other} on the environment. Otherwise: "
            + MFT_KEY_HINT
        )


class AcronisTokenSource:
    """POST <base>/api/2/idp/token, HTTP Basic client_id:client_secret, form grant_type."""

    def __init__(
        self,
        transport: HttpTransport,
        creds: CredentialSource,
        *,
        clock: Clock,
        redactor: Any,
        policy: RetryPolicy,
        env_name: str,
    ) -> None:
        self._transport = transport
        self._creds = creds
        self._clock = clock
        self._redactor = redactor
        self._policy = policy
        self._env_name = env_name
        self.url = transport.url("/api/2/idp/token")

    def __call__(self) -> tuple[str, float | None]:
        client_id = self._creds.get("client_id", secret=False)
        secret = self._creds.get("client_secret", secret=True)
        # The Basic header's value is a secret too, should a proxy or the platform echo it.
        self._redactor.add(base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii"))

        def send() -> Any:
            return self._transport.send(
                "POST",
                self.url,
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )

        response = call_with_retry(send, self._policy, clock=self._clock).response
        body = _token_answer(
            response,
            url=self.url,
            env_name=self._env_name,
            redactor=self._redactor,
            rejected=(400, 401),
            hint=ACRONIS_CLIENT_HINT,
        )
        if isinstance(body.get("id_token"), str):
            self._redactor.add(body["id_token"])
        expires_on = body.get("expires_on")
        if isinstance(expires_on, (int, float)) and not isinstance(expires_on, bool):
            return body["access_token"], max(
                30.0, float(expires_on) - self._clock.now().timestamp()
            )
        lifetime = body.get("expires_in")
        return body["access_token"], float(lifetime) if isinstance(lifetime, (int, float)) else None


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
