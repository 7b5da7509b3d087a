"""Text mftrun did not write, made safe to print: one inert line.

Why: a platform's failure message, a run status, a task type, a token endpoint's
`error_description`, a step name or a file name from a contributor's pull request
all end up on a terminal or in a CI log. There, text is not just text:

- a newline followed by `::add-mask::…`, `::stop-commands::…` or `::error …` is a
  GitHub Actions workflow command, acted on by the runner (`::stop-commands::`
  even hides mftrun's own annotations); the runner trims leading whitespace
  first, and its older `##[command]` form is honoured anywhere in a line;
- ESC sequences retitle the window, write the clipboard (OSC 52), clear the
  screen or recolour what follows; `\\r` overwrites what the line showed;
- bidirectional overrides make a line read differently from what it holds;
- a lone surrogate (`"\\ud800"`, legal in JSON) cannot be encoded at all, and
  crashed the console and the report writer.

`inert()` is the one function every such text goes through before it is written
to a terminal or a log. Control characters (C0, DEL, C1, line/paragraph
separators, bidi controls) and lone surrogates are shown escaped (`\\n`, `\\x1b`,
`\\ud800`), so the text stays readable and what the platform really sent is
visible; the result is a single line that cannot start a workflow command.
Backslashes are left alone: this is for people reading, not a reversible encoding.

`encodable()` / `encodable_data()` only replace lone surrogates (with the same
escaped spelling), for data that is stored or written as files rather than printed
(a report keeps a platform message's newlines; it must still be writable).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, TextIO, cast

# C0, DEL, C1, U+2028/2029 (line breaks to some readers), bidi embeddings, overrides and
# isolates, and every lone surrogate.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LEGACY_COMMAND = "##["  # the runner's older workflow-command prefix, honoured mid-line


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _skippable(char: str) -> bool:
    """What the runner may skip before looking for `::`: whitespace, and format characters
    (zero-width space, soft hyphen...) that a culture-aware StartsWith ignores."""
    return char.isspace() or unicodedata.category(char) == "Cf"


def inert(text: object) -> str:
    """`text` as one printable line: controls and lone surrogates escaped, no workflow command.

    Safe to put anywhere in a line, including its start: a leading `::` (after any
    whitespace) has its first colon shown as `\\x3a`, and `##[` becomes `##\\x5b`.
    """
    return no_command(_UNSAFE.sub(_escape, text if isinstance(text, str) else str(text)))


def no_command(line: str) -> str:
    """One line that cannot be a workflow command: a leading `::` (after whitespace) gets
    its first colon shown as `\\x3a`, and `##[` anywhere becomes `##\\x5b`."""
    if _LEGACY_COMMAND in line:
        line = line.replace(_LEGACY_COMMAND, "##\\x5b")
    start = 0
    while start < len(line) and _skippable(line[start]):
        start += 1
    if line.startswith("::", start):
        line = line[:start] + "\\x3a" + line[start + 1 :]
    return line


def inert_lines(text: object) -> str:
    """A multi-line message that mftrun composed (an error and its hint): each line made
    inert on its own, so mftrun's own line breaks stay and nothing in a line can act."""
    raw = text if isinstance(text, str) else str(text)
    return "\n".join(inert(line) for line in raw.split("\n"))


def encodable(text: str) -> str:
    """`text` with each lone surrogate replaced by its escaped spelling (`\\ud800`)."""
    return _SURROGATE.sub(_escape, text) if _SURROGATE.search(text) else text


def encodable_data(value: Any) -> Any:
    """`encodable` applied to every string (keys too) inside JSON-like data."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable_data(k): encodable_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encodable_data(v) for v in value]
    return value


def inert_json(text: str) -> str:
    """JSON text (from `json.dumps`) safe for a terminal: `json` escapes C0 controls inside
    strings but not DEL, C1 (U+009B is CSI to some terminals), U+2028 or lone surrogates;
    those can only occur inside strings, where `\\uXXXX` is their valid JSON spelling."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return char if char == "\n" else f"\\u{ord(char):04x}"

    return _UNSAFE.sub(escape, text)


class GuardedStream:
    """A text stream for rich's rendered tables: rich wraps long cells onto new lines, so a
    `::` in the middle of an (already inert) message could start a printed line; each line
    written through here passes `no_command`. Whole lines are held until their newline."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            self._stream.write("".join(no_command(line) + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._stream.write(no_command(self._partial))
            self._partial = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        return int(self._stream.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self._stream, "encoding", None) or "utf-8")


def guarded(stream: Any) -> TextIO:
    """`stream` wrapped in a `GuardedStream`, typed as the text stream rich expects."""
    return cast(TextIO, GuardedStream(stream))
