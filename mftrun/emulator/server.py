"""The emulator's HTTP/1.1 server: one asyncio loop in a background thread.

Why asyncio and a small hand-written HTTP/1.1 reader rather than `http.server`:
hundreds of keep-alive clients would mean hundreds of threads there, and its
separate header/body writes hit the Nagle/delayed-ACK stall (~40 ms per
request). Here each response goes out in one write on a TCP_NODELAY socket,
waiting runs are timestamps (no timers), and faults such as a hang or added
latency cost a sleeping coroutine, not a thread. Both platforms share one base
URL: Automate MFT under /v1/, Acronis under /api/, the journal under /_emulator/.
The HTTP/1.1 reading and encoding live in `http1`; this module holds the Emulator
object: its lifecycle, the faults applied per request, and the dispatch to a platform.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mftrun.emulator.acronis import Acronis
from mftrun.emulator.automate_mft import AutomateMft
from mftrun.emulator.faults import FaultEngine
from mftrun.emulator.http1 import MAX_HEADER, Close, encode, read_request, until_eof
from mftrun.emulator.journal import FaultRecord, Journal, RequestRecord, WebhookRecord
from mftrun.emulator.scenario import Scenario
from mftrun.emulator.wire import Request, Response, SimClock, json_response
import contextlib
import json

WEBHOOKS = "/_emulator/webhooks"  # the sink for webhook environments under --emulate


@dataclass(frozen=True, slots=True)
class Credentials:
    """The first tenant's key and the first Acronis client, ready for a pipeline's env vars."""

    tenant_id: str
    key_id: str
    private_key_pem: str | None
    client_id: str
    client_secret: str


def platform_of(path: str) -> str | None:
    if path.startswith("/v1/"):
        return "automate-mft"
    if path.startswith("/api/"):
        return "acronis"
    if path.startswith("/_emulator/"):
        return "emulator"
    return None


class Emulator:
    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: SimClock | None = None,
    ) -> None:
        if host != "localhost":
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ValueError(f"the emulator binds to loopback addresses only, not {host!r}")
        self.scenario = scenario if scenario is not None else Scenario.default()
        self.host = host
        self.port = port
        self.journal = Journal()
        # an injected clock (tests: a SteppedClock) keeps the scenario's speed
        self.clock = clock if clock is not None else SimClock(self.scenario.speed)
        self.clock.speed = self.scenario.speed
        self.faults = FaultEngine(self.scenario.faults, self.scenario.seed)
        self.mft = AutomateMft(self.scenario, self.clock, self.journal, self.faults.revocations)
        self.acronis = Acronis(self.scenario, self.clock, self.journal, self.faults.revocations)
        self.journal.runs_source = self.mft.run_records
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._connection,
                        self.host,
                        self.port,
                        backlog=2048,
                        limit=MAX_HEADER,
                        reuse_address=True,
                    )
                )
            except BaseException as exc:  # e.g. the port is taken
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            self.clock.reset()
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="mftrun-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        self.acronis.base_url = self.url
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            # stopping must not fail the caller
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ in-process API

    @property
    def credentials(self) -> Credentials:
        # The first key mftrun can sign with; a scenario may register public keys only,
        # for a user who brings the matching private key.
        signable = [(t, k) for t in self.scenario.mft_tenants for k in t.keys if k.private_key_pem]
        tenant, key = (
            signable[0]
            if signable
            else (self.scenario.mft_tenants[0], self.scenario.mft_tenants[0].keys[0])
        )
        client = self.scenario.acronis_clients[0]
        return Credentials(tenant.id, key.id, key.private_key_pem, client.id, client.secret)

    def write_credentials(self, folder: Path) -> dict[str, str]:
        """Write the private key (mode 0600) and return the environment variables to export."""
        from mftrun.private_files import private_folder, write_private

        creds = self.credentials
        folder = private_folder(Path(folder))
        env = {
            "MFT_TENANT_ID": creds.tenant_id,
            "MFT_KEY_ID": creds.key_id,
            "ACRONIS_CLIENT_ID": creds.client_id,
            "ACRONIS_CLIENT_SECRET": creds.client_secret,
        }
        if creds.private_key_pem is None:
            return env  # public keys only: the user signs with their own private key
        key_path = write_private(folder, "mft-private-key.pem", creds.private_key_pem)
        return {**env, "MFT_PRIVATE_KEY_FILE": str(key_path.resolve())}

    def ensure_mft_task(self, task_id: str | None = None, name: str | None = None) -> None:
        self.mft.ensure_task(task_id, name)

    def ensure_acronis_activity(self) -> None:
        self.acronis.ensure_activity()

    # ------------------------------------------------------------------ connections

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.journal.record_connection()
        sock = writer.get_extra_info("socket")
        peer = writer.get_extra_info("peername")
        client_ip = peer[0] if peer else "127.0.0.1"
        try:
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                request, keep_alive = await read_request(reader, writer, client_ip)
                if request is None:
                    break
                if not await self._serve(request, reader, writer, keep_alive):
                    break
        except (Close, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(
        self,
        req: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Answer one request; False ends the connection."""
        started = time.monotonic()
        wall = time.time()
        platform = platform_of(req.path)
        decision = (
            self.faults.decide(platform, req.method, req.path)
            if platform in ("automate-mft", "acronis")
            else None
        )
        applied: list[str] = []

        def note(kind: str, name: str) -> None:
            applied.append(kind)
            self.journal.record_fault(FaultRecord(time.time(), name, kind, req.method, req.path))

        def record(status: int | None, token: str | None = None) -> None:
            self.journal.record_request(
                RequestRecord(
                    wall,
                    req.method,
                    req.path,
                    req.query,
                    status,
                    platform,
                    ",".join(applied) or None,
                    token,
                    round((time.monotonic() - started) * 1000, 3),
                )
            )

        terminal = decision.terminal if decision else None
        if decision and decision.latency_faults:
            for fault in decision.latency_faults:
                note(fault.kind, fault.name)
            await asyncio.sleep(decision.latency)
        if terminal is not None and terminal.kind == "reset":
            note(terminal.kind, terminal.name)
            record(None)
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            raise Close()
        if terminal is not None and terminal.kind == "hang":
            note(terminal.kind, terminal.name)
            record(None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(until_eof(reader), terminal.hang_for)
            raise Close()
        if terminal is not None and terminal.kind == "rate_limit":
            note(terminal.kind, terminal.name)
            headers: tuple[tuple[str, str], ...] = ()
            if terminal.retry_after is not None:
                value = terminal.retry_after
                headers = (("Retry-After", str(int(value)) if value == int(value) else str(value)),)
            response = self._fault_body(
                platform, 429, "TooManyRequests", "rate limit exceeded", headers
            )
        elif terminal is not None and terminal.kind == "error":
            note(terminal.kind, terminal.name)
            response = self._fault_body(
                platform, terminal.status, "ServiceUnavailable", "emulated server error", ()
            )
        else:
            response = self._dispatch(req, platform)
            if response.fault:
                applied.append(response.fault)
        if terminal is not None and terminal.kind == "drop_response":
            note(terminal.kind, terminal.name)
            record(None, response.token)
            writer.transport.close()  # processed, but the answer never leaves
            raise Close()
        record(response.status, response.token)
        writer.write(encode(response, keep_alive))
        await writer.drain()
        return keep_alive

    @staticmethod
    def _fault_body(
        platform: str | None,
        status: int,
        code: str,
        reason: str,
        headers: tuple[tuple[str, str], ...],
    ) -> Response:
        if platform == "acronis":
            body: dict[str, Any] = {
                "domain": "Gateway",
                "code": code,
                "reason": reason,
                "context": {},
                "kbLink": {"lineTag": "emu-fault", "serCode": str(status)},
                "debug": {"msg": reason},
            }
        else:
            body = {"error": code, "message": reason}
        return json_response(status, body, headers=headers)

    def _dispatch(self, req: Request, platform: str | None) -> Response:
        try:
            if platform == "automate-mft":
                return self.mft.handle(req)
            if platform == "acronis":
                return self.acronis.handle(req)
            if req.path == "/_emulator/journal" and req.method == "GET":
                return json_response(200, self.journal.to_dict())
            if req.path.startswith(WEBHOOKS + "/"):
                return self._webhook(req)
            if req.path == "/_emulator/health" and req.method == "GET":
                return json_response(200, {"status": "ok", "url": self.url})
            return json_response(404, {"error": "not_found", "message": f"no such path {req.path}"})
        except Exception:  # a bug in the emulator: answer 500 and say so on stderr
            traceback.print_exc(file=sys.stderr)
            return json_response(
                500, {"error": "emulator_bug", "message": "internal emulator error"}
            )

    def _webhook(self, req: Request) -> Response:
        """The sink webhook environments are pointed at under --emulate: it keeps what it was
        sent in the journal and answers 200 {"ok": true}, as an incoming webhook would."""
        environment, _, path = req.path[len(WEBHOOKS) + 1 :].partition("/")
        text = req.body.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        self.journal.record_webhook(
            WebhookRecord(
                time.time(),
                environment,
                req.method,
                f"/{path}" if path else "",
                req.query,
                sorted(req.headers),
                body,
            )
        )
        return json_response(200, {"ok": True})
