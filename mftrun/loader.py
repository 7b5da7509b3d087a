"""YAML text -> plain JSON-like data that remembers where every node was written.

Why not `yaml.safe_load`: it forgets positions, silently keeps the last of two
duplicate keys, and turns `on:`/`yes:` keys into booleans. We compose the node
tree (with libyaml when present, it is several times faster) and walk it once,
recording a 1-based (line, column) for every value and every mapping key under
its path, e.g. ``("steps", 3, "needs", 0)``.

Errors never escape as exceptions: they come back as `Problem`s with the same
positioned form as schema and semantic errors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from mftrun.errors import Problem
from mftrun.model import Position
from mftrun.yaml_events import LoadError, PositionedReader, one_line

Path = tuple  # tuple[str | int, ...]


@dataclass(slots=True)
class Document:
    """Loaded data plus where each piece sat in the file."""

    file: str
    data: Any
    sha256: str
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    # Values brought in by `include:` (mftrun.include): path prefix -> the file they are
    # written in, so a problem with one points into that file, not the including one.
    origins: dict[Path, str] = field(default_factory=dict)

    def position(self, path: Path = (), *, key: bool = False) -> Position:
        """Position of the value at `path` (or of its key); falls back to the nearest ancestor.

        Nodes reached through a YAML alias have no entry of their own: their
        anchor's ancestor is the best we can point at.
        """
        path = tuple(path)
        file = self.file_of(path)
        if key and path in self.key_positions:
            line, column = self.key_positions[path]
            return Position(file, line, column)
        while True:
            found = self.positions.get(path)
            if found is not None:
                return Position(file, *found)
            if not path:
                return Position(file, 1, 1)
            path = path[:-1]

    def file_of(self, path: Path) -> str:
        """The file the value at `path` is written in (an included one, or this file)."""
        if self.origins:
            for end in range(len(path), 0, -1):
                origin = self.origins.get(path[:end])
                if origin is not None:
                    return origin
        return self.file

    def problem(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False
    ) -> Problem:
        pos = self.position(path, key=key)
        return Problem(pos.file, pos.line, pos.column, message, hint)


def load_text(
    text: str, file: str, sha256: str = "", *, allow_empty: bool = False
) -> tuple[Document | None, list[Problem]]:
    """Parse YAML text; return the document, or None with the problems that stopped it.

    The one loader of the project: pipelines and emulator scenarios alike (an empty
    scenario means the defaults, hence `allow_empty`), so both get the same limits
    on depth, alias expansion and number size, and the same positions."""
    import yaml

    builder = PositionedReader(file)
    try:
        builder.run(text)
    except LoadError as exc:
        return None, [exc.problem]
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_problem(file, exc, text)]
    except yaml.YAMLError as exc:  # ReaderError (bad characters) and friends
        line, column = _reader_position(text, exc)
        character = getattr(exc, "character", None)
        if isinstance(character, str) and len(character) == 1:
            character = ord(character)
        what = (
            f"character {character:#06x} is not allowed in YAML: "
            f"{getattr(exc, 'reason', 'unacceptable character')}"
            if isinstance(character, int)
            else f"not valid YAML: {one_line(exc)}"
        )
        return None, [
            Problem(
                file, line, column, what, "save the file as UTF-8 text without control characters"
            )
        ]
    if builder.empty and not allow_empty:
        return None, [
            Problem(
                file,
                1,
                1,
                "the file is empty",
                "a pipeline needs at least `version: 1` and `steps:`",
            )
        ]
    doc = Document(file, builder.result, sha256, builder.positions, builder.key_positions)
    return doc, builder.problems


def load_bytes(raw: bytes, file: str) -> tuple[Document | None, list[Problem]]:
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start]
        line = prefix.count(b"\n") + 1
        column = exc.start - (prefix.rfind(b"\n") + 1) + 1
        return None, [Problem(file, line, column, "the file is not UTF-8 text", "save it as UTF-8")]
    return load_text(text, file, digest)


def _yaml_problem(file: str, exc: Any, text: str = "") -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    lines = text.splitlines()
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    what = exc.problem or exc.context or "invalid YAML"
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    started = exc.context_mark
    if context and started is not None and started.line + 1 != line:
        context = f" ({exc.context} that starts at line {started.line + 1})"
    hint = "check indentation and quoting near this position; quote values containing ': ' or '#'"
    if "expected a single document" in str(exc):
        hint = "a pipeline file holds one YAML document; remove the extra '---'"
    elif "\t" in source_line[: column + 1] or "tab" in what:
        hint = "YAML does not allow tabs for indentation; use spaces"
    return Problem(file, line, column, f"YAML syntax error: {what}{context}", hint)


def _reader_position(text: str, exc: Any) -> tuple[int, int]:
    pos = getattr(exc, "position", None)
    if not isinstance(pos, int) or pos < 0:
        return 1, 1
    prefix = text[:pos]
    return prefix.count("\n") + 1, pos - (prefix.rfind("\n") + 1) + 1


def top_level(raw: bytes, file: str = "<file>") -> tuple[bool, Any]:
    """(readable, data) of a file through the one loader, for quick looks at what a file is
    (scenario or pipeline, step ids for completion): never `yaml.safe_load`, whose alias
    expansion and number parsing have no limits. Unreadable YAML gives (False, None)."""
    doc, _ = load_bytes(raw, file)
    if doc is None:
        return False, None
    return True, doc.data
