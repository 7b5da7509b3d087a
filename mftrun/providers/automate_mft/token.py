"""The Automate MFT token source: a fresh RFC 7523 client assertion per token request.

ES256 for the P-256 keys the platform generates, RS256 / EdDSA when the key is RSA or
Ed25519, header `kid`, claims aud/iss/sub/jti/iat/nbf/exp with exp 240 s ahead (the
vendor sample; the platform allows at most 10 minutes). POST <base>/v1/oauth/token.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from mftrun.clock import Clock
from mftrun.errors import CredentialError
from mftrun.http.auth import CredentialSource, read_token_answer
from mftrun.http.retry import RetryPolicy, call_with_retry
from mftrun.http.session import HttpTransport

ASSERTION_LIFETIME = 240  # seconds; the vendor sample's value, well under the 10-minute limit
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

MFT_KEY_HINT = (
    "the key id (kid) and the private key must belong to the same API key, the key must "
    "not be deleted, and tenant_id must be that key's tenant"
)


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
        body = read_token_answer(
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
