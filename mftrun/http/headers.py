"""Which request headers a pipeline may set on an `http` step, and which it may not.

Why: an `http` step's headers travel with the session's bearer token. `Host` would
send that token under an attacker-chosen virtual host (or to another backend behind
a shared front end); `Connection`, `Content-Length`, `Transfer-Encoding` and the
other hop-by-hop headers describe the connection and the body framing, which the
transport owns, and a wrong one desynchronises the stream (request smuggling);
`Authorization` would replace the session's credentials. A name that is not an
RFC 9110 token (a trailing space, a colon, a control character) makes a malformed
header line. All of these are refused at validate time, in any spelling.
"""

from __future__ import annotations

import re

REFUSED = frozenset(
    {
        "host",
        "authorization",
        "proxy-authorization",
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 field values: visible ASCII, space, tab and obs-text; C0 and C1 controls and
# anything beyond Latin-1 (which the wire cannot carry) are refused
_BAD_VALUE = re.compile(r"[^\t\x20-\x7e\xa0-\xff]")


def name_problem(name: str) -> str | None:
    """Why `name` may not be sent as a request header, or None."""
    if not _TOKEN.fullmatch(name):
        return (
            f"header name {name!r} is not a valid HTTP field name "
            "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces, colons or control characters)"
        )
    lowered = name.lower()
    if lowered in ("authorization", "proxy-authorization"):
        return f"header {name!r} is not allowed: the environment's session authenticates every call"
    if lowered in REFUSED:
        return (
            f"header {name!r} is not allowed: it describes the connection or the request's "
            "routing and framing, which the transport sets"
        )
    return None


def value_problem(value: str) -> str | None:
    """Why `value` may not be sent as a header value (CR, LF, NUL and other controls)."""
    if _BAD_VALUE.search(value) or value != value.strip(" \t"):
        return (
            "the value holds a line break, a control character, a character beyond "
            "Latin-1 or edge whitespace"
        )
    return None
