"""Keep the documentation honest: every YAML example in README.md must be what it claims.

A ```yaml block with a top-level `steps:` is a pipeline and must validate with no
problem, unless the line before its fence is `<!-- invalid -->` (a deliberate bad
example), in which case it must have at least one problem. A block with top-level
`automate_mft:`, `acronis:` or `faults:` and no `steps:` is an emulator scenario
and must load with the emulator's loader. Other blocks (fragments) are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mftrun.emulator.scenario import load_scenario
from mftrun.errors import ValidationFailed
from mftrun.validation import validate_bytes

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```yaml[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_INVALID = re.compile(r"<!--\s*invalid\b[^>]*-->\s*$")


def _blocks() -> list[tuple[str, int, str, bool]]:
    """(file name, line of the block's first content line, text, marked invalid)."""
    found = []
    for path in [ROOT / "README.md"]:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            line = text.count("\n", 0, match.start("body")) + 1
            found.append((path.name, line, match.group("body"), bool(_INVALID.search(before))))
    return found


BLOCKS = _blocks()
PIPELINES = [b for b in BLOCKS if re.search(r"^steps:", b[2], re.MULTILINE)]
SCENARIOS = [
    b
    for b in BLOCKS
    if b not in PIPELINES and re.search(r"^(automate_mft|acronis|faults):", b[2], re.MULTILINE)
]


def _id(block: tuple[str, int, str, bool]) -> str:
    return f"{block[0]}:{block[1]}"


def test_the_docs_have_examples_of_both_kinds() -> None:
    # Guards the extraction itself: a broken regex must not make every test vanish.
    assert len(PIPELINES) >= 8
    assert len(SCENARIOS) >= 3
    assert any(b[3] for b in PIPELINES), "at least one deliberately invalid example is checked"


@pytest.mark.parametrize("block", PIPELINES, ids=_id)
def test_pipeline_examples_validate(block: tuple[str, int, str, bool]) -> None:
    name, line, text, invalid = block
    pipeline, problems = validate_bytes(text.encode("utf-8"), f"{name}:{line}")
    if invalid:
        assert problems, f"docs/{name}:{line} is marked invalid but validates"
    else:
        assert problems == [], "\n".join(str(p) for p in problems)
        assert pipeline is not None and pipeline.steps


@pytest.mark.parametrize("block", SCENARIOS, ids=_id)
def test_scenario_examples_load(block: tuple[str, int, str, bool], tmp_path: Path) -> None:
    name, line, text, invalid = block
    path = tmp_path / f"{Path(name).stem}-{line}.yaml"
    path.write_text(text, encoding="utf-8")
    if invalid:
        with pytest.raises(ValidationFailed):
            load_scenario(path)
        return
    scenario = load_scenario(path)
    assert scenario.mft_tenants and scenario.acronis_clients
