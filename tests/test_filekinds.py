"""`validate --skip-scenarios`: scenarios are skipped only on positive evidence, never a
broken pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mftrun.cli import main
from mftrun.filekinds import is_scenario

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# yaml-language-server: $schema=../schemas/scenario.schema.json\nseed: 1\n", True),
        ("seed: 1\nautomate_mft: {tasks: []}\n", True),
        ("# yaml-language-server: $schema=../schemas/pipeline.schema.json\nseed: 1\n", False),
        ("seed: 1\nsteps: []\n", False),  # a pipeline key: a (broken) pipeline
        ("seed: 1\nstep: []\n", False),  # an unknown key: not positively a scenario
        ("steps: [\n", False),  # broken YAML is reported, not skipped
        ("", False),
    ],
)
def test_is_scenario(tmp_path: Path, text: str, expected: bool) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    assert is_scenario(path) is expected


def test_repository_scenarios_are_recognised() -> None:
    assert all(is_scenario(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    assert not any(is_scenario(p) for p in (ROOT / "examples").glob("*.yaml"))


def test_validate_skip_scenarios_summary(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["validate", "--skip-scenarios", str(ROOT / "scenarios"), str(ROOT / "examples")]
    assert main(args) == 0
    assert "11 files valid (3 scenario files skipped)" in capsys.readouterr().out
    assert main(["validate", str(ROOT / "scenarios")]) == 0  # without it: validated as scenarios
