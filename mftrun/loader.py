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
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
_AS_TEXT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_MAX_NODES = 2_000_000  # alias bombs ("billion laughs") stop here


@dataclass(slots=True)
class Document:
    """Loaded data plus where each piece sat in the file."""

    file: str
    data: Any
    sha256: str
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path = (), *, key: bool = False) -> Position:
        """Position of the value at `path` (or of its key); falls back to the nearest ancestor.

        Nodes reached through a YAML alias have no entry of their own: their
        anchor's ancestor is the best we can point at.
        """
        path = tuple(path)
        if key and path in self.key_positions:
            line, column = self.key_positions[path]
            return Position(self.file, line, column)
        while True:
            found = self.positions.get(path)
            if found is not None:
                return Position(self.file, *found)
            if not path:
                return Position(self.file, 1, 1)
            path = path[:-1]

    def problem(self, path: Path, message: str, hint: str | None = None, *,
                key: bool = False) -> Problem:
        pos = self.position(path, key=key)
        return Problem(pos.file, pos.line, pos.column, message, hint)


class _LoadError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def load_text(text: str, file: str, sha256: str = "") -> tuple[Document | None, list[Problem]]:
    """Parse YAML text; return the document, or None with the problems that stopped it."""
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader_cls)
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_problem(file, exc)]
    except yaml.YAMLError as exc:  # ReaderError (bad characters) and friends
        line, column = _reader_position(text, exc)
        return None, [Problem(file, line, column, f"not valid YAML: {_one_line(exc)}",
                              "save the file as UTF-8 text without control characters")]
    except RecursionError:
        return None, [Problem(file, 1, 1, "YAML nesting is too deep",
                              "flatten the document")]
    if node is None:
        return None, [Problem(file, 1, 1, "the file is empty",
                              "a pipeline needs at least `version: 1` and `steps:`")]
    walker = _Walker(file)
    try:
        data = walker.walk(node, ())
    except _LoadError as exc:
        return None, [exc.problem]
    except RecursionError:
        return None, [Problem(file, 1, 1, "YAML nesting is too deep", "flatten the document")]
    problems = walker.problems
    doc = Document(file, data, sha256, walker.positions, walker.key_positions)
    return doc, problems


def load_bytes(raw: bytes, file: str) -> tuple[Document | None, list[Problem]]:
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start]
        line = prefix.count(b"\n") + 1
        column = exc.start - (prefix.rfind(b"\n") + 1) + 1
        return None, [Problem(file, line, column, "the file is not UTF-8 text",
                              "save it as UTF-8")]
    return load_text(text, file, digest)


def _yaml_problem(file: str, exc: Any) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = exc.problem or exc.context or "invalid YAML"
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    hint = "check indentation and quoting near this position; quote values containing ': ' or '#'"
    if "expected a single document" in str(exc):
        hint = "a pipeline file holds one YAML document; remove the extra '---'"
    elif "\t" in what or "tab" in what:
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


class _Walker:
    """Turns a composed node tree into dicts/lists/scalars, recording positions."""

    def __init__(self, file: str) -> None:
        import yaml

        self.file = file
        self.positions: dict[Path, tuple[int, int]] = {}
        self.key_positions: dict[Path, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._nodes = 0
        self._active: set[int] = set()  # recursion guard for self-referencing aliases
        self._yaml = yaml

    def _fail(self, node: Any, message: str, hint: str | None = None) -> _LoadError:
        mark = node.start_mark
        return _LoadError(Problem(self.file, mark.line + 1, mark.column + 1, message, hint))

    def walk(self, node: Any, path: Path) -> Any:
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise self._fail(node, "the document expands to too many nodes (alias bomb?)")
        mark = node.start_mark
        if path not in self.positions:
            self.positions[path] = (mark.line + 1, mark.column + 1)
        yaml = self._yaml
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if id(node) in self._active:
            raise self._fail(node, "a YAML alias refers to the node that contains it",
                             "remove the recursive alias")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, path + (i,)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: Any) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag in _SAFE_SCALARS:
            return self._constructor.construct_object(node, deep=True)
        if tag in _AS_TEXT:
            return node.value  # keep dates as the text written; JSON has no date type
        raise self._fail(node, f"unsupported YAML tag {tag!r}",
                         "remove the tag; pipeline files use plain YAML values")

    def _key(self, node: Any) -> str:
        if not isinstance(node, self._yaml.ScalarNode):
            raise self._fail(node, "a mapping key must be a plain value, not a list or mapping")
        # Keys stay as written: `on:` and `yes:` are names here, not booleans.
        return node.value

    def _mapping(self, node: Any, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: set[str] = set()
        merged: list[tuple[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.append((key_node, value_node))
                continue
            key = self._key(key_node)
            if key in explicit:
                mark = key_node.start_mark
                first = self.key_positions.get(path + (key,))
                where = f" (first at line {first[0]})" if first else ""
                self.problems.append(Problem(
                    self.file, mark.line + 1, mark.column + 1,
                    f"duplicate key {key!r}{where}",
                    "YAML keeps only one of them; remove or rename the other"))
                continue
            explicit.add(key)
            kmark = key_node.start_mark
            self.key_positions[path + (key,)] = (kmark.line + 1, kmark.column + 1)
            result[key] = self.walk(value_node, path + (key,))
        for key_node, value_node in merged:  # `<<: *anchor`: explicit keys win
            sources = value_node.value if isinstance(value_node, self._yaml.SequenceNode) \
                else [value_node]
            for source in sources:
                if not isinstance(source, self._yaml.MappingNode):
                    raise self._fail(source, "'<<' merges only mappings")
                value = self.walk(source, path)
                for key, item in value.items():
                    result.setdefault(key, item)
        return result
