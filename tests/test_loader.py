"""YAML loading: positions for every node, duplicate keys, YAML errors as Problems."""

from __future__ import annotations

import pytest
import yaml

from mftrun.loader import load_bytes, load_text


def load(text: str):
    doc, problems = load_text(text, "f.yaml")
    return doc, [(p.line, p.column, p.message) for p in problems]


def test_values_and_keys_keep_line_and_column() -> None:
    doc, problems = load("a: 1\nsteps:\n  - id: x\n    needs: [p, q]\n")
    assert problems == []
    assert doc.data == {"a": 1, "steps": [{"id": "x", "needs": ["p", "q"]}]}
    pos = doc.position
    assert (pos(("a",)).line, pos(("a",)).column) == (1, 4)
    assert (pos(("steps", 0, "needs", 1)).line, pos(("steps", 0, "needs", 1)).column) == (4, 16)
    key = pos(("steps", 0, "needs"), key=True)
    assert (key.line, key.column) == (4, 5)
    assert pos(("steps", 0)).line == 3
    # unknown paths fall back to the nearest ancestor
    assert pos(("steps", 0, "nope", 3)).line == 3


def test_duplicate_keys_are_rejected_at_the_second_key() -> None:
    doc, problems = load("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert problems == [
        (4, 3, "duplicate key 'c' (first at line 3)"),
        (5, 1, "duplicate key 'a' (first at line 1)"),
    ]
    assert doc.data == {"a": 1, "b": {"c": 1}}


def test_keys_stay_as_written_and_quoted_values_stay_strings() -> None:
    doc, _ = load("on: yes\n'1': '2'\nn: 012\nd: 2024-01-01\nf: 1.5\nz: ~\ns: !!str 5\n")
    assert doc.data == {
        "on": True,
        "1": "2",
        "n": 10,
        "d": "2024-01-01",
        "f": 1.5,
        "z": None,
        "s": "5",
    }


def test_anchors_aliases_and_merge_keys() -> None:
    doc, problems = load(
        "base: &b {x: 1, y: 2}\nother: &o {w: 0}\n"
        "d:\n  <<: [*b, *o]\n  y: 3\nl: &l [1]\nm: [*l, *l]\n"
    )
    assert problems == []
    assert doc.data["d"] == {"y": 3, "x": 1, "w": 0}
    assert doc.data["m"] == [[1], [1]]


def test_yaml_syntax_errors_are_positioned() -> None:
    _, problems = load("a: [1, 2\nb: 3\n")
    assert len(problems) == 1
    line, column, message = problems[0]
    assert (line, column) == (2, 2)
    assert message.startswith("YAML syntax error: did not find expected ',' or ']'")
    assert "starts at line 1" in message
    _, problems = load("a: b: c\n")
    assert problems == [(1, 5, "YAML syntax error: mapping values are not allowed in this context")]


def test_tabs_get_a_hint() -> None:
    doc, problems = load_text("a:\n\t- b\n", "f.yaml")
    assert doc is None and problems[0].line == 2
    assert "tabs" in problems[0].hint


def test_structural_refusals() -> None:
    assert load("")[1] == [(1, 1, "the file is empty")]
    assert load("# only a comment\n")[1] == [(1, 1, "the file is empty")]
    assert load("a: 1\n---\nb: 2\n")[1] == [(2, 1, "a pipeline file holds one YAML document")]
    assert load("a: !python/object 1\n")[1] == [(1, 4, "unsupported YAML tag '!python/object'")]
    assert load("? [a]\n: 1\n")[1] == [
        (1, 3, "a mapping key must be a plain value, not a list or mapping")
    ]
    assert load("a: *missing\n")[1] == [(1, 4, "unknown alias *missing")]
    assert load("- &a [*a]\n")[1] == [(1, 7, "alias *a is used inside its own anchor")]
    assert load("a: \x07\n")[1] == [
        (1, 4, "character 0x0007 is not allowed in YAML: control characters are not allowed")
    ]


def test_alias_bomb_is_refused_without_expanding() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    doc, problems = load("\n".join(lines) + "\n")
    assert doc is None
    assert "too many values" in problems[0][2]


@pytest.mark.parametrize("parser", ["C", "pure-Python"])
@pytest.mark.parametrize("depth", [10, 150, 5000, 50_000])
@pytest.mark.parametrize("shape", ["flow", "block"])
def test_deep_nesting_parses_or_is_a_positioned_error(
    parser: str, depth: int, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a crash: a parse, or a YAML error at a real position, whatever PyYAML >= 6 allows.

    PyYAML 6.0.4's C parser refuses nesting beyond a fixed depth while 6.0.3 and the
    pure-Python parser accept it; mftrun owes the user the same kind of answer either way.
    """
    if parser == "pure-Python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    elif not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML built without libyaml")
    if shape == "block":
        depth = min(depth, 1000)  # block indentation grows quadratically with depth
    if shape == "flow":
        text = "a: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "a:\n" + "".join("  " * i + "- \n" for i in range(1, depth + 1))
    doc, problems = load(text)
    if doc is not None:
        assert problems == []
        node, levels = doc.data["a"], 0
        while isinstance(node, list):
            node, levels = (node[0] if node else None), levels + 1
        assert levels == depth <= 150
        return
    assert len(problems) == 1
    line, column, message = problems[0]
    lines = text.splitlines()
    assert 1 <= line <= len(lines) + 1 and column >= 1
    assert depth >= 1000
    assert message.startswith(("YAML syntax error", "the document nests deeper than"))


def test_bytes_hash_bom_and_encoding() -> None:
    doc, problems = load_bytes("\ufeffname: café\n".encode(), "f.yaml")
    assert problems == [] and doc.data == {"name": "café"}
    import hashlib

    assert doc.sha256 == hashlib.sha256("\ufeffname: café\n".encode()).hexdigest()
    doc, problems = load_bytes(b"a: 1\nb: \xff\n", "f.yaml")
    assert doc is None
    assert [(p.line, p.column) for p in problems] == [(2, 4)]
