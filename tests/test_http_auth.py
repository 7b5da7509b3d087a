"""Client assertions and the single-flight token cache.

Assertions are checked with PyJWT against the public key.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mftrun.clock import FakeClock
from mftrun.errors import AuthError, CredentialError
from mftrun.http.auth import TokenCache
from mftrun.providers.automate_mft.token import build_client_assertion, load_private_key

NOW = datetime(2026, 3, 1, 8, 0, 0, tzinfo=timezone.utc)
AUD = "https://api.us.mft.progress.com/v1/oauth/token"


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    "make, alg",
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    ],
)
def test_assertion_claims_and_header_verify_with_the_public_key(make, alg):
    private = make()
    key, chosen = load_private_key(pem(private))
    assert chosen == alg
    token = build_client_assertion(
        key=key, alg=chosen, key_id="kid-1", tenant_id="tenant-9", audience=AUD, now=NOW
    )
    header = jwt.get_unverified_header(token)
    assert header["kid"] == "kid-1" and header["alg"] == alg
    claims = jwt.decode(
        token,
        private.public_key(),
        algorithms=[alg],
        audience=AUD,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    issued = int(NOW.timestamp())
    assert claims["iss"] == claims["sub"] == "tenant-9"
    assert claims["aud"] == AUD
    assert claims["iat"] == claims["nbf"] == issued
    assert claims["exp"] == issued + 240
    assert len(claims["jti"]) == 36


def test_every_assertion_has_a_fresh_jti():
    key, alg = load_private_key(pem(ec.generate_private_key(ec.SECP256R1())))
    jtis = {
        jwt.decode(
            build_client_assertion(
                key=key, alg=alg, key_id="k", tenant_id="t", audience=AUD, now=NOW
            ),
            options={"verify_signature": False},
        )["jti"]
        for _ in range(20)
    }
    assert len(jtis) == 20


def test_a_pem_pasted_on_one_line_with_escaped_newlines_is_read():
    text = pem(ec.generate_private_key(ec.SECP256R1())).strip().replace("\n", "\\n")
    assert load_private_key(text)[1] == "ES256"


@pytest.mark.parametrize(
    "text, words",
    [
        ("not a key at all", "is not a PEM private key"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "cannot be read: the PEM is damaged or not a private key",
        ),
    ],
)
def test_unreadable_keys_are_credential_errors(text, words):
    with pytest.raises(CredentialError) as caught:
        load_private_key(text, source="file /tmp/k.pem")
    assert words in str(caught.value) and "/tmp/k.pem" in str(caught.value)


def test_an_encrypted_key_says_so():
    key = ec.generate_private_key(ec.SECP256R1())
    text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    with pytest.raises(CredentialError, match="passphrase"):
        load_private_key(text)


def test_short_rsa_keys_are_refused():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CredentialError, match="1024 bits"):
        load_private_key(pem(key))


class SlowFetch:
    """A token endpoint that takes a while, so concurrent callers really overlap."""

    def __init__(
        self, lifetime: float | None = 300.0, delay: float = 0.05, fail: Exception | None = None
    ):
        self.calls = 0
        self.lifetime = lifetime
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.delay)
        if self.fail:
            raise self.fail
        return f"token-{n}", self.lifetime


def run_threads(n: int, target) -> list:
    results: list = [None] * n
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target()
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_first_use_by_many_threads_fetches_one_token():
    fetch = SlowFetch()
    cache = TokenCache(fetch, FakeClock())
    results = run_threads(20, cache.get)
    assert fetch.calls == 1 and cache.token_requests == 1
    assert {r.value for r in results} == {"token-1"}


def test_renewal_after_rejection_is_single_flight():
    fetch = SlowFetch()
    cache = TokenCache(fetch, FakeClock())
    stale = cache.get()
    results = run_threads(20, lambda: cache.renew(stale))
    assert fetch.calls == 2
    assert {r.value for r in results} == {"token-2"}
    # A late caller still holding the old token gets the new one without another request.
    assert cache.renew(stale).value == "token-2" and fetch.calls == 2


def test_a_failed_renewal_is_shared_not_repeated_per_thread():
    fetch = SlowFetch(fail=AuthError("credentials rejected"))
    cache = TokenCache(fetch, FakeClock())
    results = run_threads(10, cache.get)
    assert all(isinstance(r, AuthError) for r in results)
    assert fetch.calls == 1


def test_token_is_renewed_before_it_expires():
    clock = FakeClock()
    fetch = SlowFetch(lifetime=300.0, delay=0)
    cache = TokenCache(fetch, clock, renew_margin=60.0)
    assert cache.get().value == "token-1"
    clock.advance(239)
    assert cache.get().value == "token-1"
    clock.advance(2)  # 241 s: inside the 60 s margin
    assert cache.get().value == "token-2"


def test_short_lifetimes_renew_a_fraction_ahead_and_missing_lifetime_means_five_minutes():
    clock = FakeClock()
    cache = TokenCache(SlowFetch(lifetime=10.0, delay=0), clock, renew_margin=900.0)
    token = cache.get()
    assert token.renew_at - clock.monotonic() == pytest.approx(8.0)  # 20 % of 10 s, not 15 min
    cache = TokenCache(SlowFetch(lifetime=None, delay=0), clock, renew_margin=60.0)
    token = cache.get()
    assert token.expires_at - clock.monotonic() == pytest.approx(300.0)
