"""The transport over real sockets: friendly failures that say whether the request was sent."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

import pytest

from mftrun.errors import ConnectError, RemoteError
from mftrun.http.session import (
    HttpTransport,
    NoResponseError,
    NotSentError,
    Timeouts,
    check_base_url,
    is_loopback,
)


@contextmanager
def raw_server(behaviour):
    """A one-purpose TCP server on 127.0.0.1; `behaviour(conn)` handles each connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conns.append(conn)
            threading.Thread(target=behaviour, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
        for conn in conns:
            conn.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def answer(body: bytes, headers: str = "Content-Type: application/json\r\n"):
    def behaviour(conn, stop):
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\n"
            + headers.encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    return behaviour


def test_loopback_detection_and_plain_http_refused_for_real_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("api.us.mft.progress.com") and not is_loopback("10.0.0.1")
    assert check_base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    with pytest.raises(ConnectError, match="refusing plain http:// for example.com"):
        check_base_url("http://example.com")
    with pytest.raises(ConnectError, match="not an http"):
        check_base_url("ftp://example.com")


def test_a_normal_answer_is_read_and_the_pool_counts_requests():
    with raw_server(answer(b'{"ok": true}')) as port:
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        response = transport.send("GET", transport.url("/x"))
        assert response.json() == {"ok": True}
        assert transport.requests_sent == 1
        transport.close()


def test_dns_failure_says_the_host_cannot_be_resolved():
    transport = HttpTransport("https://no-such-host.invalid", timeouts=Timeouts(2, 2))
    with pytest.raises(NotSentError) as caught:
        transport.send("GET", transport.url("/v1/licenses/current"))
    assert "cannot resolve host no-such-host.invalid" in str(caught.value)


def test_connection_refused_is_not_sent():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    transport = HttpTransport(f"http://127.0.0.1:{port}")
    with pytest.raises(NotSentError, match=f"connection refused by 127.0.0.1:{port}"):
        transport.send("POST", transport.url("/v1/tasks/x/start"), json={})


def test_tls_to_a_plain_http_port_is_a_tls_failure_with_a_hint():
    def plain_http(conn, stop):  # a plain HTTP server answers a TLS hello with a 400 page
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()

    with raw_server(plain_http) as port:
        transport = HttpTransport(f"https://127.0.0.1:{port}", timeouts=Timeouts(2, 2))
        with pytest.raises(NotSentError) as caught:
            transport.send("GET", transport.url("/"))
    text = str(caught.value)
    assert f"TLS handshake with 127.0.0.1:{port} failed" in text
    assert "plain-http port" in text


def test_read_timeout_means_no_response_not_not_sent():
    def hang(conn, stop):
        read_request(conn)
        stop.wait(5)

    with raw_server(hang) as port:
        transport = HttpTransport(f"http://127.0.0.1:{port}", timeouts=Timeouts(1, 0.3))
        with pytest.raises(NoResponseError, match=r"no answer within 0.3s \(read timeout\)"):
            transport.send("POST", transport.url("/v1/tasks/x/start"), json={})


def test_a_dropped_connection_after_sending_is_no_response():
    def drop(conn, stop):
        read_request(conn)
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    with raw_server(drop) as port:
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        with pytest.raises(NoResponseError, match="dropped before an answer came"):
            transport.send("POST", transport.url("/start"), json={})


def test_oversized_answers_are_refused():
    def big(conn, stop):
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20000000\r\n\r\n" + b" " * 1000
        )

    def chunked(conn, stop):
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(12):
                conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass

    with raw_server(big) as port:
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        with pytest.raises(RemoteError, match="answer is too large"):
            transport.send("GET", transport.url("/"))
    with raw_server(chunked) as port:
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        with pytest.raises(RemoteError, match="answer is too large"):
            transport.send("GET", transport.url("/"), max_body=500_000)


def test_a_missing_ca_bundle_is_reported():
    with pytest.raises(ConnectError, match="ca_bundle /nonexistent/ca.pem does not exist"):
        HttpTransport("https://example.com", ca_bundle="/nonexistent/ca.pem")


def test_proxies_come_from_the_environment_but_never_for_loopback(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert (
        HttpTransport("https://api.us.mft.progress.com")._proxies.get("https")
        == "http://proxy.corp.example:3128"
    )
    assert HttpTransport("https://api.internal.example")._proxies == {}
    assert HttpTransport("http://127.0.0.1:8080")._proxies == {}


def test_one_loopback_rule_for_url_checks_and_proxy_bypass():
    for host in (
        "localhost",
        "LOCALHOST",
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "[::1]",
    ):
        assert is_loopback(host), host
    # names whose resolution is up to the resolver (RFC 6761 *.localhost, hosts-file
    # aliases, a trailing-dot FQDN, wildcard-DNS services) are not loopback: some
    # resolvers send them to DNS, and plain http would carry the token there
    for host in (
        "localhost.example.com",
        "mylocalhost",
        "128.0.0.1",
        "::2",
        "10.0.0.1",
        "app.localhost",
        "a.b.localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "localhost.",
        "127.0.0.1.nip.io",
        "0x7f000001",
        "2130706433",
    ):
        assert not is_loopback(host), host
        with pytest.raises(ConnectError, match="refusing plain http"):
            check_base_url(f"http://[{host}]:8080" if ":" in host else f"http://{host}:8080")
