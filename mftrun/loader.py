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

Path = tuple  # tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_SAFE_SCALARS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
_AS_TEXT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
# One limit for every PyYAML: 6.0.4's C parser stops at its own depth, 6.0.3 and the
# pure-Python parser do not (and the latter is quadratic in flow depth).
MAX_DEPTH = 200
_MAX_NODES = 2_000_000  # alias bombs ("billion laughs") stop here
_MAX_INT_DIGITS = 4300  # Python's own limit for decimal text (sys.get_int_max_str_digits)
_MAX_INT_BITS = 14_285  # the same size in bits: (10**4300).bit_length()


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


class _LoadError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def load_text(
    text: str, file: str, sha256: str = "", *, allow_empty: bool = False
) -> tuple[Document | None, list[Problem]]:
    """Parse YAML text; return the document, or None with the problems that stopped it.

    The one loader of the project: pipelines and emulator scenarios alike (an empty
    scenario means the defaults, hence `allow_empty`), so both get the same limits
    on depth, alias expansion and number size, and the same positions."""
    import yaml

    builder = _Builder(file)
    try:
        builder.run(text)
    except _LoadError as exc:
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
            else f"not valid YAML: {_one_line(exc)}"
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


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


class _Builder:
    """Builds plain data straight from parser events, with positions.

    Why events and not `yaml.compose`: composing builds a Python node object per
    value and runs the resolver in Python; from libyaml's events we are about 5x
    faster on big files (10,000 steps). An explicit stack means no recursion
    limit; aliases share the anchored object, and the expanded size is counted
    so an alias bomb is refused instead of exhausting memory later.
    """

    def __init__(self, file: str) -> None:
        import yaml
        from yaml.constructor import SafeConstructor
        from yaml.resolver import Resolver

        self.file = file
        self.positions: dict[Path, tuple[int, int]] = {}
        self.key_positions: dict[Path, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.result: Any = None
        self.empty = True
        self._yaml = yaml
        self._resolvers = Resolver.yaml_implicit_resolvers
        self._constructor = SafeConstructor()
        self._anchors: dict[str, tuple[Any, int]] = {}  # name -> (value, expanded size)

    def _fail(self, mark: Any, message: str, hint: str | None = None) -> _LoadError:
        return _LoadError(Problem(self.file, mark.line + 1, mark.column + 1, message, hint))

    def run(self, text: str) -> None:
        yaml = self._yaml
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            self._events(loader)
        finally:
            loader.dispose()

    def _events(self, loader: Any) -> None:
        yaml = self._yaml
        Scalar, Alias = yaml.ScalarEvent, yaml.AliasEvent
        MapStart, SeqStart = yaml.MappingStartEvent, yaml.SequenceStartEvent
        MapEnd, SeqEnd = yaml.MappingEndEvent, yaml.SequenceEndEvent
        DocStart = yaml.DocumentStartEvent
        positions = self.positions
        # A frame: [container, path, size, anchor, pending key or None, merges, start mark]
        stack: list[list[Any]] = []
        documents = 0
        get_event, check_event = loader.get_event, loader.check_event
        while check_event():
            event = get_event()
            cls = event.__class__
            if cls is DocStart:
                documents += 1
                if documents > 1:
                    raise self._fail(
                        event.start_mark,
                        "a pipeline file holds one YAML document",
                        "remove the extra '---' and what follows",
                    )
                continue
            if cls is MapEnd or cls is SeqEnd:
                frame = stack.pop()
                value, size = frame[0], frame[2]
                if cls is MapEnd and frame[5]:
                    size += self._merge(value, frame[5])
                if size > _MAX_NODES:
                    raise self._fail(
                        frame[6],
                        "the document expands to too many values (nested aliases?)",
                        "write the values out",
                    )
                if frame[3] is not None:
                    self._anchors[frame[3]] = (value, size)
                self._add(stack, value, size, frame[6])
                continue
            if stack and stack[-1][4] is None and isinstance(stack[-1][0], dict):
                self._key(stack[-1], event)
                continue
            if cls is Scalar:
                value = self._scalar(event)
                if event.anchor is not None:
                    self._anchors[event.anchor] = (value, 1)
                self._add(stack, value, 1, event.start_mark)
            elif cls is Alias:
                found = self._anchors.get(event.anchor)
                if found is None:
                    open_anchors = {frame[3] for frame in stack}
                    message = (
                        f"alias *{event.anchor} is used inside its own anchor"
                        if event.anchor in open_anchors
                        else f"unknown alias *{event.anchor}"
                    )
                    raise self._fail(event.start_mark, message, "define &name before using *name")
                self._add(stack, found[0], found[1], event.start_mark)
            elif cls is MapStart or cls is SeqStart:
                tag = event.tag
                if tag is not None and tag not in ("!", _MAP_TAG, _SEQ_TAG):
                    raise self._fail(
                        event.start_mark,
                        f"unsupported YAML tag {tag!r}",
                        "remove the tag; pipeline files use plain YAML values",
                    )
                path = self._path_of_next(stack)
                mark = event.start_mark
                positions[path] = (mark.line + 1, mark.column + 1)
                if len(stack) >= MAX_DEPTH:
                    raise self._fail(
                        mark,
                        f"the document nests deeper than {MAX_DEPTH} levels",
                        "a pipeline needs a few levels; flatten the value",
                    )
                container: Any = {} if cls is MapStart else []
                stack.append([container, path, 1, event.anchor, None, [], mark])

    def _path_of_next(self, stack: list[list[Any]]) -> Path:
        if not stack:
            return ()
        frame = stack[-1]
        container = frame[0]
        if isinstance(container, list):
            return frame[1] + (len(container),)
        key = frame[4]
        return frame[1] + (key,) if isinstance(key, str) else frame[1] + ("<<",)

    def _add(self, stack: list[list[Any]], value: Any, size: int, mark: Any) -> None:
        if not stack:
            self.result = value
            self.empty = value is None
            self.positions.setdefault((), (mark.line + 1, mark.column + 1))
            return
        frame = stack[-1]
        container = frame[0]
        frame[2] += size
        if isinstance(container, list):
            path = frame[1] + (len(container),)
            container.append(value)
        else:
            key = frame[4]
            frame[4] = None
            if key is _MERGE_KEY:
                frame[5].append((value, mark))
                return
            if key is _DUPLICATE:
                return  # reported at the key; the first value stays
            path = frame[1] + (key,)
            container[key] = value
        if path not in self.positions:
            self.positions[path] = (mark.line + 1, mark.column + 1)

    def _key(self, frame: list[Any], event: Any) -> None:
        yaml = self._yaml
        mark = event.start_mark
        if isinstance(event, yaml.ScalarEvent):
            if event.value == "<<" and event.implicit[0] and event.tag is None:
                frame[4] = _MERGE_KEY
                return
            key = event.value  # as written: `on:` and `yes:` are names here, not booleans
        elif isinstance(event, yaml.AliasEvent) and isinstance(
            self._anchors.get(event.anchor, (None,))[0], str
        ):
            key = self._anchors[event.anchor][0]
        else:
            raise self._fail(mark, "a mapping key must be a plain value, not a list or mapping")
        path = frame[1] + (key,)
        if key in frame[0]:
            first = self.key_positions.get(path)
            where = f" (first at line {first[0]})" if first else ""
            self.problems.append(
                Problem(
                    self.file,
                    mark.line + 1,
                    mark.column + 1,
                    f"duplicate key {key!r}{where}",
                    "YAML would keep only the last one; remove or rename the other",
                )
            )
            frame[4] = _DUPLICATE
            return
        self.key_positions[path] = (mark.line + 1, mark.column + 1)
        frame[4] = key

    def _merge(self, target: dict[str, Any], merges: list[tuple[Any, Any]]) -> int:
        """`<<: *anchor` or `<<: [*a, *b]`: keys written explicitly win, earlier sources win."""
        size = 0
        for value, mark in merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    raise self._fail(mark, "'<<' merges only mappings")
                for key, item in source.items():
                    if key not in target:
                        target[key] = item
                        size += 1
        return size

    def _scalar(self, event: Any) -> Any:
        tag = event.tag
        value = event.value
        if tag is None:
            if not event.implicit[0]:
                return value  # quoted: always a string
            for res_tag, regexp in self._resolvers.get(value[:1], ()):
                if regexp.match(value):
                    tag = res_tag
                    break
            else:
                return value
        elif tag == "!" or tag == _STR:
            return value
        if tag in _SAFE_SCALARS:
            from yaml.nodes import ScalarNode

            node = ScalarNode(tag, value, event.start_mark, event.end_mark)
            try:
                value_read = self._constructor.yaml_constructors[tag](self._constructor, node)
                if isinstance(value_read, int) and value_read.bit_length() > _MAX_INT_BITS:
                    # hex, octal and binary have no digit limit in int(): the same bound
                    raise ValueError(f"more than {_MAX_INT_DIGITS} digits")
                return value_read
            except ValueError as exc:
                # int() refuses more than sys.get_int_max_str_digits() (4,300) digits
                # rather than spend quadratic time: a refusal at its position, not a crash
                import sys

                limit = sys.get_int_max_str_digits()
                shown = value if len(value) <= 24 else value[:20] + "..."
                reason = (
                    f"it has {len(value)} characters, more than the {limit} digits read"
                    if len(value) > limit
                    else _one_line(exc)
                )
                raise self._fail(
                    event.start_mark,
                    f"the number {shown} cannot be read: {reason}",
                    "quote it if it is an identifier; no setting needs a number that long",
                ) from None
        if tag in _AS_TEXT or tag == _MERGE:
            return value  # dates stay as written: JSON has no date type
        raise self._fail(
            event.start_mark,
            f"unsupported YAML tag {tag!r}",
            "remove the tag; pipeline files use plain YAML values",
        )


_MERGE_KEY = object()
_DUPLICATE = object()
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


def top_level(raw: bytes, file: str = "<file>") -> tuple[bool, Any]:
    """(readable, data) of a file through the one loader, for quick looks at what a file is
    (scenario or pipeline, step ids for completion): never `yaml.safe_load`, whose alias
    expansion and number parsing have no limits. Unreadable YAML gives (False, None)."""
    doc, _ = load_bytes(raw, file)
    if doc is None:
        return False, None
    return True, doc.data
