"""The emulator's HTTP/1.1 wire: reading a request off a stream and encoding a response.

Split from the Emulator object (issue 12): this is the protocol alone, with no platform
and no fault in it. It is hand-written rather than `http.server` so that each response is
one write on a TCP_NODELAY socket (no Nagle/delayed-ACK stall) and a connection costs a
coroutine, not a thread; it reads Content-Length and chunked bodies, answers
`Expect: 100-continue`, and refuses oversized heads (431) and bodies (413).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from mftrun.emulator.wire import Request, Response

MAX_HEADER = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
IDLE_TIMEOUT = 300.0  # a silent keep-alive connection is closed after this many seconds
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Close(Exception):
    """End the connection now (after a reset, hang or dropped response)."""


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str
) -> tuple[Request | None, bool]:
    """The next request on the connection and whether it keeps the connection alive.

    (None, False) at EOF or after a malformed head, which has been answered already.
    """
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
    except asyncio.IncompleteReadError:
        return None, False
    except asyncio.LimitOverrunError:
        writer.write(encode(Response(431, b'{"error":"headers too large"}'), False))
        return None, False
    lines = head[:-4].decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        writer.write(encode(Response(400, b'{"error":"bad request line"}'), False))
        return None, False
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = (
        ("close" not in connection) if version == "HTTP/1.1" else ("keep-alive" in connection)
    )
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(body) > MAX_BODY:
                raise Close()
    else:
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            writer.write(
                encode(
                    Response(413 if length > 0 else 400, b'{"error":"bad Content-Length"}'),
                    False,
                )
            )
            return None, False
        body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return Request(method.upper(), path, query, headers, body, client_ip), keep_alive


async def until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def encode(response: Response, keep_alive: bool) -> bytes:
    """The whole response in one buffer: one write, so no Nagle/delayed-ACK stall."""
    head = [
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Server: mftrun-emulator",
    ]
    head.extend(f"{k}: {v}" for k, v in response.headers)
    if response.status == 401 and response.content_type == "application/json":
        head.append('WWW-Authenticate: Bearer realm="emulator"')
    if not keep_alive:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body
