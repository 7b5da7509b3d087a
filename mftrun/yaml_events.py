"""The YAML event reader behind `mftrun.loader`: values with the position of every node,
under the project's limits.

Why events and not `yaml.safe_load`: the loader needs every node's line and column, must
refuse duplicate keys instead of keeping the last, reads `on:`/`yes:` keys as text, and
must stop alias bombs, deep nesting and huge numbers itself (one limit for every PyYAML).
"""

from __future__ import annotations

from typing import Any

from mftrun.errors import Problem

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


class LoadError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class PositionedReader:
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

    def _fail(self, mark: Any, message: str, hint: str | None = None) -> LoadError:
        return LoadError(Problem(self.file, mark.line + 1, mark.column + 1, message, hint))

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
                    else one_line(exc)
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


def one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
