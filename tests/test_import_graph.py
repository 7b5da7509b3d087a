"""The import graph stays one-way (issue 12): data flows YAML -> document -> schema -> model
-> plan -> executor -> events -> state store and reporters, and the lower layers never
reach up. Read statically with ast, lazy (function-level) imports included, so a
shortcut taken inside a function is caught too."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mftrun"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mftrun"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("mftrun"):
                found.add(base)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph(*, top_level_only: bool) -> dict[str, set[str]]:
    return {
        name: {i for i in imports_of(path, top_level_only=top_level_only) if i != name}
        for name, path in MODULES.items()
    }


def test_module_level_imports_have_no_cycle() -> None:
    """Lazy imports may point anywhere legal below; what runs at import time never loops."""
    sorter = graphlib.TopologicalSorter(
        {k: {d for d in v if d in MODULES} for k, v in graph(top_level_only=True).items()}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:  # pragma: no cover - the message is the point
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


# (layer, what it must never import, even lazily)
RULES = [
    ("mftrun.http", ("mftrun.providers", "mftrun.executor", "mftrun.run", "mftrun.commands",
                     "mftrun.reports", "mftrun.state", "mftrun.emulator", "mftrun.build")),
    ("mftrun.emulator", ("mftrun.http", "mftrun.providers", "mftrun.executor", "mftrun.run",
                         "mftrun.commands", "mftrun.reports", "mftrun.state")),
    # state reads report.json (--resume-from) and scrubs outputs as reports do
    ("mftrun.state", ("mftrun.executor", "mftrun.commands", "mftrun.providers", "mftrun.http",
                      "mftrun.emulator")),
    ("mftrun.reports", ("mftrun.executor", "mftrun.run", "mftrun.commands", "mftrun.providers",
                        "mftrun.http", "mftrun.emulator")),
    ("mftrun.providers", ("mftrun.executor", "mftrun.run", "mftrun.commands", "mftrun.reports",
                          "mftrun.state", "mftrun.emulator")),
    ("mftrun.loader", ("mftrun.schema", "mftrun.build", "mftrun.plan", "mftrun.executor")),
    ("mftrun.model", ("mftrun.build", "mftrun.plan", "mftrun.executor", "mftrun.run")),
    ("mftrun.plan", ("mftrun.executor", "mftrun.run", "mftrun.providers", "mftrun.http")),
    ("mftrun.executor", ("mftrun.run", "mftrun.commands", "mftrun.reports", "mftrun.emulator")),
    # an action parses and describes; the platform I/O is the providers' (issue 12 s1)
    ("mftrun.actions", ("mftrun.providers", "mftrun.executor", "mftrun.run", "mftrun.commands",
                        "mftrun.reports", "mftrun.state", "mftrun.emulator", "mftrun.build")),
    ("mftrun.inert", ("mftrun",)),  # the one place that makes text inert depends on nothing
]  # fmt: skip


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_a_layer_never_reaches_up(layer: str, forbidden: tuple[str, ...]) -> None:
    wrong = []
    for name, deps in graph(top_level_only=False).items():
        if name != layer and not name.startswith(layer + "."):
            continue
        for dep in deps:
            if dep == layer or dep.startswith(layer + "."):
                continue
            if any(dep == f or dep.startswith(f + ".") for f in forbidden):
                wrong.append(f"{name} imports {dep}")
    assert not wrong, wrong


def test_the_reader_sees_lazy_imports() -> None:
    """The rules above would be empty promises if lazy imports were missed."""
    lazy = graph(top_level_only=False)
    assert "mftrun.executor" in lazy["mftrun.run"] and "mftrun.emulator" in lazy["mftrun.rehearsal"]
    assert "mftrun.emulator" not in graph(top_level_only=True)["mftrun.rehearsal"]


def test_http_is_generic_and_each_platform_is_one_package() -> None:
    """http/ knows transport, retries and token caching; vendor URLs, JWTs and hints live in
    providers/<name>/ (issue 12 s1)."""
    import re

    vendor = re.compile(
        r"acronis|automate|progress\.com|/idp/|oauth/token|jwt|client_assertion", re.I
    )
    for path in (PACKAGE / "http").glob("*.py"):
        code = "\n".join(
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("#")
        )
        found = vendor.findall(code)
        assert not found, f"{path.name} names {sorted(set(found))}"
    from mftrun.providers.catalog import PLATFORMS

    for name, platform in PLATFORMS.items():
        package = PACKAGE / "providers" / name.replace("-", "_")
        assert (package / "__init__.py").is_file() and (package / "provider.py").is_file()
        assert platform.provider.startswith(f"mftrun.providers.{package.name}.")


def test_the_shipped_schema_agrees_with_the_declarations() -> None:
    """The schema file is for editors and validate; the declarations are the one place the
    code reads. This keeps them from drifting: every platform with its required credential
    fields, every registered action, nothing more."""
    import json

    from mftrun.actions import NAMES as ACTIONS
    from mftrun.providers.catalog import PLATFORMS

    schema = json.loads((PACKAGE / "schemas" / "pipeline.schema.json").read_text("utf-8"))
    env = schema["$defs"]["environment"]
    assert env["properties"]["provider"]["enum"] == list(PLATFORMS)
    required = {
        rule["if"]["properties"]["provider"]["const"]: rule["then"]["properties"]["credentials"][
            "required"
        ]
        for rule in env["allOf"]
        if "credentials" in rule.get("then", {}).get("properties", {})
    }
    assert required == {
        n: list(p.credential_fields) for n, p in PLATFORMS.items() if p.credential_fields
    }
    step_keys = set(schema["$defs"]["step"]["properties"])
    assert set(ACTIONS) <= step_keys
    generic = {"id", "description", "environment", "needs", "run_if", "timeout", "poll",
               "retries", "continue_on_error", "outputs", "for_each", "max_parallel",
               "min_items"}  # fmt: skip
    assert step_keys - generic == set(ACTIONS)
