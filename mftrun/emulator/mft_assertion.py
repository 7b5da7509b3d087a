"""The Automate MFT token request: its form and its client assertion, checked claim by claim.

Split from the platform's runs and tasks (issue 12): this is RFC 7523 as api-contracts.md
pins it down, and nothing else. Each check answers with the reason a real client would
need (wrong `alg` for the kid, `aud` not this endpoint's URL, `iss`/`sub` not the key's
tenant, `exp` more than ten minutes ahead, `iat`/`nbf` missing or in the future, no
`jti`), because a client that gets any of them wrong must fail here, not in production.
Replay (a `jti` seen before) needs the platform's memory and is judged by `automate_mft`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from mftrun.emulator.scenario_data import MftKey
from mftrun.emulator.wire import Request, Response, json_response

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 600.0  # documented: exp at most 10 minutes from now
LEEWAY = 30.0  # clock skew tolerated on exp/nbf/iat
# The documented limit is enforced almost to the letter: the emulator and its client share one
# clock, so only whole-second rounding needs room. A client asking for 10 min 30 s must fail
# here, not first in production.
LIFETIME_SLACK = 2.0


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


@dataclass(frozen=True, slots=True)
class Assertion:
    """A client assertion that passed every check but the replay check."""

    tenant_id: str
    key: MftKey
    exp: float
    jti: str
    now: float  # Unix seconds when the claims were judged


def check_token_request(
    req: Request,
    keys: Mapping[str, tuple[str, MftKey, Any]],
    clock_now: Callable[[], float],
) -> Assertion | Response:
    """The checked assertion, or the OAuth error that answers the request.

    `keys` maps a key id (the JWT's `kid`) to (tenant id, key, loaded public key).
    """
    import jwt

    content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            form = json.loads(req.body.decode("utf-8") or "null")
            if not isinstance(form, dict):
                return oauth_error(400, "invalid_request", "the JSON body must be an object")
        elif content_type == "application/x-www-form-urlencoded":
            form = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
        else:
            return oauth_error(
                400,
                "invalid_request",
                "send application/json or application/x-www-form-urlencoded",
            )
    except (UnicodeDecodeError, json.JSONDecodeError):
        return oauth_error(400, "invalid_request", "the body is not valid JSON/form data")
    if form.get("grant_type") != "client_credentials":
        return oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != JWT_BEARER:
        return oauth_error(400, "invalid_request", f"client_assertion_type must be {JWT_BEARER}")
    assertion = form.get("client_assertion")
    if not isinstance(assertion, str) or not assertion:
        return oauth_error(400, "invalid_request", "client_assertion is missing")

    def reject(why: str) -> Response:
        return oauth_error(401, "invalid_client", why)

    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return reject("client_assertion is not a well-formed JWT")
    kid = header.get("kid")
    if not kid:
        return reject("the JWT header has no kid (the API key id)")
    entry = keys.get(str(kid))
    if entry is None:
        return reject(f"unknown key id (kid) {kid!r}")
    tenant_id, key, public = entry
    alg = header.get("alg")
    if alg != key.algorithm:
        return reject(
            f"alg {alg!r} does not match the key registered for this kid ({key.algorithm})"
        )
    try:
        claims = jwt.decode(
            assertion,
            key=public,
            algorithms=[key.algorithm],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        return reject("the signature does not verify with the key registered for this kid")
    except jwt.PyJWTError as exc:
        return reject(f"client_assertion cannot be decoded: {exc}")
    now = clock_now()
    expected_aud = f"http://{req.host}/v1/oauth/token"
    aud = claims.get("aud")
    if not (aud == expected_aud or (isinstance(aud, list) and expected_aud in aud)):
        return reject(f"aud must be this token endpoint's URL {expected_aud!r}, got {aud!r}")
    if claims.get("iss") != tenant_id:
        return reject("iss must be the tenant id that owns this key")
    if claims.get("sub") != tenant_id:
        return reject("sub must be the tenant id that owns this key (equal to iss)")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return reject("exp is missing or not a number")
    if exp <= now - LEEWAY:
        return reject("the assertion has expired (exp is in the past)")
    if exp > now + MAX_ASSERTION_LIFETIME + LIFETIME_SLACK:
        return reject("exp is more than 10 minutes in the future")
    for name in ("nbf", "iat"):  # documented claims ("include iat and nbf"): required
        value = claims.get(name)
        if value is None:
            return reject(f"{name} is missing (the documented assertion carries iat and nbf)")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return reject(f"{name} is not a number")
        if value > now + LEEWAY:
            return reject(f"{name} is in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        return reject("jti is missing (it protects against replay)")
    return Assertion(tenant_id, key, float(exp), jti, now)
