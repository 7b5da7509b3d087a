"""Keep the documentation honest: every YAML example in README.md and docs/*.md must be
what it claims, and every relative link in them must lead somewhere.

A ```yaml block with a top-level `steps:` is a pipeline and must validate with no
problem, unless the line before its fence is `<!-- invalid -->` (a deliberate bad
example), in which case it must have at least one problem. A block with top-level
`automate_mft:`, `acronis:` or `faults:` and no `steps:` is an emulator scenario
and must load with the emulator's loader. Other blocks (fragments) are not checked.

A relative link `[text](path#anchor)` must name a file or folder of the repository
and, when it has an anchor into a Markdown file, a heading of that file (GitHub's
slugs: lower case, punctuation dropped, spaces to `-`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mftrun.emulator.scenario import load_scenario
from mftrun.errors import ValidationFailed
from mftrun.validation import validate_bytes

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```yaml[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_INVALID = re.compile(r"<!--\s*invalid\b[^>]*-->\s*$")


def _blocks() -> list[tuple[str, int, str, bool]]:
    """(file name, line of the block's first content line, text, marked invalid)."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            line = text.count("\n", 0, match.start("body")) + 1
            name = path.relative_to(ROOT).as_posix()
            found.append((name, line, match.group("body"), bool(_INVALID.search(before))))
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
        assert problems, f"{name}:{line} is marked invalid but validates"
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


def test_the_docs_pages_are_all_checked() -> None:
    # The README links every page of docs/; each is read by the checks above.
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    assert {"README.md", "docs/pipeline-reference.md", "docs/emulator.md"} <= names
    assert any(b[0].startswith("docs/") for b in PIPELINES)
    assert any(b[0].startswith("docs/") for b in SCENARIOS)


_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
_CODE = re.compile(r"^```.*?^```[ \t]*$|`[^`\n]*`", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^#{1,6} (?P<title>.+?)\s*#*\s*$", re.MULTILINE)


def _slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    title = re.sub(r"`([^`]*)`", r"\1", title).strip().lower()
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    prose = re.sub(
        r"^```.*?^```[ \t]*$", "", path.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE
    )
    return {_slug(m.group("title")) for m in _HEADING.finditer(prose)}


def _links() -> list[tuple[str, int, str]]:
    """(file, line, target) of every relative link outside code."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        prose = _CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
        for match in _LINK.finditer(prose):
            target = match.group("target")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append((path.relative_to(ROOT).as_posix(), line, target))
    return found


LINKS = _links()


def test_the_docs_have_links() -> None:
    assert len(LINKS) >= 10
    assert any("#" in target and not target.startswith("#") for _, _, target in LINKS)


@pytest.mark.parametrize("link", LINKS, ids=lambda link: f"{link[0]}:{link[1]}")
def test_relative_links_resolve(link: tuple[str, int, str]) -> None:
    name, line, target = link
    where, _, anchor = target.partition("#")
    source = ROOT / name
    dest = (source.parent / where).resolve() if where else source
    assert dest.exists(), f"{name}:{line}: {target}: no such file {dest.relative_to(ROOT)}"
    assert ROOT in dest.parents or dest == ROOT, f"{name}:{line}: {target} leaves the repository"
    if anchor:
        assert dest.suffix == ".md", f"{name}:{line}: {target}: an anchor into a non-Markdown file"
        assert anchor in _anchors(dest), (
            f"{name}:{line}: {target}: no heading #{anchor} in {dest.name}"
        )
