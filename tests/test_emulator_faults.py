"""Every fault kind happens as configured and is recorded in the journal."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import jwt
import pytest
import requests

from mftrun.emulator import Emulator, Scenario, SteppedClock

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HEALTHLESS = "/v1/licenses/current"


def mft_token(emu: Emulator) -> str:
    creds = emu.credentials
    now = int(time.time())
    text = jwt.encode(
        {
            "iss": creds.tenant_id,
            "sub": creds.tenant_id,
            "aud": f"{emu.url}/v1/oauth/token",
            "exp": now + 240,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
        },
        creds.private_key_pem,
        algorithm="ES256",
        headers={"kid": creds.key_id},
    )
    response = requests.post(
        f"{emu.url}/v1/oauth/token",
        timeout=5,
        json={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": text,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def acronis_headers(emu: Emulator) -> dict[str, str]:
    creds = emu.credentials
    response = requests.post(
        f"{emu.url}/api/2/idp/token",
        data={"grant_type": "client_credentials"},
        auth=(creds.client_id, creds.client_secret),
        timeout=5,
    )
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def emulator(*faults: dict[str, Any], clock: SteppedClock | None = None, **extra: Any) -> Emulator:
    return Emulator(Scenario.from_dict({"faults": list(faults), **extra}), clock=clock)


def statuses(emu: Emulator, n: int, tok: str) -> list[int]:
    out = []
    with requests.Session() as session:
        for _ in range(n):
            out.append(
                session.get(
                    emu.url + HEALTHLESS, headers={"Authorization": f"bearer {tok}"}, timeout=5
                ).status_code
            )
    return out


def license_entries(emu: Emulator) -> list[Any]:
    return [r for r in emu.journal.requests if r.path == HEALTHLESS]


def test_rate_limit_every_nth_with_retry_after() -> None:
    fault = {"kind": "rate_limit", "every": 3, "retry_after": 2, "match": {"path": HEALTHLESS}}
    with emulator(fault) as emu:
        tok = mft_token(emu)
        with requests.Session() as session:
            answers = [
                session.get(
                    emu.url + HEALTHLESS, headers={"Authorization": f"bearer {tok}"}, timeout=5
                )
                for _ in range(6)
            ]
        assert [a.status_code for a in answers] == [200, 200, 429, 200, 200, 429]
        assert answers[2].headers["Retry-After"] == "2"
        assert [r.fault for r in license_entries(emu)] == [None, None, "rate_limit"] * 2
        assert emu.journal.faults_applied("rate_limit") == 2


def test_rate_limit_without_retry_after_on_acronis() -> None:
    fault = {
        "kind": "rate_limit",
        "match": {"platform": "acronis", "path": "/api/task_manager/*"},
        "times": 1,
    }
    with emulator(fault) as emu:
        hdrs = acronis_headers(emu)
        first = requests.get(f"{emu.url}/api/task_manager/v2/tasks", headers=hdrs, timeout=5)
        assert first.status_code == 429 and "Retry-After" not in first.headers
        assert {"domain", "code", "reason"} <= set(first.json())
        assert (
            requests.get(
                f"{emu.url}/api/task_manager/v2/tasks", headers=hdrs, timeout=5
            ).status_code
            == 200
        )
        # the MFT side is untouched by an acronis-only fault
        assert statuses(emu, 3, mft_token(emu)) == [200, 200, 200]


def test_probability_is_seeded_and_deterministic() -> None:
    fault = {"kind": "rate_limit", "probability": 0.5, "match": {"path": HEALTHLESS}}
    runs = []
    for _ in range(2):
        with emulator(fault, seed=42) as emu:
            runs.append(statuses(emu, 30, mft_token(emu)))
            assert emu.journal.faults_applied("rate_limit") == runs[-1].count(429)
    assert runs[0] == runs[1]
    assert 5 < runs[0].count(429) < 25
    with emulator(fault, seed=7) as emu:
        assert statuses(emu, 30, mft_token(emu)) != runs[0]


def test_5xx_burst() -> None:
    fault = {
        "kind": "error",
        "status": 502,
        "skip": 1,
        "burst": 3,
        "times": 3,
        "match": {"path": HEALTHLESS},
    }
    with emulator(fault) as emu:
        assert statuses(emu, 6, mft_token(emu)) == [200, 502, 502, 502, 200, 200]
        assert [r.fault for r in license_entries(emu)].count("error") == 3


def test_connection_reset() -> None:
    fault = {"kind": "reset", "times": 1, "match": {"method": "GET", "path": HEALTHLESS}}
    with emulator(fault) as emu:
        tok = mft_token(emu)
        with pytest.raises(requests.ConnectionError):
            requests.get(
                emu.url + HEALTHLESS, headers={"Authorization": f"bearer {tok}"}, timeout=5
            )
        (entry,) = license_entries(emu)
        assert entry.fault == "reset" and entry.status is None
        assert statuses(emu, 1, tok) == [200]


def test_added_latency() -> None:
    fault = {"kind": "latency", "delay": "300ms", "match": {"path": HEALTHLESS}}
    with emulator(fault) as emu:
        tok = mft_token(emu)
        begin = time.monotonic()
        assert statuses(emu, 1, tok) == [200]
        assert time.monotonic() - begin >= 0.3
        (entry,) = license_entries(emu)
        assert entry.fault == "latency" and entry.status == 200 and entry.duration_ms >= 300


def test_hang_trips_the_client_timeout_and_is_bounded() -> None:
    fault = {"kind": "hang", "hang_for": "1s", "match": {"path": HEALTHLESS}}
    with emulator(fault) as emu:
        tok = mft_token(emu)
        begin = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            requests.get(
                emu.url + HEALTHLESS, headers={"Authorization": f"bearer {tok}"}, timeout=(2, 0.3)
            )
        assert time.monotonic() - begin < 1
        # A client with no read timeout sees the server give up after hang_for and close.
        with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as sock:
            sock.sendall(f"GET {HEALTHLESS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            begin = time.monotonic()
            assert sock.recv(100) == b""
            assert 0.8 < time.monotonic() - begin < 3
        assert [r.fault for r in license_entries(emu)] == ["hang", "hang"]
        assert all(r.status is None for r in license_entries(emu))


def test_start_processed_but_response_dropped() -> None:
    fault = {
        "kind": "drop_response",
        "times": 1,
        "match": {"method": "POST", "path": "/v1/tasks/*/start"},
    }
    with emulator(
        fault, automate_mft={"tasks": [{"id": "t-1", "queue": 0, "duration": "1s"}]}
    ) as emu:
        tok = mft_token(emu)
        with pytest.raises(requests.ConnectionError):
            requests.post(
                f"{emu.url}/v1/tasks/t-1/start",
                headers={"Authorization": f"bearer {tok}"},
                json={"x": "1"},
                timeout=5,
            )
        assert emu.journal.starts("t-1") == 1  # the platform did start it
        (run,) = emu.journal.runs
        assert run.task_id == "t-1" and run.parameters == {"x": "1"}
        (entry,) = [
            r
            for r in emu.journal.requests
            if r.method == "POST" and r.path == "/v1/tasks/t-1/start"
        ]
        assert entry.fault == "drop_response" and entry.status is None


def test_token_revocation_at_a_time() -> None:
    fault = {"kind": "revoke_tokens", "at": "500ms", "match": {"platform": "automate-mft"}}
    clock = SteppedClock()
    with emulator(fault, clock=clock) as emu:
        tok = mft_token(emu)
        hdrs = acronis_headers(emu)
        assert statuses(emu, 1, tok) == [200]
        clock.advance(0.6)
        assert statuses(emu, 1, tok) == [401]
        assert license_entries(emu)[-1].fault == "revoke_tokens"
        assert emu.journal.faults_applied("revoke_tokens") == 1
        assert statuses(emu, 1, mft_token(emu)) == [200]  # a token issued afterwards works
        assert (
            requests.get(
                f"{emu.url}/api/task_manager/v2/tasks", headers=hdrs, timeout=5
            ).status_code
            == 200
        )


def test_faults_are_listed_over_http() -> None:
    fault = {"name": "throttle", "kind": "rate_limit", "every": 1, "match": {"path": HEALTHLESS}}
    with emulator(fault) as emu:
        statuses(emu, 2, mft_token(emu))
        served = requests.get(f"{emu.url}/_emulator/journal", timeout=5).json()
        assert [f["name"] for f in served["faults"]] == ["throttle", "throttle"]
        assert all(f["kind"] == "rate_limit" for f in served["faults"])
