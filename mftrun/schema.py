"""The packaged pipeline JSON Schema and the mapping of its errors to readable Problems.

Why our own mapping: jsonschema's raw messages print whole instances and, for
`anyOf`/`oneOf`, a wall of alternatives. We keep one message per location
(the most relevant error there, descending into alternatives with
`best_match`), point at the most specific node (the key itself for an unknown
field), and let a subschema carry its own wording in `x-error` / `x-hint`.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from typing import Any

from mftrun.errors import Problem
from mftrun.loader import Document

SCHEMA_RESOURCE = "schemas/pipeline.schema.json"
_RESOURCES = {"pipeline": SCHEMA_RESOURCE, "scenario": "schemas/scenario.schema.json"}


def schema_text(kind: str = "pipeline") -> str:
    """The schema exactly as shipped (found through importlib.resources, so wheels work)."""
    from importlib.resources import files

    return files("mftrun").joinpath(_RESOURCES[kind]).read_text(encoding="utf-8")


@lru_cache(maxsize=3)
def schema(kind: str = "pipeline") -> dict[str, Any]:
    """The schema as checked here: patterns match whole strings (see json_patterns)."""
    from mftrun.json_patterns import whole_match_schema

    if kind == "definitions":  # a shared file `include` brings in: a pipeline's sections
        whole = dict(schema("pipeline"))
        whole.pop("required", None)
        return whole
    loaded: dict[str, Any] = whole_match_schema(json.loads(schema_text(kind)))
    return loaded


@lru_cache(maxsize=3)
def validator(kind: str = "pipeline") -> Any:
    """One compiled validator per schema and process: building it is the expensive part."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(kind))


def check(doc: Document, kind: str = "pipeline") -> list[Problem]:
    """Every schema problem of a loaded document, at most one per location.

    The one schema-check path for pipeline files and emulator scenarios. There is no
    hand-written fast path beside jsonschema any more: jsonschema alone validates the
    10,000-step benchmark file in 1.13 s wall (target < 2 s): bench/bench_validate.py."""
    chosen: dict[tuple[Any, ...], Any] = {}
    extra: list[Problem] = []
    from jsonschema.exceptions import best_match

    for error in validator(kind).iter_errors(doc.data):
        error = _deepest(error, best_match)
        if error.validator == "additionalProperties":
            extra.extend(_unknown_fields(doc, error))
            continue
        path = tuple(error.absolute_path)
        current = chosen.get(path)
        if current is None or _rank(error) < _rank(current):
            chosen[path] = error
    problems = [_problem(doc, path, error) for path, error in chosen.items()]
    return problems + extra


# When one node breaks several rules, the first of these says the most.
_PRIORITY = {
    "type": 0,
    "const": 1,
    "enum": 1,
    "required": 2,
    "minProperties": 3,
    "maxProperties": 3,
    "pattern": 4,
}


def _rank(error: Any) -> int:
    return _PRIORITY.get(error.validator, 9)


def _deepest(error: Any, best_match: Any) -> Any:
    while error.context:
        error = best_match(error.context)
    return error


def label(path: tuple[Any, ...], data: Any = None) -> str:
    """`step 'pull'.timeout` / `environments.mft.region` style name of a location."""
    out = ""
    if (
        len(path) >= 2
        and path[0] == "steps"
        and isinstance(path[1], int)
        and isinstance(data, dict)
        and isinstance(data.get("steps"), list)
    ):
        steps = data["steps"]
        step = steps[path[1]] if path[1] < len(steps) else None
        if isinstance(step, dict) and isinstance(step.get("id"), str):
            if path[2:] == ("id",):
                return "step id"
            rest = label(path[2:])
            return f"step {step['id']!r}" + (f" {rest}" if path[2:] else "")
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(doc: Document, path: tuple[Any, ...], error: Any) -> Problem:
    kind = error.validator
    value = error.instance
    sub = error.schema if isinstance(error.schema, dict) else {}
    name = label(path, doc.data)
    own_message = sub.get("x-error")
    if isinstance(own_message, dict):
        own_message = own_message.get(kind)
    hint = sub.get("x-hint")
    if kind == "required":
        missing = [name for name in error.validator_value if name not in value]
        names = ", ".join(repr(name) for name in missing)
        noun = "field" if len(missing) == 1 else "fields"
        where = "the document" if not path else name
        message = f"{where} is missing required {noun} {names}"
        props = sub.get("properties", {})
        first = props.get(missing[0], {}) if missing else {}
        hint = (
            hint
            or (first.get("description") if isinstance(first, dict) else None)
            or f"add {missing[0]}: here"
        )
        return doc.problem(path, message, hint)
    if own_message and kind in {
        "type",
        "pattern",
        "const",
        "minProperties",
        "maxProperties",
        "propertyNames",
        "enum",
    }:
        if own_message.startswith(("is ", "must ")):
            message = (
                f"{name} {own_message}: {_short(value)}"
                if kind not in {"type", "minProperties", "maxProperties"}
                else f"{name} {own_message}"
            )
        else:
            message = f"{name}: {own_message}"
        return doc.problem(path, message, hint)
    if kind == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
        message = f"{name} must be {wanted}, not {_type_of(value)}"
        if expected == ["array"] and isinstance(value, (str, int, float)):
            hint = hint or f"write a list: [{value}]"
        elif "string" in expected and isinstance(value, int) and not isinstance(value, bool):
            # Acronis ids are 64-bit: YAML reads them as numbers, the API wants the digits.
            hint = f"quote it: '{value}'"
    elif kind == "enum":
        allowed = [str(v) for v in error.validator_value]
        seen: list[str] = []
        for item in allowed:  # `GET`/`get`: show each spelling once
            if item.lower() not in {s.lower() for s in seen}:
                seen.append(item)
        message = f"{name} is {_short(value)}, expected one of: {', '.join(seen)}"
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = hint or (f"did you mean {close[0]!r}?" if close else None)
    elif kind == "const":
        message = f"{name} must be {_short(error.validator_value)}, not {_short(value)}"
    elif kind in {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}:
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[
            kind
        ]
        message = f"{name} must be {op} {error.validator_value}, not {value}"
    elif kind == "minItems":
        message = (
            f"{name} must not be empty"
            if error.validator_value == 1
            else f"{name} needs at least {error.validator_value} items"
        )
    elif kind in {"maxItems", "maxProperties"} and isinstance(value, (list, dict)):
        noun = "items" if kind == "maxItems" else "entries"
        message = f"{name} has {len(value):,} {noun}; at most {error.validator_value:,}"
        hint = None  # the field's own hint is about what it holds, not its size
    elif kind == "minLength":
        message = f"{name} must not be empty"
    elif kind == "uniqueItems":
        message = f"{name} lists the same value twice"
    elif kind == "pattern":
        from mftrun.json_patterns import shown_pattern

        message = f"{name} {_short(value)} does not match {shown_pattern(error.validator_value)}"
    elif kind == "minProperties":
        message = f"{name} has the wrong number of fields"
    else:
        message = f"{name}: {error.message}"
    return doc.problem(path, message, hint)


def _unknown_fields(doc: Document, error: Any) -> list[Problem]:
    """One problem per unknown key, pointing at the key itself."""
    path = tuple(error.absolute_path)
    sub = error.schema if isinstance(error.schema, dict) else {}
    known = list(sub.get("properties", {}))
    patterns = [re.compile(p) for p in sub.get("patternProperties", {})]
    where = "at the top level" if not path else f"in {label(path, doc.data)}"
    problems = []
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in instance:
        if key in known or any(p.search(key) for p in patterns):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"allowed here: {', '.join(known)}"
            if known
            else None
        )
        problems.append(
            doc.problem(path + (key,), f"unknown field {key!r} {where}", hint, key=True)
        )
    return problems
