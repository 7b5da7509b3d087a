"""Positioned problems for one document: the helpers every builder stage shares.

Each check appends a `Problem` at a path of the document and carries on, so one run
reports everything; the stages (environments, steps, the graph) share one list.
"""

from __future__ import annotations

import difflib
from typing import Any

from mftrun.durations import parse_duration
from mftrun.errors import Problem
from mftrun.loader import Document
from mftrun.model import Position

Path = tuple[Any, ...]


class Checks:
    def __init__(self, doc: Document, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems

    def problem(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        self.problems.append(self.doc.problem(path, message, hint, key=key))

    def pos(self, path: Path, *, key: bool = False) -> Position:
        return self.doc.position(path, key=key)

    def duration(self, value: Any, path: Path) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return None


def suggest(word: str, choices: Any) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None
