"""The `mftrun-validate` hook through the real `pre-commit` tool, as a user's repository uses it.

A throw-away Git repository lists this repository (a snapshot of the working tree, so the
hook under test is the one on disk) as a hook source in its `.pre-commit-config.yaml`;
`pre-commit install` puts the hook in place and real `git commit`s are refused or accepted.
pre-commit builds the hook's virtualenv by `pip install` of that snapshot, through the
package index pip is configured with (no other network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

GOOD = """\
version: 1
name: nightly
environments:
  mft: {provider: automate-mft, region: us, credentials: {tenant_id: {env: T}, key_id: {env: K},
        private_key: {env: P}}}
steps:
  - {id: pull, environment: mft, start_task: 02115928-16fe-4493-949b-d77d302a88ee}
"""
# Two problems in one file: an unknown `needs` (line 11) and a misspelt field (line 12).
BROKEN = (
    GOOD
    + """\
  - id: push
    environment: mft
    start_task: 6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f
    needs: [pul]
    timout: 5m
"""
)
# A second broken file (two problems), so the run must report both files at once.
BROKEN_TOO = "version: 1\nname: other\nsteps: []\nmax_parallel: many\n"
SCENARIO_IN_PIPELINES = "seed: 1\nspeed: 60\nautomate_mft:\n  tasks: []\n"
SCENARIO_IN_FOLDER = "this is: [not a pipeline\n"  # excluded by folder: never even read
WORKFLOW = "on: push\njobs: {}\n"


def _git_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(home),
        PRE_COMMIT_HOME=str(home / "pre-commit-cache"),
        PRE_COMMIT_COLOR="never",
    )
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    env.pop("GIT_INDEX_FILE", None)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _ok(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = _run(args, cwd, env)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A user's repository with the hook installed from a snapshot of this working tree."""
    base = tmp_path_factory.mktemp("precommit")
    env = _git_env(base)
    source = base / "mftrun-src"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _ok(["git", "init", "-q", "-b", "main"], source, env)
    _ok(["git", "add", "-A"], source, env)
    _ok(["git", "commit", "-q", "-m", "snapshot"], source, env)
    rev = _ok(["git", "rev-parse", "HEAD"], source, env).strip()

    repo = base / "pipelines-repo"
    repo.mkdir()
    _ok(["git", "init", "-q", "-b", "main"], repo, env)
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {source}\n    rev: {rev}\n    hooks:\n      - id: mftrun-validate\n"
    )
    _ok([*PRE_COMMIT, "install"], repo, env)
    _ok(["git", "add", ".pre-commit-config.yaml"], repo, env)
    _ok(["git", "commit", "-q", "-m", "hooks"], repo, env)
    yield repo, env


def test_commit_with_broken_pipelines_is_refused_with_every_position(
    user_repo: tuple[Path, dict[str, str]],
) -> None:
    repo, env = user_repo
    (repo / "pipelines").mkdir()
    (repo / "pipelines" / "nightly.yaml").write_text(BROKEN)
    (repo / "pipelines" / "other.yml").write_text(BROKEN_TOO)
    (repo / "pipelines" / "rehearsal.yaml").write_text(SCENARIO_IN_PIPELINES)
    (repo / "scenarios").mkdir()
    (repo / "scenarios" / "odd.yaml").write_text(SCENARIO_IN_FOLDER)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    _ok(["git", "add", "-A"], repo, env)
    done = _run(["git", "commit", "-m", "broken"], repo, env)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "mftrun validate" in out and "Failed" in out, out
    # Every problem of every changed file, in one run, positioned as file:line:col.
    assert "pipelines/nightly.yaml:11:13: step 'push' needs unknown step 'pul'" in out, out
    assert "pipelines/nightly.yaml:12:5: unknown field 'timout'" in out, out
    assert "pipelines/other.yml:3:8: steps must not be empty" in out, out
    assert "pipelines/other.yml:4:15: max_parallel must be a whole number" in out, out
    assert "4 problems in 2 of 2 files (1 scenario file skipped)" in out, out
    assert "rehearsal.yaml:" not in out and "odd.yaml" not in out and "ci.yml" not in out, out
    # Nothing was committed.
    log = _ok(["git", "log", "--format=%s"], repo, env)
    assert log.split() == ["hooks"]


def test_clean_commit_is_accepted(user_repo: tuple[Path, dict[str, str]]) -> None:
    repo, env = user_repo
    (repo / "pipelines").mkdir(exist_ok=True)
    (repo / "pipelines" / "nightly.yaml").write_text(GOOD)
    (repo / "pipelines" / "other.yml").unlink(missing_ok=True)
    _ok(["git", "add", "-A"], repo, env)
    done = _run(["git", "commit", "-m", "clean"], repo, env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "mftrun validate" in out and "Passed" in out, out
    assert _ok(["git", "log", "-1", "--format=%s"], repo, env).strip() == "clean"


def test_try_repo_runs_the_hook_of_the_working_tree(
    user_repo: tuple[Path, dict[str, str]],
) -> None:
    """`pre-commit try-repo`, the other documented way to try a hook source, on all files."""
    repo, env = user_repo
    (repo / "pipelines" / "late.yaml").write_text(BROKEN_TOO)
    _ok(["git", "add", "-A"], repo, env)
    source = repo.parent / "mftrun-src"
    done = _run([*PRE_COMMIT, "try-repo", str(source), "mftrun-validate", "--all-files"], repo, env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "pipelines/late.yaml:4:15: max_parallel must be a whole number" in out, out
    assert "2 problems in 1 of 2 files (1 scenario file skipped)" in out, out
