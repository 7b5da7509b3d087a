"""`validate`, `plan`, `graph`, `schema` through `mftrun.cli.main`, plus a property test:
no input a user can write makes mftrun raise or exit with anything but 0 or 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mftrun.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "nightly-exchange.yaml"
INVALID = ROOT / "tests" / "fixtures" / "invalid"


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_ok_and_folders(capsys: Any) -> None:
    code, out, _ = run(capsys, "validate", str(EXAMPLE), str(ROOT / "tests" / "fixtures" / "valid"))
    assert code == 0
    assert out.strip().endswith("files valid")


def test_validate_text_lists_every_problem_positioned(capsys: Any) -> None:
    code, out, _ = run(
        capsys, "validate", str(INVALID / "cycle.yaml"), str(INVALID / "self-need.yaml")
    )
    assert code == 2
    assert f"{INVALID / 'cycle.yaml'}:21:13: dependency cycle: a -> b -> c -> a" in out
    assert "hint: each step in the cycle needs the one before it" in out
    assert f"{INVALID / 'self-need.yaml'}:21:13: step 'a' needs itself" in out
    assert out.strip().splitlines()[-1] == "2 problems in 2 of 2 files"


def test_validate_json(capsys: Any) -> None:
    code, out, _ = run(
        capsys, "validate", "--format", "json", str(INVALID / "unknown-need.yaml"), str(EXAMPLE)
    )
    assert code == 2
    report = json.loads(out)
    assert report["valid"] is False and report["problem_count"] == 1
    by_file = {f["file"]: f for f in report["files"]}
    assert by_file[str(EXAMPLE)]["valid"] is True
    [problem] = by_file[str(INVALID / "unknown-need.yaml")]["problems"]
    assert (problem["line"], problem["column"]) == (23, 13)
    assert problem["message"] == "step 'push' needs unknown step 'pul'"
    assert problem["hint"] == "did you mean 'pull'?"


def test_validate_github_annotations_escape(capsys: Any, tmp_path: Path) -> None:
    odd = tmp_path / "a,b:c.yaml"
    odd.write_bytes((INVALID / "bad-duration.yaml").read_bytes())
    code, out, _ = run(capsys, "validate", "--format", "github", str(odd))
    assert code == 2
    line = out.splitlines()[0]
    assert line.startswith("::error file=")
    assert "a%2Cb%3Ac.yaml,line=21,col=14,title=mftrun validate::" in line
    assert "not a duration" in line and "%0A hint: write e.g." in line


def test_validate_usage_errors(capsys: Any, tmp_path: Path) -> None:
    code, out, err = run(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such file or folder" in err and "Traceback" not in err
    code, _, err = run(capsys, "validate")
    assert code == 2 and "PATH" in err
    code, out, _ = run(capsys, "validate", str(tmp_path))  # a folder without pipelines
    assert code == 2 and "no *.yaml or *.yml files" in out


def test_plan_text_and_json(capsys: Any) -> None:
    code, out, _ = run(capsys, "plan", str(EXAMPLE))
    assert code == 0
    assert "level 3 (2 in parallel)" in out
    assert (
        "order: backups-settled -> pull-orders -> push-invoices -> archive -> notify-failure" in out
    )
    assert "run_if failure" in out and "timeout 2h; poll 2s..30s x1.1" in out
    code, out, _ = run(capsys, "plan", "--format", "json", str(EXAMPLE))
    assert code == 0
    plan = json.loads(out)
    assert plan["levels"] == [
        ["backups-settled"],
        ["pull-orders"],
        ["push-invoices", "archive"],
        ["notify-failure"],
    ]
    steps = {s["id"]: s for s in plan["steps"]}
    assert steps["notify-failure"]["needs"] == ["push-invoices", "archive"]
    assert steps["notify-failure"]["run_if"] == "failure"
    assert steps["backups-settled"]["environment"] == "backup"
    assert steps["backups-settled"]["provider"] == "acronis"
    assert steps["push-invoices"]["timeout"] == 900
    assert steps["pull-orders"]["poll"] == {
        "interval": 2.0,
        "max_interval": 30.0,
        "factor": 1.1,
        "history": 30,
    }
    assert steps["pull-orders"]["dependents"] == ["push-invoices", "archive"]


def test_plan_of_an_invalid_file_exits_2_with_positions(capsys: Any) -> None:
    code, out, err = run(capsys, "plan", str(INVALID / "cycle.yaml"))
    assert code == 2 and "cycle.yaml:21:13: dependency cycle" in err


def test_graph_mermaid_and_dot(capsys: Any) -> None:
    code, out, _ = run(capsys, "graph", str(EXAMPLE))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart TD"
    assert '  s4["notify-failure<br/>start_task @ mft<br/>run_if: failure"]' in lines
    assert "  s1 --> s2" in lines and "  s3 --> s4" in lines
    code, out, _ = run(capsys, "graph", "--format", "dot", str(EXAMPLE))
    assert code == 0
    assert out.startswith('digraph "nightly-exchange" {')
    assert '  "pull-orders" -> "archive";' in out.splitlines()


def test_schema_command_prints_the_packaged_schema(capsys: Any) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert json.loads(out) == json.loads((ROOT / "schemas" / "pipeline.schema.json").read_text())


# -- property test: arbitrary YAML and mutations of the example --------------------------

KEYS = [
    "version",
    "name",
    "environments",
    "defaults",
    "steps",
    "id",
    "start_task",
    "wait_tasks",
    "http",
    "needs",
    "run_if",
    "timeout",
    "poll",
    "retries",
    "outputs",
    "environment",
    "provider",
    "region",
    "base_url",
    "credentials",
    "private_key",
    "client_secret",
    "env",
    "file",
    "state",
    "path",
    "method",
    "headers",
    "until",
    "interval",
    "<<",
    "x-a",
    "mft",
    "backup",
    "task_id",
    "parameters",
    "max_parallel",
    "vars",
]
TEXTS = [
    "",
    "mft",
    "backup",
    "us",
    "acronis",
    "automate-mft",
    "2h",
    "-1s",
    "1h30m",
    "abc",
    "{{ steps.archive.status }}",
    "{{ steps.nope.x }}",
    "{{ 1 +",
    "{% if %}",
    "failure",
    "/v1/x",
    "http://10.0.0.1",
    "https://x",
    "pull-orders",
    "archive",
    "started",
    "gt(1)",
    "Authorization",
    "\t",
    "&a",
    "*a",
    "é",
    "null",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(TEXTS),
    st.text(max_size=8),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), inner, max_size=4),
    ),
    max_leaves=12,
)
EXAMPLE_DATA = yaml.safe_load(EXAMPLE.read_text())


@st.composite
def mutated_example(draw: Any) -> str:
    data = json.loads(json.dumps(EXAMPLE_DATA))
    for _ in range(draw(st.integers(1, 4))):
        node: Any = data
        parent: Any = None
        key: Any = None
        while True:  # walk down to a random node: parent[key]
            if isinstance(node, dict) and node and draw(st.booleans()):
                step: Any = draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node and draw(st.booleans()):
                step = draw(st.integers(0, len(node) - 1))
            else:
                break
            parent, key = node, step
            if not isinstance(node[step], (dict, list)):
                break
            node = node[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if parent is None or action == "add":
            if isinstance(node, dict):
                node[draw(st.sampled_from(KEYS))] = draw(json_like)
            elif isinstance(node, list):
                node.append(draw(json_like))
        elif action == "delete":
            del parent[key]
        else:
            parent[key] = draw(json_like)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@st.composite
def text_edits(draw: Any) -> str:
    """Raw text edits of the example: cut, duplicate or insert characters/lines."""
    text = EXAMPLE.read_text()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["cut", "insert", "dup-line"]))
        if kind == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "insert":
            text = (
                text[:at]
                + draw(
                    st.one_of(
                        st.sampled_from(
                            [
                                ":",
                                "- ",
                                "  ",
                                "\n",
                                "[",
                                "{",
                                "}",
                                "'",
                                '"',
                                "&a ",
                                "*a",
                                "<<: ",
                                "\t",
                                "#",
                                "!!binary ",
                                "---\n",
                                "? ",
                            ]
                        ),
                        st.text(max_size=6),
                    )
                )
                + text[at:]
            )
        else:
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[: i + 1] + [lines[i]] + lines[i + 1 :])
    return text


def assert_exits_cleanly(tmp_path: Path, payload: str | bytes) -> None:
    path = tmp_path / "p.yaml"
    if isinstance(payload, str):
        path.write_text(payload, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(payload)
    for argv in (["validate", str(path)], ["plan", str(path)]):
        code = main(argv)  # any exception escaping here fails the test
        assert code in (0, 2), (argv, payload)


SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("MFTRUN_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(st.one_of(mutated_example(), text_edits()))
def test_mutations_of_the_example_never_crash(tmp_path: Path, text: str) -> None:
    assert_exits_cleanly(tmp_path, text)


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=120),
        json_like.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    )
)
def test_arbitrary_yaml_never_crashes(tmp_path: Path, payload: str | bytes) -> None:
    assert_exits_cleanly(tmp_path, payload)


@pytest.fixture(autouse=True)
def _quiet(capsys: Any) -> None:
    """The property tests print a lot; keep pytest's output small."""
