"""One `requests.Session` per environment, with the safety rails every call needs.

Why a wrapper and not bare requests: every call must carry a connect and a read
timeout (requests has none by default), bodies must be size-capped (a proxy
error page or a runaway answer must not fill memory), and a transport failure
must say *whether the request reached the server*: a task start may be retried
only when it certainly did not. So failures are raised as two ConnectError
subclasses:

    ConnectError
    ├── NotSentError     DNS, refused, TLS handshake, connect timeout, proxy: never sent
    └── NoResponseError  sent, but the answer was lost (read timeout, dropped connection)
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mftrun.concurrency import connection_pool_size
from mftrun.errors import ConnectError, RemoteError

MAX_BODY = 10 * 1024 * 1024  # answers above this are refused, not buffered
CONNECT_TIMEOUT = 10.0


class NotSentError(ConnectError):
    """The request certainly did not reach the server: safe to send again."""


class NoResponseError(ConnectError):
    """The request may have reached the server, but no (complete) answer came back."""


class BodyTooLarge(Exception):
    """Raised while reading; `send` turns it into a RemoteError naming the call."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def is_loopback(host: str) -> bool:
    """The one loopback test (URL checks, proxy bypass): `localhost` itself and literal
    loopback addresses (127.0.0.0/8, ::1); brackets and case are ignored.

    Why not `*.localhost` (RFC 6761) or /etc/hosts aliases: whether such a name stays
    on this machine is up to the resolver, and some send it to DNS. Plain http carries
    the bearer token, so only names that cannot leave the machine count."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """Return the base URL in canonical form; refuse plain http to real hosts.

    Tokens and client assertions travel in every request, so plain http is only
    acceptable on this machine (the emulator). Canonical (lower-case scheme and
    host, no default port, no trailing slash) because a signed client assertion's
    `aud` may be built from it and must then equal the token endpoint's URL exactly:
    `https://API.example.com:443/` and `https://api.example.com` are one host."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(
            f"base URL {base_url!r} is not an http(s) URL", hint="write it as https://host[:port]"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConnectError(
            f"refusing plain http:// for {parts.hostname}: "
            "credentials and tokens would travel unencrypted",
            hint="use https://; plain http is allowed only for loopback hosts (the emulator)",
        )
    scheme = parts.scheme.lower()
    host = parts.hostname  # already lower-case
    netloc = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        raise ConnectError(
            f"base URL {base_url!r} has an invalid port", hint="write it as https://host[:port]"
        ) from None
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    if parts.username or parts.password:
        raise ConnectError(
            f"base URL {parts.hostname!r} carries a user name or password",
            hint="put credentials in the environment's credentials, not in base_url",
        )
    return f"{scheme}://{netloc}{parts.path}".rstrip("/")


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = CONNECT_TIMEOUT
    read: float = 30.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect, self.read)


class HttpTransport:
    """A pooled session for one environment: timeouts, TLS, size cap, failure classes."""

    def __init__(
        self,
        base_url: str,
        *,
        max_parallel: int = 8,
        ca_bundle: str | None = None,
        timeouts: Timeouts = Timeouts(),
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.base_url = check_base_url(base_url)
        self.timeouts = timeouts
        self._host = urlsplit(self.base_url).hostname or ""
        if ca_bundle:
            path = os.path.expanduser(ca_bundle)
            if not os.path.isfile(path):
                raise ConnectError(
                    f"ca_bundle {ca_bundle} does not exist or is not a file",
                    hint="point ca_bundle at a PEM file of trusted CA certificates",
                )
            self._verify: bool | str = path
        else:
            # What requests would read on every call with trust_env, read once here.
            self._verify = (
                environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or True
            )
        session = requests.Session()
        # The environment (proxies, CA variables, ~/.netrc) is read once per session, not on
        # every request as trust_env does: that lookup was the largest mftrun-side CPU item per
        # request (bench/profile_apply.py). ~/.netrc is never wanted: every call carries its token.
        session.trust_env = False
        # Pool: one connection per worker thread that can send at once (not per active step:
        # urllib3 allocates every slot up front, so max_parallel 10,000 would mean 10,000 slots
        # and a huge value locked apply up); no requests-level retries.
        adapter = HTTPAdapter(
            pool_connections=2, pool_maxsize=connection_pool_size(max_parallel), max_retries=0
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = _user_agent()
        session.headers["Accept"] = "application/json"
        self._session = session
        # Proxies come from the environment exactly as requests does it (trust_env);
        # loopback never goes through a proxy, so the emulator works behind corporate proxies.
        self._proxies = (
            {} if is_loopback(self._host) else requests.utils.get_environ_proxies(self.base_url)
        )
        self._lock = threading.Lock()
        self.requests_sent = 0

    def url(self, path: str) -> str:
        return (
            path
            if path.startswith(("http://", "https://"))
            else f"{self.base_url}/{path.lstrip('/')}"
        )

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        max_body: int = MAX_BODY,
    ) -> Any:
        """Send one request (no retries); return a `requests.Response` with its body read."""
        import requests

        with self._lock:
            self.requests_sent += 1
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=dict(headers or {}),
                auth=auth,
                timeout=self.timeouts.as_tuple(),
                verify=self._verify,
                proxies=self._proxies,
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise describe_failure(exc, method, url, self.timeouts) from None
        try:
            response._content = _read_capped(response, max_body)
        except requests.RequestException as exc:
            raise describe_failure(exc, method, url, self.timeouts) from None
        except BodyTooLarge as exc:
            raise RemoteError(
                f"{method} {urlsplit(url).path}: the answer is too large "
                f"({exc.size:,} bytes or more; "
                f"the limit is {max_body:,})",
                status=response.status_code,
                hint=(
                    "an API answer this big is unexpected; check base_url and any proxy in between"
                ),
            ) from None
        finally:
            response.close()
        _encodable_json(response)
        return response

    def close(self) -> None:
        self._session.close()


def _encodable_json(response: Any) -> None:
    """The boundary for platform JSON: a lone surrogate (`"\\ud800"` is legal JSON) becomes
    its escaped spelling as the body is parsed, so no later writer (console, report, state
    store) meets text it cannot encode."""
    from mftrun.inert import encodable_data

    parse = response.json

    def json(**kwargs: Any) -> Any:
        return encodable_data(parse(**kwargs))

    response.json = json


def _read_capped(response: Any, limit: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def describe_failure(exc: Exception, method: str, url: str, timeouts: Timeouts) -> ConnectError:
    """Turn a requests exception into a message a person can act on, keeping 'was it sent?'."""
    import requests

    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    call = f"{method} {parts.path or '/'}"
    chain = _causes(exc)
    text = " ".join(str(c) for c in chain).lower()
    names = {type(c).__name__ for c in chain}

    if isinstance(exc, requests.exceptions.SSLError):
        hint = (
            "the server may not speak TLS on this port (https:// to a plain-http port?)"
            if "wrong version number" in text
            or "record layer failure" in text
            or "unknown protocol" in text
            else "check the server certificate, or set ca_bundle to your organisation's CA file"
        )
        return NotSentError(f"TLS handshake with {where} failed: {_short(chain[-1])}", hint=hint)
    if isinstance(exc, requests.exceptions.ProxyError):
        return NotSentError(
            f"cannot connect through the proxy to {where}: {_short(chain[-1])}",
            hint="check HTTPS_PROXY / NO_PROXY",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return NotSentError(
            f"timed out after {timeouts.connect:g}s connecting to {where}",
            hint="check the URL, the network path and any firewall or proxy",
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return NoResponseError(
            f"{call} on {where}: no answer within {timeouts.read:g}s (read timeout)",
            hint="the server may be slow; raise the environment's timeout",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        if (
            "NameResolutionError" in names
            or "gaierror" in names
            or "name or service not known" in text
            or "failed to resolve" in text
        ):
            return NotSentError(
                f"cannot resolve host {parts.hostname} (DNS lookup failed)",
                hint="check the spelling of base_url/region and your DNS",
            )
        if "ConnectionRefusedError" in names or "connection refused" in text:
            return NotSentError(
                f"connection refused by {where}",
                hint="is the server running and is this the right port?",
            )
        if "NewConnectionError" in names:
            return NotSentError(f"cannot connect to {where}: {_short(chain[-1])}")
        return NoResponseError(
            f"{call} on {where}: the connection was dropped before an answer came "
            f"({_short(chain[-1])})"
        )
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    ):
        return NoResponseError(f"{call} on {where}: the answer was cut off ({_short(chain[-1])})")
    return NoResponseError(f"{call} on {where}: {exc.__class__.__name__}: {_short(exc)}")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (args, __cause__, __context__, urllib3 .reason)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 12:
        item = todo.pop(0)
        if any(item is s for s in seen):
            continue
        seen.append(item)
        for nxt in (getattr(item, "reason", None), item.__cause__, item.__context__, *item.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    text = text.split("(Caused by", 1)[0].strip()
    return text[:200]


def _user_agent() -> str:
    from mftrun import __version__

    return f"mftrun/{__version__}"
