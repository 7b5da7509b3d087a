"""Contract tests for the emulated Automate MFT, over real HTTP, with a client written from
the API contract (requests + PyJWT), not from the server code."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mftrun.emulator import Emulator, Scenario, SteppedClock

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TASK = "02115928-16fe-4493-949b-d77d302a88ee"


def assertion(
    emu: Emulator,
    *,
    key_pem: str | None = None,
    alg: str = "ES256",
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    base: str | None = None,
    **claims: Any,
) -> str:
    creds = emu.credentials
    now = int(time.time())
    body = {
        "iss": creds.tenant_id,
        "sub": creds.tenant_id,
        "aud": f"{base or emu.url}/v1/oauth/token",
        "exp": now + 240,
        "iat": now,
        "nbf": now,
        "jti": str(uuid.uuid4()),
    }
    body.update(claims)
    for name in drop:
        body.pop(name)
    head = {"kid": creds.key_id}
    head.update(headers or {})
    return jwt.encode(
        body, key_pem if key_pem is not None else creds.private_key_pem, algorithm=alg, headers=head
    )


def token_request(
    emu: Emulator, jwt_text: str, *, form: bool = False, base: str | None = None
) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": jwt_text,
    }
    url = f"{base or emu.url}/v1/oauth/token"
    return (
        requests.post(url, data=data, timeout=5)
        if form
        else requests.post(url, json=data, timeout=5)
    )


def token(emu: Emulator) -> str:
    response = token_request(emu, assertion(emu))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"bearer {tok}"}


@pytest.fixture(scope="module")
def emu():
    scenario = Scenario.from_dict(
        {
            "speed": 100,
            "automate_mft": {
                "tasks": [
                    {
                        "id": TASK,
                        "name": "Pull orders <script>alert(1)</script>",
                        "queue": "10s",
                        "duration": "30s",
                        "agent": "agent-01",
                        "files": {"transferred": 12, "failed": 0, "skipped": 1, "bytes": 4096},
                    },
                    {
                        "id": "fails",
                        "outcome": "failed",
                        "queue": 0,
                        "duration": "10s",
                        "message": "Permission denied: /in/<b>orders</b>",
                    },
                    {
                        "id": "flaky",
                        "queue": 0,
                        "duration": "5s",
                        "outcomes": [
                            {"outcome": "failed", "message": "first try fails"},
                            "success",
                        ],
                    },
                    {"id": "stuck", "outcome": "stuck", "queue": 0, "duration": 0},
                ]
            },
        }
    )
    with Emulator(scenario) as server:
        yield server


def test_correct_assertion_is_accepted_as_json_and_as_form(emu: Emulator) -> None:
    response = token_request(emu, assertion(emu))
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"] and body["token_type"].lower() == "bearer"
    assert body["access_token"].count(".") != 2  # opaque, not a JWT
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert token_request(emu, assertion(emu), form=True).status_code == 200


def test_localhost_host_header_gives_a_localhost_audience(emu: Emulator) -> None:
    base = f"http://localhost:{emu.port}"
    assert token_request(emu, assertion(emu, base=base), base=base).status_code == 200
    # ...but the 127.0.0.1 audience is then the wrong one
    wrong = token_request(emu, assertion(emu), base=base)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def _other_ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _hs256_confusion(emu: Emulator) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the registered public key."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    public = serialization.load_pem_private_key(
        emu.credentials.private_key_pem.encode(), None
    ).public_key()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = jwt.decode(assertion(emu), options={"verify_signature": False})
    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": emu.credentials.key_id}).encode())
        + "."
        + b64(json.dumps(good).encode())
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


BROKEN = {
    "alg none": lambda e: assertion(e, alg="none", key_pem=""),
    "alg HS256 keyed with the public key": lambda e: _hs256_confusion(e),
    "alg RS256 on an EC kid": lambda e: assertion(e, alg="RS256", key_pem=_rsa_pem()),
    "unknown kid": lambda e: assertion(e, headers={"kid": "no-such-key"}),
    "missing kid": lambda e: jwt.encode(
        {"iss": e.credentials.tenant_id}, e.credentials.private_key_pem, algorithm="ES256"
    ),
    "signature": lambda e: assertion(e, key_pem=_other_ec_pem()),
    "aud": lambda e: assertion(e, aud="https://api.us.mft.progress.com/v1/oauth/token"),
    "aud without path": lambda e: assertion(e, aud=e.url),
    "iss": lambda e: assertion(e, iss="someone-else"),
    "sub": lambda e: assertion(e, sub="someone-else"),
    "expired": lambda e: assertion(e, exp=int(time.time()) - 120),
    "exp missing": lambda e: assertion(e, drop=("exp",)),
    "too far ahead": lambda e: assertion(e, exp=int(time.time()) + 11 * 60),
    "nbf in the future": lambda e: assertion(e, nbf=int(time.time()) + 300),
    "iat in the future": lambda e: assertion(e, iat=int(time.time()) + 300),
    "jti missing": lambda e: assertion(e, drop=("jti",)),
    "not a jwt": lambda e: "not-a-jwt",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_claim_is_rejected(emu: Emulator, case: str) -> None:
    response = token_request(emu, BROKEN[case](emu))
    assert response.status_code == 401, (case, response.text)
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"]


def test_replayed_jti_is_rejected(emu: Emulator) -> None:
    text = assertion(emu)
    assert token_request(emu, text).status_code == 200
    again = token_request(emu, text)
    assert again.status_code == 401
    assert "jti" in again.json()["error_description"]


def test_malformed_token_requests_are_400(emu: Emulator) -> None:
    url = f"{emu.url}/v1/oauth/token"
    good = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion(emu),
    }
    wrong_grant = requests.post(url, json={**good, "grant_type": "password"}, timeout=5)
    assert (
        wrong_grant.status_code == 400 and wrong_grant.json()["error"] == "unsupported_grant_type"
    )
    no_assertion = requests.post(
        url, json={k: v for k, v in good.items() if k != "client_assertion"}, timeout=5
    )
    assert no_assertion.status_code == 400 and no_assertion.json()["error"] == "invalid_request"
    wrong_type = requests.post(url, data="x", headers={"Content-Type": "text/plain"}, timeout=5)
    assert wrong_type.status_code == 400


def test_token_is_counted_in_the_journal(emu: Emulator) -> None:
    before = emu.journal.tokens_issued("automate-mft")
    token(emu)
    assert emu.journal.tokens_issued("automate-mft") == before + 1


@pytest.mark.parametrize(
    "header, status", [(None, 401), ("bearer nonsense", 401), ("Basic abc", 401), ("bearer", 401)]
)
def test_missing_or_unknown_token_is_401(emu: Emulator, header: str | None, status: int) -> None:
    headers = {"Authorization": header} if header else {}
    assert (
        requests.get(f"{emu.url}/v1/licenses/current", headers=headers, timeout=5).status_code
        == status
    )


def test_expired_token_is_403_and_a_new_one_works() -> None:
    clock = SteppedClock()
    with Emulator(
        Scenario.from_dict({"automate_mft": {"token_lifetime": "300ms"}}), clock=clock
    ) as emu:
        tok = token(emu)
        assert (
            requests.get(f"{emu.url}/v1/licenses/current", headers=auth(tok), timeout=5).status_code
            == 200
        )
        clock.advance(0.4)
        expired = requests.get(f"{emu.url}/v1/licenses/current", headers=auth(tok), timeout=5)
        assert expired.status_code == 403
        fresh = token(emu)
        assert (
            requests.get(
                f"{emu.url}/v1/licenses/current", headers=auth(fresh), timeout=5
            ).status_code
            == 200
        )


def test_license_reports_plan_dates_and_executions(emu: Emulator) -> None:
    tok = token(emu)
    before = requests.get(f"{emu.url}/v1/licenses/current", headers=auth(tok), timeout=5).json()
    assert before["planTier"] and before["startDate"] and before["endDate"]
    requests.post(f"{emu.url}/v1/tasks/stuck/start", headers=auth(tok), json={}, timeout=5)
    after = requests.get(f"{emu.url}/v1/licenses/current", headers=auth(tok), timeout=5).json()
    assert after["taskExecutions"]["used"] == before["taskExecutions"]["used"] + 1


def poll(
    emu: Emulator, tok: str, run_id: str, *, until: set[str], timeout: float = 5
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(f"{emu.url}/v1/task-runs/{run_id}", headers=auth(tok), timeout=5)
        assert response.status_code == 200
        seen.append(response.json())
        if seen[-1]["status"]["taskRunStatus"] in until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} never reached {until}: {seen[-1]}")


def test_run_moves_queued_running_success_with_details(emu: Emulator) -> None:
    tok = token(emu)
    started = requests.post(
        f"{emu.url}/v1/tasks/{TASK}/start", headers=auth(tok), json={"FileMask": "*.csv"}, timeout=5
    )
    assert started.status_code == 200
    run_id = started.json()["id"]
    views = poll(emu, tok, run_id, until={"success", "failed"})
    statuses = [v["status"]["taskRunStatus"] for v in views]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "success"
    assert statuses.index("running") > 0
    final = views[-1]
    assert final["id"] == run_id and final["taskId"] == TASK
    assert final["agent"] == "agent-01"
    assert final["startTime"] and final["endTime"] and final["startTime"] < final["endTime"]
    assert final["fileStatistics"]["transferred"] == 12
    run = next(r for r in emu.journal.runs if r.run_id == run_id)
    assert run.parameters == {"FileMask": "*.csv"} and run.status == "success" and run.ended


def test_start_by_name_free_text(emu: Emulator) -> None:
    tok = token(emu)
    name = "Pull orders <script>alert(1)</script>"
    before = emu.journal.starts(name)
    response = requests.post(
        f"{emu.url}/v1/tasks/start", params={"name": name}, headers=auth(tok), json={}, timeout=5
    )
    assert response.status_code == 200 and response.json()["id"]
    assert emu.journal.starts(name) == before + 1
    assert emu.journal.starts(TASK) >= 1


def test_failed_run_carries_its_message(emu: Emulator) -> None:
    tok = token(emu)
    run_id = requests.post(f"{emu.url}/v1/tasks/fails/start", headers=auth(tok), timeout=5).json()[
        "id"
    ]
    final = poll(emu, tok, run_id, until={"success", "failed"})[-1]
    assert final["status"] == {
        "taskRunStatus": "failed",
        "message": "Permission denied: /in/<b>orders</b>",
    }


def test_outcomes_follow_the_attempts_and_the_last_repeats(emu: Emulator) -> None:
    tok = token(emu)
    results = []
    for _ in range(3):
        run_id = requests.post(
            f"{emu.url}/v1/tasks/flaky/start", headers=auth(tok), json={}, timeout=5
        ).json()["id"]
        results.append(
            poll(emu, tok, run_id, until={"success", "failed"})[-1]["status"]["taskRunStatus"]
        )
    assert results == ["failed", "success", "success"]
    assert emu.journal.starts("flaky") == 3


def test_stuck_run_keeps_running(emu: Emulator) -> None:
    tok = token(emu)
    run_id = requests.post(f"{emu.url}/v1/tasks/stuck/start", headers=auth(tok), timeout=5).json()[
        "id"
    ]
    time.sleep(0.1)
    view = requests.get(f"{emu.url}/v1/task-runs/{run_id}", headers=auth(tok), timeout=5).json()
    assert view["status"]["taskRunStatus"] == "running" and view["endTime"] is None


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/tasks/no-such-task/start"),
        ("POST", "/v1/tasks/start?name=no%20such%20name"),
        ("GET", "/v1/task-runs/no-such-run"),
        ("GET", "/v1/tasks"),
        ("GET", "/v1/task-runs"),
        ("GET", f"/v1/tasks/{TASK}"),
        ("POST", "/v1/task-runs/abc/cancel"),
        ("DELETE", "/v1/task-runs/abc"),
        ("POST", f"/v1/tasks/{TASK}/cancel"),
    ],
)
def test_unknown_and_undocumented_paths_are_404(emu: Emulator, method: str, path: str) -> None:
    response = requests.request(method, emu.url + path, headers=auth(token(emu)), timeout=5)
    assert response.status_code == 404


def test_start_body_must_be_a_json_object(emu: Emulator) -> None:
    tok = token(emu)
    response = requests.post(
        f"{emu.url}/v1/tasks/{TASK}/start", headers=auth(tok), json=["a"], timeout=5
    )
    assert response.status_code == 400


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    "alg, key",
    [
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("EdDSA", lambda: ed25519.Ed25519PrivateKey.generate()),
    ],
)
def test_rsa_and_ed25519_keys(alg: str, key: Any) -> None:
    pem = _pem(key())
    scenario = Scenario.from_dict(
        {"automate_mft": {"tenants": [{"id": "t-1", "keys": [{"id": "k-1", "private_key": pem}]}]}}
    )
    with Emulator(scenario) as emu:
        assert token_request(emu, assertion(emu, alg=alg)).status_code == 200
        wrong = token_request(emu, assertion(emu, alg="ES256", key_pem=_other_ec_pem()))
        assert wrong.status_code == 401 and "alg" in wrong.json()["error_description"]


def test_ip_allow_list_gives_403_naming_it() -> None:
    scenario = Scenario.from_dict(
        {"automate_mft": {"tenants": [{"keys": [{"allow_ips": ["10.0.0.0/8"]}]}]}}
    )
    with Emulator(scenario) as emu:
        response = requests.get(
            f"{emu.url}/v1/licenses/current", headers=auth(token(emu)), timeout=5
        )
        assert response.status_code == 403 and "allow-list" in response.json()["message"]


def test_journal_records_requests_and_is_served_over_http(emu: Emulator) -> None:
    tok = token(emu)
    requests.get(f"{emu.url}/v1/licenses/current", headers=auth(tok), timeout=5)
    entries = [r for r in emu.journal.requests if r.path == "/v1/licenses/current"]
    assert entries and entries[-1].status == 200 and entries[-1].platform == "automate-mft"
    assert entries[-1].token and entries[-1].token.startswith("automate-mft#")
    assert tok not in str(emu.journal.to_dict())  # the journal never holds a token itself
    served = requests.get(f"{emu.url}/_emulator/journal", timeout=5).json()
    assert served["tokens_issued"]["automate-mft"] >= 1 and served["connections"] >= 1
    assert any(r["path"] == "/v1/licenses/current" for r in served["requests"])


def test_keep_alive_connections_are_reused(emu: Emulator) -> None:
    before = emu.journal.connections
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(f"{emu.url}/_emulator/health", timeout=5).status_code == 200
    assert emu.journal.connections == before + 1
