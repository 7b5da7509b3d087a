"""The packaged JSON Schema: well-formed, documented, strict; errors mapped one per location;
the fast path never accepts what jsonschema rejects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from mftrun import schema
from mftrun.loader import load_text

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "nightly-exchange.yaml"


def subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if isinstance(value, dict):
                if key in ("properties", "$defs", "patternProperties"):
                    for name, sub in value.items():
                        yield from subschemas(sub, f"{path}/{key}/{name}")
                else:
                    yield from subschemas(value, f"{path}/{key}")
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    yield from subschemas(item, f"{path}/{key}/{i}")


def test_schema_is_valid_draft_2020_12_with_an_id() -> None:
    doc = json.loads(schema.schema_text())
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].endswith("pipeline.schema.json")


def test_every_property_has_a_description_and_objects_are_closed() -> None:
    for path, node in subschemas(schema.schema()):
        if "/allOf/" in path:
            continue  # if/then conditions, not declarations
        for name, prop in node.get("properties", {}).items():
            assert isinstance(prop, dict) and prop.get("description"), f"{path}/{name}"
        if "properties" in node:
            assert node.get("additionalProperties") is False, path


def test_schema_ships_in_the_package_and_the_repo_link_points_at_it() -> None:
    from importlib.resources import files

    packaged = files("mftrun").joinpath("schemas/pipeline.schema.json").read_text()
    assert packaged == schema.schema_text()
    assert (ROOT / "schemas" / "pipeline.schema.json").read_text() == packaged


def check(text: str) -> list[tuple[int, int, str]]:
    doc, problems = load_text(text, "f.yaml")
    assert doc is not None and not problems
    return [(p.line, p.column, p.message) for p in schema.check(doc)]


def test_unknown_field_points_at_the_key_with_a_suggestion() -> None:
    text = EXAMPLE.read_text().replace("    timeout: 2h\n", "    timout: 2h\n")
    doc, _ = load_text(text, "f.yaml")
    problems = schema.check(doc)
    assert [(p.line, p.column, p.message) for p in problems] == [
        (31, 5, "unknown field 'timout' in step 'backups-settled'")
    ]
    assert problems[0].hint == "did you mean 'timeout'?"


def test_one_readable_message_per_location() -> None:
    text = EXAMPLE.read_text().replace("state: [started, paused]", "state: {a: 1}")
    text = text.replace("provider: acronis", "provider: 7")
    got = check(text)
    assert got == [
        (
            15,
            15,
            "environments.backup.provider is 7, expected one of: automate-mft, acronis, webhook",
        ),
        (
            30,
            14,
            "step 'backups-settled' wait_tasks.state must be a string or a list, not a mapping",
        ),
    ]
    assert all("{" not in m or "wait_tasks" in m for _, _, m in got)  # no instance dumps


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2),
    st.sampled_from(
        [
            "",
            "x",
            "1m",
            "5 min",
            "/p",
            "us",
            "acronis",
            "GET",
            "started",
            "{{ steps.a.status }}",
            "a b",
            "gt(1)",
        ]
    ),
)
KEYS = [
    "id",
    "start_task",
    "wait_tasks",
    "http",
    "needs",
    "timeout",
    "poll",
    "retries",
    "state",
    "path",
    "method",
    "interval",
    "attempts",
    "env",
    "file",
    "provider",
    "region",
    "credentials",
    "client_secret",
    "x-extra",
    "bogus",
    "version",
    "steps",
    "expect",
]


def mutate(data: Any, draw: Any) -> Any:
    """Replace a random node of the example with random JSON-like data."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data)))
        return {**data, key: mutate(data[key], draw)}
    if isinstance(data, list) and data and draw(st.booleans()):
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + [mutate(data[i], draw)] + data[i + 1 :]
    return draw(
        st.recursive(
            scalars,
            lambda inner: st.one_of(
                st.lists(inner, max_size=3),
                st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
            ),
            max_leaves=6,
        )
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mapping_never_hides_or_invents_a_schema_error(data: Any) -> None:
    """One schema path: check() reports problems exactly when jsonschema finds the document
    invalid, and every problem has a real position in the file."""
    doc, _ = load_text(EXAMPLE.read_text(), "f.yaml")
    value = mutate(doc.data, data.draw)
    mutated = type(doc)(doc.file, value, "", doc.positions, doc.key_positions)
    problems = schema.check(mutated)
    assert bool(problems) == (not schema.validator().is_valid(value))
    assert all(p.line >= 1 and p.column >= 1 and p.message for p in problems)


@pytest.mark.parametrize(
    "snippet, expected",
    [
        ("version: 1\nsteps: []\n", "steps must not be empty"),
        ("version: '1'\nsteps: [{id: a}]\n", "version must be 1: '1'"),
        (
            "version: 1\nsteps: [{id: a, needs: [b, b]}]\n",
            "step 'a' needs lists the same value twice",
        ),
        (
            "version: 1\nsteps: [{id: a, retries: {attempts: -1}}]\n",
            "step 'a' retries.attempts must be >= 0, not -1",
        ),
    ],
)
def test_messages(snippet: str, expected: str) -> None:
    assert expected in [m for _, _, m in check(snippet)]
