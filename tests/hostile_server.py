"""A small hostile Acronis-like platform over real HTTP, for the untrusted-text tests.

It speaks just enough of the Acronis task manager (token, task list, task lookup) and
one extra path for an `http` step, and puts whatever text the test chose into every
field mftrun reads: task ids, states, types, policy names, result codes, error
reasons, error bodies, token error descriptions. JSON is written with `ensure_ascii`
so a lone surrogate travels as the legal escape `"\\ud800"`, as a real server's could.
It is not the emulator on purpose: the emulator is strict and well-behaved.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "hostile-issued-token-Zq81x0V3kP2mN7rT"  # noqa: S105 - a test token


@dataclass
class Hostility:
    """The platform's words, chosen by the test."""

    task_id: str = "1"
    state: str = "started"
    type: str = "backup"
    policy: str = "nightly"
    code: str = "error"
    reason: str = "disk full"
    http_status: int = 418
    http_body: bytes = b'{"error": "teapot"}'
    http_type: str = "application/json"
    token: str = TOKEN  # the access token a proper token answer issues
    token_status: int = 200
    token_body: bytes | None = None  # None: a proper token answer
    token_type: str = "application/json"
    seen: dict[str, int] = field(default_factory=dict)


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=True).encode("ascii")


class _Handler(BaseHTTPRequestHandler):
    hostility: Hostility
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _count(self, name: str) -> int:
        seen = self.hostility.seen
        seen[name] = seen.get(name, 0) + 1
        return seen[name]

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        h = self.hostility
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/api/2/idp/token"):
            self._count("token")
            if h.token_body is not None:
                self._send(h.token_status, h.token_body, h.token_type)
            else:
                self._send(
                    200,
                    _json({"access_token": h.token, "token_type": "bearer", "expires_in": 3600}),
                )
            return
        self._send(404, _json({"error": "not found"}))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        h = self.hostility
        path = self.path.split("?", 1)[0]
        task = {
            "idString": h.task_id,
            "type": h.type,
            "policy": {"id": "p1", "name": h.policy, "type": h.type},
        }
        if path == "/api/task_manager/v2/tasks":
            # apply's login check lists one task with no filter: not the wait's first listing
            query = self.path.partition("?")[2]
            first = query != "limit=1" and self._count("list") == 1
            items = [{**task, "state": h.state}] if first else []
            self._send(200, _json({"items": items, "paging": {"cursors": {}}}))
        elif path.startswith("/api/task_manager/v2/tasks/"):
            n = self._count("lookup")
            if n == 1:
                self._send(200, _json({**task, "state": h.state}))
            else:
                self._send(
                    200,
                    _json(
                        {
                            **task,
                            "state": "completed",
                            "completedAt": "2026-01-01T00:00:00.123456789Z",
                            "result": {"code": h.code, "error": {"reason": h.reason}},
                        }
                    ),
                )
        elif path == "/api/hostile":
            self._count("http")
            self._send(h.http_status, h.http_body, h.http_type)
        else:
            self._send(404, _json({"error": "not found"}))


@contextmanager
def hostile_server(hostility: Hostility) -> Iterator[str]:
    """Serve `hostility` on 127.0.0.1; yield the base URL."""
    handler = type("Handler", (_Handler,), {"hostility": hostility})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


PIPELINE = """\
version: 1
name: hostile
environments:
  backup:
    provider: acronis
    base_url: {url}
    credentials:
      client_id: {{env: HOSTILE_CLIENT_ID}}
      client_secret: {{env: HOSTILE_CLIENT_SECRET}}
defaults:
  environment: backup
  timeout: 20s
  poll: {{interval: 10ms, max_interval: 20ms}}
steps:
  - id: settle
    wait_tasks: {{state: [started]}}
  - id: probe
    needs: [settle]
    run_if: always
    http: {{method: GET, path: /api/hostile, expect: [200]}}
"""
CLIENT_ID = "hostile-client-0001"
CLIENT_SECRET = "hostile-secret-9f8e7d6c5b4a"  # noqa: S105 - a test secret
