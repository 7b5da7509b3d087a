"""`mftrun completion`: the bash script is sourced in a real bash and its function driven
through COMP_WORDS / COMP_CWORD, as bash does on <Tab>; zsh and fish scripts are generated
from the same parser and checked for what they name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mftrun.cli import COMMANDS, main

BIN = Path(sys.executable).parent
PIPELINE = """\
version: 1
steps:
  - {id: pull-orders, start_task: 02115928-16fe-4493-949b-d77d302a88ee}
  - {id: push-invoices, start_task: 6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f, needs: [pull-orders]}
  - {id: notify, start_task: 0f1e2d3c-4b5a-4697-8887-a6b5c4d3e2f1, run_if: failure}
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "mftrun.bash"
    done = subprocess.run(
        [str(BIN / "mftrun"), "completion", "bash"], capture_output=True, text=True, check=True
    )
    path.write_text(done.stdout)
    return path


def complete(script: Path, cwd: Path, line: str) -> list[str]:
    """What bash completes for `line` (the cursor at its end) with the script sourced."""
    words = line.split(" ")
    driver = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}\n"
        "_shtab_mftrun\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "--norc", "--noprofile", "-c", driver],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return sorted(w.strip() for w in done.stdout.splitlines() if w.strip())


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "nightly.yaml").write_text(PIPELINE)
    (tmp_path / "other.yml").write_text("version: 1\nsteps: []\n")
    (tmp_path / "notes.txt").write_text("not a pipeline\n")
    (tmp_path / "pipelines").mkdir()
    return tmp_path


def test_commands_complete(script: Path, workdir: Path) -> None:
    got = complete(script, workdir, "mftrun ")
    assert set(COMMANDS) <= set(got), got
    assert complete(script, workdir, "mftrun va") == ["validate"]


def test_options_of_a_command_complete(script: Path, workdir: Path) -> None:
    got = complete(script, workdir, "mftrun apply --re")
    assert {"--report", "--report-dir", "--restart", "--resume", "--resume-from"} <= set(got)
    assert "--format" not in got  # validate's, not apply's
    assert complete(script, workdir, "mftrun validate --fo") == ["--format"]


def test_pipeline_files_complete_yaml_only(script: Path, workdir: Path) -> None:
    got = complete(script, workdir, "mftrun apply ")
    assert "nightly.yaml" in got and "other.yml" in got and "pipelines" in got, got
    assert "notes.txt" not in got
    assert complete(script, workdir, "mftrun plan ni") == ["nightly.yaml"]


def test_restart_completes_the_step_ids_of_the_pipeline_on_the_line(
    script: Path, workdir: Path
) -> None:
    got = complete(script, workdir, "mftrun apply nightly.yaml --resume --restart ")
    assert got == ["notify", "pull-orders", "push-invoices"]
    got = complete(script, workdir, "mftrun apply nightly.yaml --restart pu")
    assert got == ["pull-orders", "push-invoices"]
    # No pipeline on the line yet: nothing to offer rather than an error.
    assert complete(script, workdir, "mftrun apply --restart ") == []


def test_format_choices_complete(script: Path, workdir: Path) -> None:
    assert complete(script, workdir, "mftrun validate --format ") == ["github", "json", "text"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_commands_and_step_completion(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command in text
    assert "--restart" in text and "mftrun completion --steps-for" in text
    assert "*.yaml" in text


def test_no_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion"]) == 2
    assert "bash|zsh|fish" in capsys.readouterr().err


def test_help_does_not_import_shtab() -> None:
    """Cold start of `mftrun --help` stays light: shtab is imported only to print a script."""
    code = (
        "import sys; from mftrun.cli import main; main(['--help']); print('shtab' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "False"
