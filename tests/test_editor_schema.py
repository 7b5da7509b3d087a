"""Editor support: every example and scenario names its schema in a yaml-language-server
modeline; the path resolves from the file, the schema there is the one mftrun ships and
prints (`mftrun schema`), and the file passes it under jsonschema's own Draft 2020-12
validator, the check an editor's language server makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from mftrun.cli import main

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "examples").glob("*.y*ml")) + sorted((ROOT / "scenarios").glob("*.y*ml"))
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_file_passes_the_schema_its_modeline_names(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    found = MODELINE.match(first)
    assert found, f"{path}: first line must be the modeline"
    schema_path = (path.parent / found.group(1)).resolve()
    assert schema_path == (ROOT / "schemas" / schema_path.name).resolve()
    schema = json.loads(schema_path.read_text())
    packaged = ROOT / "mftrun" / "schemas" / schema_path.name
    if packaged.exists():
        assert json.loads(packaged.read_text()) == schema
    Draft202012Validator.check_schema(schema)
    errors = list(Draft202012Validator(schema).iter_errors(yaml.safe_load(path.read_text())))
    assert not errors, [e.message for e in errors]


def test_published_schema_is_what_mftrun_schema_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((ROOT / "schemas" / "pipeline.schema.json").read_text())
    assert printed["$id"].endswith("/pipeline.schema.json")


def test_schema_rejects_what_an_editor_should_flag() -> None:
    schema = json.loads((ROOT / "schemas" / "pipeline.schema.json").read_text())
    doc = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    doc["steps"][0]["timout"] = "5m"
    assert list(Draft202012Validator(schema).iter_errors(doc))
