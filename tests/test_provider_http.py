"""The generic `http` action through the authenticated session.

Also bodies that are not API answers.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mftrun.credentials import Redactor
from mftrun.emulator import Emulator, Scenario
from mftrun.errors import AmbiguousStartError, RemoteError
from mftrun.model import CredentialRef, Environment
from mftrun.providers.registry import create_provider

import kit  # noqa: E402
from kit import FAST_MFT, Ctx  # noqa: E402

TASK = "6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f"
FAST = FAST_MFT


def mft_env(emu_url: str, creds: dict) -> Environment:
    return Environment("mft", "automate-mft", emu_url, creds, http_timeout=5.0)


def emu_creds(emu: Emulator, folder) -> dict:
    paths = emu.write_credentials(folder)
    return {
        "tenant_id": CredentialRef("value", emu.credentials.tenant_id),
        "key_id": CredentialRef("value", emu.credentials.key_id),
        "private_key": CredentialRef("file", paths["MFT_PRIVATE_KEY_FILE"]),
    }


def scenario(**extra) -> Scenario:
    return Scenario.from_dict(
        {
            "speed": 50,
            "automate_mft": {"tasks": [{"id": TASK, "queue": "1s", "duration": "5s"}]},
            **extra,
        }
    )


def test_http_get_through_the_session_returns_outputs_without_auth(tmp_path):
    redactor = Redactor()
    with Emulator(scenario()) as emu:
        provider = create_provider(
            mft_env(emu.url, emu_creds(emu, tmp_path)), redactor=redactor, policies=FAST
        )
        handle, obs = kit.start(provider, "http", {"path": "/v1/licenses/current"}, Ctx())
        assert obs.state == "success" and obs.outputs["status_code"] == 200
        assert obs.outputs["json"]["planTier"] == "Professional"
        assert json.loads(obs.outputs["text"]) == obs.outputs["json"]
        assert not {k.lower() for k in obs.outputs["headers"]} & {"authorization", "set-cookie"}
        assert provider.http_calls(handle) == 1
        assert [r.token for r in emu.journal.requests if r.path == "/v1/licenses/current"] != [None]


def test_a_status_outside_expect_fails_with_the_answer(tmp_path):
    with Emulator(scenario()) as emu:
        provider = create_provider(
            mft_env(emu.url, emu_creds(emu, tmp_path)), redactor=Redactor(), policies=FAST
        )
        _, obs = kit.start(provider, "http", {"path": "/v1/task-runs/nope"}, Ctx())
        assert obs.state == "failed" and obs.outputs["status_code"] == 404
        assert "GET /v1/task-runs/nope answered 404 (expected 200, 201, 202, 204)" in obs.message
        _, obs = kit.start(provider, "http", {"path": "/v1/task-runs/nope", "expect": [404]}, Ctx())
        assert obs.state == "success"


def test_until_polls_the_same_request_until_the_expression_holds(tmp_path):
    with Emulator(scenario()) as emu:
        provider = create_provider(
            mft_env(emu.url, emu_creds(emu, tmp_path)), redactor=Redactor(), policies=FAST
        )
        _, started = kit.start(
            provider,
            "http",
            {"method": "POST", "path": f"/v1/tasks/{TASK}/start", "json": {}},
            Ctx(),
        )
        run_id = started.outputs["json"]["id"]
        until = "{{ response.json.status.taskRunStatus == 'success' }}"
        handle, obs = kit.start(
            provider, "http", {"path": f"/v1/task-runs/{run_id}", "until": until}, Ctx()
        )
        assert obs.state == "running"
        deadline = time.monotonic() + 15
        while obs.state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            obs = provider.poll(handle, Ctx())
        assert (
            obs.state == "success" and obs.outputs["json"]["status"]["taskRunStatus"] == "success"
        )
        assert provider.http_calls(handle) >= 2
        assert emu.journal.starts(TASK) == 1


def test_an_http_post_whose_answer_is_lost_is_ambiguous(tmp_path):
    faults = [
        {
            "kind": "drop_response",
            "times": 1,
            "match": {"method": "POST", "path": "/v1/tasks/*/start"},
        }
    ]
    with Emulator(scenario(faults=faults)) as emu:
        provider = create_provider(
            mft_env(emu.url, emu_creds(emu, tmp_path)), redactor=Redactor(), policies=FAST
        )
        with pytest.raises(AmbiguousStartError, match="may have processed the request"):
            kit.start(
                provider,
                "http",
                {"method": "POST", "path": f"/v1/tasks/{TASK}/start", "json": {}},
                Ctx(),
            )
        assert emu.journal.starts(TASK) == 1
        assert (
            len([r for r in emu.journal.requests if r.method == "POST" and "start" in r.path]) == 1
        )


def test_acronis_http_step_rides_the_acronis_token(tmp_path):
    with Emulator(Scenario.default()) as emu:
        env = Environment(
            "backup",
            "acronis",
            emu.url,
            {
                "client_id": CredentialRef("value", emu.credentials.client_id),
                "client_secret": CredentialRef("value", emu.credentials.client_secret),
            },
        )
        provider = create_provider(env, redactor=Redactor())
        _, obs = kit.start(
            provider, "http", {"path": "/api/task_manager/v2/tasks", "query": {"limit": 1}}, Ctx()
        )
        assert obs.state == "success" and "items" in obs.outputs["json"]
        assert emu.journal.tokens_issued("acronis") == 1


# ----------------------------------------------------------------- not an API answering


@contextmanager
def impostor(api_body: bytes, content_type: str = "text/html"):
    """A server that hands out tokens but answers API calls with something else (a proxy page)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"access_token": "tok-abcdefgh", "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(api_body)))
            self.end_headers()
            self.wfile.write(api_body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def key_creds(tmp_path) -> dict:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "k.pem").write_bytes(pem)
    return {
        "tenant_id": CredentialRef("value", "t"),
        "key_id": CredentialRef("value", "k"),
        "private_key": CredentialRef("file", str(tmp_path / "k.pem")),
    }


def test_a_non_json_answer_is_a_clear_remote_error(tmp_path):
    with impostor(b"<html><body>Please log in to the proxy</body></html>") as url:
        provider = create_provider(
            mft_env(url, key_creds(tmp_path)), redactor=Redactor(), policies=FAST
        )
        with pytest.raises(RemoteError) as caught:
            provider.check()
        text = str(caught.value)
        assert "not JSON (text/html)" in text and "Please log in to the proxy" in text
        assert "login" in text  # the hint
        # The http action accepts any body: json is None, text is kept.
        _, obs = kit.start(provider, "http", {"path": "/anything"}, Ctx())
        assert (
            obs.state == "success"
            and obs.outputs["json"] is None
            and "proxy" in obs.outputs["text"]
        )


def test_an_oversized_answer_is_a_clear_remote_error(tmp_path):
    with impostor(b"[" + b"0," * (5 * 1024 * 1024 + 10) + b"0]", "application/json") as url:
        provider = create_provider(
            mft_env(url, key_creds(tmp_path)), redactor=Redactor(), policies=FAST
        )
        with pytest.raises(RemoteError, match="the answer is too large"):
            provider.check()
