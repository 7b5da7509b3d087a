"""Webhook environments: the alert goes out when the platform does not answer (issue 11 §3).

Real HTTP: the platform is the emulator (refusing our key) or a closed port on 127.0.0.1,
the webhook is a standard-library receiver on 127.0.0.1 that keeps what it was sent.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario
from mftrun.validation import load_pipeline

TASK = "00000000-0000-4000-8000-000000000001"
HOOK_TOKEN = "hook-token-0123456789abcdef"  # a header value read from a variable
HOOK_PATH_SECRET = "T0001/B0002/XyZsecretPart0123456789"


class Receiver:
    """An incoming webhook on 127.0.0.1: records method, path, headers and JSON body."""

    def __init__(self, status: int = 200) -> None:
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.calls.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "json": json.loads(body) if body else None,
                    }
                )
                data = b"ok"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pipeline(tmp_path: Path, mft_url: str, key: Path, tenant: str, kid: str) -> Path:
    path = tmp_path / "night.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        version: 1
        name: night
        environments:
          mft:
            provider: automate-mft
            base_url: {mft_url}
            timeout: 2s
            credentials:
              tenant_id: {tenant}
              key_id: {kid}
              private_key: {{file: {key}}}
          chat:
            provider: webhook
            base_url: {{env: HOOK_URL}}
            headers:
              X-Hook-Token: {{env: HOOK_TOKEN}}
              X-Team: night-ops
        defaults: {{environment: mft, poll: {{interval: 0.05, max_interval: 0.2}}}}
        steps:
          - {{id: pull, start_task: {TASK}}}
          - {{id: push, start_task: {TASK}, needs: [pull]}}
          - id: alert
            environment: chat
            needs: [push]
            run_if: failure
            http:
              method: POST
              json:
                text: "night failed: pull {{{{ steps.pull.outcome }}}}"
                error: "{{{{ steps.pull.error }}}}"
            outputs:
              answer: "{{{{ response.text }}}}"
        """)
    )
    return path


def stranger_key(tmp_path: Path) -> Path:
    """A valid EC key the emulator does not know: its token endpoint refuses it (401)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "stranger.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def run(tmp_path: Path, file: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    reports = tmp_path / "report"
    code = main(["apply", str(file), "--report-dir", str(reports), "-q", "--no-state", *extra])
    written = "".join(p.read_text() for p in reports.iterdir())
    return code, json.loads((reports / "report.json").read_text()), written


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in report["steps"]}


@pytest.mark.parametrize("login_check", [True, False], ids=["login-check", "no-login-check"])
@pytest.mark.parametrize("why", ["credentials rejected", "platform unreachable"])
def test_failure_branch_posts_when_platform_errors(
    why: str,
    login_check: bool,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/services/{HOOK_PATH_SECRET}")
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    with Emulator(Scenario.from_dict({"seed": 3})) as emu:
        url = emu.url if why == "credentials rejected" else f"http://127.0.0.1:{closed_port()}"
        file = pipeline(
            tmp_path, url, stranger_key(tmp_path), emu.credentials.tenant_id, emu.credentials.key_id
        )
        code, report, written = run(tmp_path, file, *([] if login_check else ["--no-login-check"]))
        assert emu.journal.starts(TASK) == 0  # nothing was started on the platform
    steps = by_id(report)
    assert code == 3
    assert steps["pull"]["status"] == "error"
    if login_check:  # refused before anything started: every platform step ends error
        assert "login check failed" in steps["pull"]["error"]
        assert steps["push"]["status"] == "error"
    else:  # found at the first step: its dependents are skipped
        assert steps["push"]["status"] == "skipped"
    assert steps["alert"]["status"] == "success"
    assert steps["alert"]["outputs"]["answer"] == "ok"
    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert call["path"] == f"/services/{HOOK_PATH_SECRET}"
    assert call["headers"]["X-Hook-Token"] == HOOK_TOKEN
    assert call["headers"]["X-Team"] == "night-ops"
    assert "Authorization" not in call["headers"]  # no platform token goes to a webhook
    assert call["json"]["text"] == "night failed: pull error"
    assert call["json"]["error"]  # the platform's reason travelled with the alert
    out = capsys.readouterr()
    for secret in (HOOK_TOKEN, HOOK_PATH_SECRET):
        assert secret not in written
        assert secret not in out.out + out.err


def test_webhook_answering_an_error_fails_the_alert_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = Receiver(status=500)
    try:
        monkeypatch.setenv("HOOK_URL", f"{failing.url}/services/{HOOK_PATH_SECRET}")
        monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
        file = pipeline(
            tmp_path, f"http://127.0.0.1:{closed_port()}", stranger_key(tmp_path), "t", "k"
        )
        code, report, written = run(tmp_path, file)
    finally:
        failing.close()
    alert = by_id(report)["alert"]
    assert alert["status"] == "failed"
    assert "answered 500" in alert["error"]
    assert len(failing.calls) == 1  # a POST is never re-sent
    assert HOOK_PATH_SECRET not in written


def test_missing_webhook_secrets_are_listed_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("HOOK_URL", raising=False)
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    file = pipeline(tmp_path, "http://127.0.0.1:1", stranger_key(tmp_path), "t", "k")
    assert main(["apply", str(file), "--no-report", "-q", "--no-state"]) == 3
    err = capsys.readouterr().err
    assert "environment variable HOOK_URL is not set" in err
    assert "environment variable HOOK_TOKEN is not set" in err


def test_plain_http_webhook_url_from_a_variable_is_refused_unquoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("HOOK_URL", f"http://hooks.example.com/services/{HOOK_PATH_SECRET}")
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    file = pipeline(tmp_path, "http://127.0.0.1:1", stranger_key(tmp_path), "t", "k")
    assert main(["apply", str(file), "--no-report", "-q", "--no-state"]) == 3
    err = capsys.readouterr().err
    assert "plain http" in err
    assert HOOK_PATH_SECRET not in err


def test_example_alert_reaches_the_emulator_sink_under_emulate(tmp_path: Path) -> None:
    """--emulate: webhook environments post to the emulator's sink, which answers 200."""
    example = Path(__file__).parent.parent / "examples" / "webhook-alert.yaml"
    scenario = tmp_path / "fail.yaml"
    scenario.write_text(
        "automate_mft:\n  tasks:\n"
        "    - {id: 6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f, outcome: failed, duration: 1s}\n"
    )
    reports = tmp_path / "report"
    args = ["apply", str(example), "--emulate", "--scenario", str(scenario), "--no-state"]
    code = main([*args, "--report-dir", str(reports), "-q"])
    report = json.loads((reports / "report.json").read_text())
    steps = by_id(report)
    assert code == 1
    assert steps["push-invoices"]["status"] == "failed"
    for sid in ("alert-chat", "night-report"):
        assert steps[sid]["status"] == "success"
        assert steps[sid]["outputs"]["json"] == {"ok": True}


def test_sink_keeps_what_it_received_in_the_journal() -> None:
    with Emulator() as emu:
        request = urllib.request.Request(
            f"{emu.url}/_emulator/webhooks/chat/alerts?x=1",
            data=b'{"text": "hello"}',
            headers={"Content-Type": "application/json", "X-Api-Key": "emulated"},
            method="POST",
        )
        with urllib.request.urlopen(request) as answer:  # noqa: S310 - loopback
            assert json.load(answer) == {"ok": True}
        (record,) = emu.journal.webhooks
        journal = emu.journal.to_dict()["webhooks"]
    assert (record.environment, record.method, record.path, record.query) == (
        "chat",
        "POST",
        "/alerts",
        "x=1",
    )
    assert record.body == {"text": "hello"}
    assert "x-api-key" in record.header_names
    assert journal[0]["body"] == {"text": "hello"}


@pytest.mark.parametrize(
    ("environment", "step", "message"),
    [
        (
            "{provider: webhook, base_url: https://h.example.com, headers: {X-Api-Key: k123}}",
            "{id: a, environment: w, http: {method: POST}}",
            "header X-Api-Key must not be written inline",
        ),
        (
            "{provider: webhook, base_url: https://h.example.com, credentials: {client_id: x}}",
            "{id: a, environment: w, http: {method: POST}}",
            "credentials is not used by webhook environments",
        ),
        (
            "{provider: webhook, base_url: 'https://hooks.slack.com/services/T0/B0/abcdef'}",
            "{id: a, environment: w, http: {method: POST}}",
            "carries its secret in the path",
        ),
        (
            "{provider: webhook, base_url: 'https://x.example.com/wf?api-version=1&sig=abc'}",
            "{id: a, environment: w, http: {method: POST}}",
            "carries a secret in its query",
        ),
        (
            "{provider: webhook, base_url: http://h.example.com/x}",
            "{id: a, environment: w, http: {method: POST}}",
            "plain http",
        ),
        (
            "{provider: webhook, base_url: https://h.example.com}",
            "{id: a, environment: w, start_task: 02115928-16fe-4493-949b-d77d302a88ee}",
            "start_task is not offered by webhook",
        ),
        (
            # {env: NAME} is allowed for every provider (issue 11 s4); {file:} only for webhooks
            "{provider: acronis, base_url: {file: U}, credentials: "
            "{client_id: x, client_secret: {env: S}}}",
            "{id: a, environment: w, http: {path: /x}}",
            "acronis base_url is a URL or {env: NAME}",
        ),
        (
            "{provider: acronis, base_url: https://a.example.com, credentials: "
            "{client_id: x, client_secret: {env: S}}}",
            "{id: a, environment: w, http: {method: GET}}",
            "http needs path",
        ),
    ],
)
def test_validation(environment: str, step: str, message: str, tmp_path: Path) -> None:
    from mftrun.errors import MftrunError

    file = tmp_path / "p.yaml"
    file.write_text(f"version: 1\nenvironments:\n  w: {environment}\nsteps:\n  - {step}\n")
    with pytest.raises(MftrunError) as caught:
        load_pipeline(str(file))
    assert message in str(caught.value)


def test_webhook_url_query_is_kept_and_sent(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Teams-style URLs carry their signature in the query: it is kept and sent with the
    call, together with the step's own query; the signature stays out of the reports."""
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/workflows/run?api-version=1&sig={HOOK_TOKEN}")
    file = tmp_path / "p.yaml"
    file.write_text(
        "version: 1\nenvironments:\n  w: {provider: webhook, base_url: {env: HOOK_URL}}\n"
        "steps:\n  - {id: a, environment: w, http: {method: POST, query: {x: y}, json: {}}}\n"
    )
    code, report, written = run(tmp_path, file)
    assert code == 0
    assert receiver.calls[0]["path"] == f"/workflows/run?api-version=1&sig={HOOK_TOKEN}&x=y"
    assert HOOK_TOKEN not in written
