"""A fault-injecting HTTP proxy of the tests' own, in front of the emulator (stdlib only).

Why not the emulator's own faults: they are the emulator's idea of trouble, and an independent
proxy finds what they cannot make (a 200 whose body is HTML, a cut body, an answer of the
wrong shape, a connection refused before anything was sent). The emulator stays as it is;
its journal remains the ground truth of what was processed.

Each request's fault is drawn from a seeded `random.Random`, so a campaign run can be
replayed. Every request the proxy receives is logged with its receive time, the fault, and
whether it was forwarded (reached the emulator), for the campaign's invariant checks.

Kinds (what the client sees; "forwarded" means the emulator processed it):
    refuse        the listener closes for a moment: the next connects are refused (never sent)
    reset_early   the connection is reset before the request is read (never forwarded)
    reset         forwarded, then the connection is reset (answer lost)
    drop          forwarded, then the connection is closed without an answer
    delay         forwarded, the answer held past the client's read timeout
    rate_limit    429 with Retry-After (not forwarded)
    unavailable   503 (not forwarded)
    gateway       forwarded, then 502 instead of the answer
    truncated     forwarded, the body cut in half under the full Content-Length
    not_json      forwarded, a 200 HTML page instead of the answer
    wrong_shape   forwarded, a JSON value of an unexpected shape instead of the answer
Scripted only (`rule`): slow (forwarded, answered late), then_refuse (answered with
Connection: close, then connects are refused for a moment).
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

KINDS = (
    "refuse",
    "reset_early",
    "reset",
    "drop",
    "delay",
    "rate_limit",
    "unavailable",
    "gateway",
    "truncated",
    "not_json",
    "wrong_shape",
)
SHAPES = (b"[]", b"null", b'{"id": null}', b'{"id": {"x": 1}}', b'{"items": 5}', b'"text"')


@dataclass(frozen=True, slots=True)
class Seen:
    time: float  # when the proxy had read the request
    method: str
    path: str
    fault: str | None
    forwarded: bool


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        seed: int,
        rate: float = 0.15,
        kinds: tuple[str, ...] = KINDS,
        match: str = "/",
        delay: float = 1.5,
        rule: Callable[[str, str], tuple[str, float] | None] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.rng = random.Random(seed)
        self.rate = rate
        self.kinds = kinds
        self.match = match  # only paths starting with this get faults (others pass through)
        self.delay = delay
        # Scripted instead of random: (method, path) -> (kind, seconds) or None. The seconds
        # are the Retry-After of rate_limit/unavailable, the hold of delay/slow.
        self.rule = rule
        self.seen: list[Seen] = []
        self.faults: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._down_until = 0.0
        self._close_requests: list[tuple[float, threading.Event]] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._listener is not None:
                self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- listening, and refusing ------------------------------------------------------------

    def _listen(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        sock.settimeout(0.1)
        return sock

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                requests, self._close_requests = self._close_requests, []
            for seconds, done in requests:
                self.refuse_for(seconds)
                done.set()
            with self._lock:
                down = self._listener is None
                if down and time.monotonic() >= self._down_until:
                    self._listener = self._relisten()
                    down = False
                listener = self._listener
            if down or listener is None:
                time.sleep(0.01)
                continue
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                continue
            kind = self._draw(("refuse", "reset_early"))
            if kind == "reset_early":
                self._count(kind)
                _reset(conn)
                continue
            if kind == "refuse":
                # This connection is served; the next ones are refused for a moment: a
                # client sees ECONNREFUSED, the "certainly not sent, safe to resend" path.
                self._count(kind)
                self.refuse_for(self.rng.uniform(0.05, 0.3))
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def refuse_for(self, seconds: float) -> None:
        """Close the listener and open it again after `seconds`: connects are refused.

        Only the accept thread closes it: a socket closed while another thread polls it stays
        open in the kernel until that poll returns, and connects queued meanwhile get a reset
        (ambiguous for the client) instead of a refusal. Other threads ask and wait."""
        if threading.current_thread() is self._thread:
            with self._lock:
                self._down_until = time.monotonic() + seconds
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
            return
        done = threading.Event()
        with self._lock:
            self._close_requests.append((seconds, done))
        done.wait(5)

    def _relisten(self) -> socket.socket:
        for _ in range(100):
            try:
                return self._listen(self.port)
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"cannot listen on port {self.port} again")

    def _draw(self, among: tuple[str, ...]) -> str | None:
        with self._lock:
            wanted = [k for k in among if k in self.kinds]
            if not wanted or self.rng.random() >= self.rate * len(wanted) / len(self.kinds):
                return None
            return self.rng.choice(wanted)

    def _count(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def _log(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    # -- one client connection ---------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        reader = conn.makefile("rb")
        try:
            while not self._stop.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                method, target, headers, body = request
                path = target.split("?", 1)[0]
                received = time.time()
                late = ("reset", "drop", "delay", "rate_limit", "unavailable", "gateway")
                late += ("truncated", "not_json", "wrong_shape")
                seconds = None
                if self.rule is not None:
                    kind, seconds = self.rule(method, path) or (None, None)
                else:
                    kind = self._draw(late) if path.startswith(self.match) else None
                if kind in ("rate_limit", "unavailable"):
                    self._count(kind)
                    self._log(Seen(received, method, path, kind, False))
                    wait = seconds if seconds is not None else self.rng.choice((0, 1, 2, 3))
                    extra = f"Retry-After: {wait:g}\r\n"
                    status = "429 Too Many Requests" if kind == "rate_limit" else "503 Unavailable"
                    text = b'{"error": "proxy", "message": "injected"}'
                    conn.sendall(
                        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
                        f"Content-Length: {len(text)}\r\n\r\n".encode()
                        + text
                    )
                    continue
                self._log(Seen(received, method, path, kind, True))
                status_line, out_headers, answer = self._forward(method, target, headers, body)
                if kind is not None:
                    self._count(kind)
                if kind == "reset":
                    _reset(conn)
                    return
                if kind == "drop":
                    return
                if kind == "delay":
                    time.sleep(seconds if seconds is not None else self.delay)
                    return  # the client gave up; never answer on a connection it left
                if kind == "slow":  # forwarded, answered late but answered
                    time.sleep(seconds or 0.0)
                if kind == "gateway":
                    status_line, answer = "HTTP/1.1 502 Bad Gateway", b"<html>bad gateway</html>"
                    out_headers = [("Content-Type", "text/html")]
                elif kind == "not_json":
                    answer = self.rng.choice((b"<html><h1>Login</h1></html>", b"", b'{"id": '))
                    status_line = "HTTP/1.1 200 OK"
                    out_headers = [("Content-Type", "text/html")]
                elif kind == "wrong_shape":
                    answer = self.rng.choice(SHAPES)
                head = [status_line, *(f"{k}: {v}" for k, v in out_headers)]
                if kind == "truncated" and len(answer) > 1:
                    head.append(f"Content-Length: {len(answer)}")
                    cut = answer[: len(answer) // 2]
                    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + cut)
                    return
                if kind == "then_refuse":  # refuse the next connects, answer, close
                    head.append("Connection: close")
                    # Listener closed before the answer leaves, so the client's next connect
                    # cannot sit in the backlog (closing it then would reset, not refuse).
                    self.refuse_for(seconds or 0.5)
                head.append(f"Content-Length: {len(answer)}")
                conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + answer)
                if kind == "then_refuse":
                    return
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in ("connection", "content-length"):
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            answer = response.read()
            keep = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in ("content-length", "connection", "transfer-encoding")
            ]
            return f"HTTP/1.1 {response.status} {response.reason}", keep, answer
        except OSError:
            return "HTTP/1.1 502 Bad Gateway", [("Content-Type", "text/plain")], b"upstream lost"
        finally:
            upstream.close()

    def summary(self) -> dict[str, int]:
        with self._lock:
            return dict(self.faults)


def _read_request(reader) -> tuple[str, str, list[tuple[str, str]], bytes] | None:  # noqa: ANN001
    line = reader.readline(65536)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: list[tuple[str, str]] = []
    length = 0
    while True:
        raw = reader.readline(65536)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    body = reader.read(length) if length else b""
    return method, target, headers, body


def _reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed middlebox would."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        conn.close()
