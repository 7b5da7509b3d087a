"""include: shared environments/defaults/vars files (issue 16 section 3).

Every error must point at the file and line where the offending value is written, also
inside an included file; includes stay inside the repository; a folder validates each
shared file once and reports a cycle with its path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mftrun.cli import main
from mftrun.errors import ValidationFailed
from mftrun.include import repository_root
from mftrun.validation import check_paths, load_pipeline

ENVS = """\
environments:
  mft:
    provider: automate-mft
    region: us
    credentials: {tenant_id: t, key_id: k, private_key: {env: KEY}}
defaults:
  environment: mft
  timeout: 10m
vars:
  partner: acme
  region: eu
"""

PIPELINE = """\
version: 1
include: [shared/environments.yaml]
vars:
  region: us
steps:
  - id: push
    start_task: {name: "push-{{ vars.partner }}-{{ vars.region }}"}
"""


def write(root: Path, files: dict[str, str]) -> None:
    (root / ".git").mkdir(parents=True, exist_ok=True)  # the repository root
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_pipeline(path)
    return [f"{Path(p.file).name}:{p.line}:{p.column} {p.message}" for p in caught.value.problems]


def test_included_definitions_are_used_and_the_including_file_wins(tmp_path: Path) -> None:
    write(tmp_path, {"shared/environments.yaml": ENVS, "p/pipeline.yaml": PIPELINE})
    (tmp_path / "p" / "pipeline.yaml").write_text(
        PIPELINE.replace("shared/environments.yaml", "../shared/environments.yaml")
    )
    pipeline = load_pipeline(tmp_path / "p" / "pipeline.yaml")
    assert list(pipeline.environments) == ["mft"]
    assert dict(pipeline.vars) == {"region": "us", "partner": "acme"}  # own `region` wins
    step = pipeline.steps[0]
    assert step.environment == "mft" and step.timeout == 600
    # the environment's position is in the shared file
    assert pipeline.environments["mft"].position.file.endswith("shared/environments.yaml")
    assert pipeline.environments["mft"].position.line == 2


def test_a_changed_shared_file_changes_the_pipelines_sha256(tmp_path: Path) -> None:
    write(tmp_path, {"shared/environments.yaml": ENVS, "pipeline.yaml": PIPELINE})
    before = load_pipeline(tmp_path / "pipeline.yaml").sha256
    (tmp_path / "shared/environments.yaml").write_text(ENVS.replace("10m", "11m"))
    assert load_pipeline(tmp_path / "pipeline.yaml").sha256 != before


def test_an_error_inside_an_included_file_points_into_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "shared/environments.yaml": ENVS.replace("region: us", "region: mars"),
            "pipeline.yaml": PIPELINE,
        },
    )
    found = problems_of(tmp_path / "pipeline.yaml")
    assert len(found) == 1
    assert found[0].startswith("environments.yaml:4:13 ")
    assert "mars" in found[0]


def test_a_name_defined_by_two_includes_is_an_error_at_the_second(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": "vars: {partner: acme}\n",
            "b.yaml": "vars:\n  other: 1\n  partner: globex\n",
            "shared/environments.yaml": ENVS.replace("  partner: acme\n", ""),
            "pipeline.yaml": PIPELINE.replace(
                "[shared/environments.yaml]", "[shared/environments.yaml, a.yaml, b.yaml]"
            ),
        },
    )
    assert problems_of(tmp_path / "pipeline.yaml") == [
        "b.yaml:3:3 vars.partner is defined by two included files (first in "
        f"{tmp_path / 'a.yaml'} line 1)"
    ]


def test_includes_may_not_leave_the_repository_or_be_absolute(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, {"pipeline.yaml": PIPELINE})
    (tmp_path / "outside.yaml").write_text(ENVS)
    (repo / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    (repo / "pipeline.yaml").write_text(
        PIPELINE.replace(
            "[shared/environments.yaml]", f"[../outside.yaml, {tmp_path}/outside.yaml, link.yaml]"
        )
    )
    found = problems_of(repo / "pipeline.yaml")
    assert (
        found[0] == f"pipeline.yaml:2:11 include '../outside.yaml' leaves the repository ({repo})"
    )
    assert (
        found[1].startswith("pipeline.yaml:2:28 include '/") and "not a relative path" in found[1]
    )
    assert any(
        m.startswith("pipeline.yaml:") and "'link.yaml' leaves the repository" in m for m in found
    )


def test_a_missing_file_and_a_forbidden_key_in_an_included_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "shared/environments.yaml": ENVS + "steps: []\n",
            "pipeline.yaml": PIPELINE.replace(
                "[shared/environments.yaml]", "[shared/environments.yaml, nope.yaml]"
            ),
        },
    )
    found = problems_of(tmp_path / "pipeline.yaml")
    assert "environments.yaml:12:1 'steps' cannot come from an included file" in found
    assert "pipeline.yaml:2:37 include 'nope.yaml': no such file" in found


def test_validate_a_folder_checks_a_shared_file_once_and_reports_a_cycle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        {
            "shared/environments.yaml": ENVS.replace("timeout: 10m", "timeout: soon"),
            "one.yaml": PIPELINE,
            "two.yaml": PIPELINE,
            "loop/a.yaml": "include: [b.yaml]\nvars: {x: 1}\n",
            "loop/b.yaml": "include: [a.yaml]\n",
            "three.yaml": PIPELINE.replace("[shared/environments.yaml]", "[loop/a.yaml]"),
        },
    )
    files, problems = check_paths([str(tmp_path)])
    texts = [f"{Path(p.file).name}:{p.line} {p.message}" for p in problems]
    assert sum("timeout" in t and t.startswith("environments.yaml:8") for t in texts) == 1
    cycles = [t for t in texts if "include cycle" in t]
    assert cycles == ["b.yaml:1 include cycle: loop/a.yaml -> loop/b.yaml -> loop/a.yaml"]
    # the shared files are not validated as pipelines of their own (no "missing steps")
    assert not any("missing required" in t for t in texts), texts
    assert main(["validate", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "include cycle: loop/a.yaml -> loop/b.yaml -> loop/a.yaml" in out


def test_the_repository_root_is_the_git_work_tree(tmp_path: Path) -> None:
    write(tmp_path, {"deep/er/p.yaml": PIPELINE})
    assert repository_root(tmp_path / "deep/er/p.yaml") == tmp_path.resolve()
    (tmp_path / ".git").rmdir()
    assert repository_root(tmp_path / "deep/er/p.yaml") == (tmp_path / "deep/er").resolve()


def test_an_including_file_wins_over_its_own_includes_at_every_level(tmp_path: Path) -> None:
    """a.yaml includes b.yaml, which includes the shared file: a's own `timeout` wins over
    the shared file's, as the pipeline's own values win over a's (not two sibling includes)."""
    write(
        tmp_path,
        {
            "shared/environments.yaml": ENVS,
            "inc/a.yaml": "include: [sub/b.yaml]\ndefaults: {timeout: 1m}\n",
            "inc/sub/b.yaml": "include: [../../shared/environments.yaml]\nvars: {region: b}\n",
            "pipeline.yaml": PIPELINE.replace("shared/environments.yaml", "inc/a.yaml"),
        },
    )
    pipeline = load_pipeline(tmp_path / "pipeline.yaml")
    assert pipeline.steps[0].timeout == 60  # a.yaml's 1m over the shared 10m
    assert dict(pipeline.vars) == {"region": "us", "partner": "acme"}


def test_one_file_reached_through_two_includes_is_merged_once(tmp_path: Path) -> None:
    """A diamond: left.yaml and right.yaml both include the shared file; its names are one
    definition reached twice, not a conflict with itself."""
    write(
        tmp_path,
        {
            "shared/environments.yaml": ENVS,
            "dia/left.yaml": "include: [../shared/environments.yaml]\nvars: {left: 1}\n",
            "dia/right.yaml": "include: [../shared/environments.yaml]\nvars: {right: 2}\n",
            "pipeline.yaml": PIPELINE.replace(
                "[shared/environments.yaml]", "[dia/left.yaml, dia/right.yaml]"
            ),
        },
    )
    pipeline = load_pipeline(tmp_path / "pipeline.yaml")
    assert list(pipeline.environments) == ["mft"]
    assert dict(pipeline.vars) == {"region": "us", "partner": "acme", "left": 1, "right": 2}
    # ...but two different files bringing one name are still a conflict
    (tmp_path / "dia/right.yaml").write_text("vars: {left: 3}\n")
    assert problems_of(tmp_path / "pipeline.yaml") == [
        "right.yaml:1:8 vars.left is defined by two included files (first in "
        f"{tmp_path / 'dia/left.yaml'} line 2)"
    ]


def test_the_same_include_listed_twice_is_said_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "shared/environments.yaml": ENVS,
            "pipeline.yaml": PIPELINE.replace(
                "[shared/environments.yaml]",
                "[shared/environments.yaml, shared/environments.yaml]",
            ),
        },
    )
    assert problems_of(tmp_path / "pipeline.yaml") == [
        "pipeline.yaml:2:37 include 'shared/environments.yaml' is listed twice"
    ]


def test_a_value_from_a_merge_key_points_into_its_own_included_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "shared/environments.yaml": ENVS,
            "inc/anchors.yaml": "vars: &x {a: 1}\nx-anchor: 1\ndefaults: {<<: *x}\n",
            "pipeline.yaml": PIPELINE.replace(
                "[shared/environments.yaml]", "[shared/environments.yaml, inc/anchors.yaml]"
            ).replace("vars:\n  region: us\n", ""),
        },
    )
    assert "anchors.yaml:3:11 unknown field 'a' in defaults" in problems_of(
        tmp_path / "pipeline.yaml"
    )


def test_a_shared_file_validates_on_its_own(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """What the pre-commit hook does when only the shared file changed: it is checked as a
    shared definitions file (its sections and environments), not as a broken pipeline."""
    write(tmp_path, {"shared/environments.yaml": ENVS})
    shared = tmp_path / "shared/environments.yaml"
    assert main(["validate", "--skip-scenarios", str(shared)]) == 0
    assert capsys.readouterr().out.strip() == "1 file valid (1 shared definitions file)"
    shared.write_text(ENVS.replace("region: us", "region: mars").replace("10m", "soon"))
    assert main(["validate", str(shared)]) == 2
    out = capsys.readouterr().out
    assert "environments.yaml:8:12" in out and "soon" in out
    assert "environments.yaml:4:13" in out and "mars" in out
    assert "missing required fields" not in out
    # apply of it says what it is
    assert main(["apply", str(shared), "--emulate", "--no-state"]) == 2
    assert "is a shared definitions file" in capsys.readouterr().err
