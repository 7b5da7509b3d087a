"""Whole-string semantics for the `pattern`s of the packaged JSON Schemas.

Why: the schemas are written for every JSON Schema engine (editors use ECMA-262
regular expressions, where `$` without the multiline flag matches only at the very
end). Python's `re.search` lets `$` match just before a trailing newline as well,
so `^[A-Za-z0-9_-]+$` accepted the step id `"pull\\n"`. The shipped files stay
portable; at load time each end anchor `$` becomes `\\Z`, which in Python matches
only at the end of the string. One rewrite, used for the pipeline and the scenario
schema, for every jsonschema check.
"""

from __future__ import annotations

import re
from typing import Any

# `$` that is not escaped (an even number of backslashes before it) and is the
# last character of the pattern or of an alternative/group: the end anchors.
_END_ANCHOR = re.compile(r"(?<!\\)((?:\\\\)*)\$(?=$|[|)])")


def python_pattern(pattern: str) -> str:
    """The pattern with every end anchor `$` as `\\Z` (same meaning as in ECMA-262)."""
    return _END_ANCHOR.sub(lambda m: m.group(1) + r"\Z", pattern)


def shown_pattern(pattern: str) -> str:
    """The pattern as written in the schema file, for messages."""
    return pattern.replace(r"\Z", "$")


def whole_match_schema(node: Any) -> Any:
    """A copy of a JSON Schema with `pattern` values and `patternProperties` keys rewritten."""
    if isinstance(node, list):
        return [whole_match_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            out[key] = python_pattern(value)
        elif key == "patternProperties" and isinstance(value, dict):
            out[key] = {python_pattern(k): whole_match_schema(v) for k, v in value.items()}
        elif key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {k: whole_match_schema(v) for k, v in value.items()}
        else:
            out[key] = whole_match_schema(value)
    return out
