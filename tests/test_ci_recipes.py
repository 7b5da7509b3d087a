"""The CI glue: action.yml and the documented workflows through the real actionlint, the
GitLab job as YAML and the Jenkinsfile through a Groovy 3 parser, and the commands each of
them runs, run here in bash against the emulator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "docs" / "ci"
BIN = Path(sys.executable).parent
ACTIONLINT = str(BIN / "actionlint")
BASH = shutil.which("bash") or "/bin/bash"

PIPELINE = """\
version: 1
name: tiny
environments:
  mft:
    provider: automate-mft
    region: us
    credentials: {tenant_id: {env: T}, key_id: {env: K}, private_key: {env: P}}
steps:
  - id: pull
    environment: mft
    start_task: 02115928-16fe-4493-949b-d77d302a88ee
    poll: {interval: 100ms}
"""
FAILING = """\
automate_mft:
  tasks:
    - {id: 02115928-16fe-4493-949b-d77d302a88ee, name: Pull, duration: 1s,
       outcomes: [{outcome: failed, message: boom}]}
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    env.update(extra)
    return env


def _workdir(tmp_path: Path) -> Path:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "nightly-exchange.yaml").write_text(PIPELINE)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "failing.yaml").write_text(FAILING)
    return tmp_path


# -- GitHub ---------------------------------------------------------------------------------


@pytest.fixture
def actions_repo(tmp_path: Path) -> Path:
    """A repository with action.yml at its root and the documented workflows using it as `./`."""
    shutil.copy(ROOT / "action.yml", tmp_path / "action.yml")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for name in ("github-pull-request.yml", "github-nightly.yml"):
        text = (CI / name).read_text()
        assert "OWNER/mftrun@v0.1.0" in text
        (workflows / name).write_text(text.replace("OWNER/mftrun@v0.1.0", "./"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def _actionlint(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ACTIONLINT, "-oneline", "-no-color"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_actionlint_accepts_the_action_and_the_documented_workflows(actions_repo: Path) -> None:
    done = _actionlint(actions_repo)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_checks_uses_of_the_action_against_its_inputs(actions_repo: Path) -> None:
    """Proof that action.yml itself is read: a misspelt input and a missing one are errors."""
    (actions_repo / ".github" / "workflows" / "wrong.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: ./\n        with: {pipelin: x.yaml, emulate: 'true'}\n"
    )
    done = _actionlint(actions_repo)
    assert done.returncode == 1
    assert 'input "pipelin" is not defined in action "mftrun apply"' in done.stdout
    assert 'missing input "pipeline"' in done.stdout


def _action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def test_action_installs_at_its_ref_and_always_uploads_the_reports() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) >= {
        "pipeline",
        "emulate",
        "scenario",
        "report-dir",
        "state",
        "args",
    }
    steps = {s.get("name", s.get("uses")): s for s in action["runs"]["steps"]}
    install = next(s for s in steps.values() if "pip" in s.get("run", ""))
    assert (
        '-c "$GITHUB_ACTION_PATH/requirements/constraints.txt" "$GITHUB_ACTION_PATH"'
        in (install["run"])
    )
    upload = next(s for s in steps.values() if s.get("uses", "").startswith("actions/upload-art"))
    assert upload["if"] == "always()"  # also on failure and cancel
    assert upload["with"]["path"] == "${{ inputs.report-dir }}"
    assert action["outputs"]["exit-code"]["value"] == "${{ steps.apply.outputs.exit-code }}"
    assert action["outputs"]["report-dir"]["value"] == "${{ steps.apply.outputs.report-dir }}"


def _run_apply_step(tmp_path: Path, inputs: dict[str, str]) -> tuple[int, dict[str, str]]:
    """The action's apply step as the runner runs it: bash -eo pipefail, inputs in env."""
    step = next(s for s in _action()["runs"]["steps"] if s.get("id") == "apply")
    env = {}
    for name, expression in step["env"].items():
        found = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", expression)
        assert found, expression  # inputs reach the script through env only
        key = found.group(1)
        env[name] = inputs.get(key, str(_action()["inputs"][key].get("default", "")))
    output = tmp_path / "github-output"
    output.write_text("")
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    done = subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path,
        env=_env(GITHUB_OUTPUT=str(output), MFTRUN_STATE=str(tmp_path / "state.db"), **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return done.returncode, outputs


def test_action_apply_step_success_sets_outputs(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    code, outputs = _run_apply_step(
        work,
        {"pipeline": "pipelines/nightly-exchange.yaml", "emulate": "true", "report-dir": "out"},
    )
    assert code == 0
    assert outputs == {"exit-code": "0", "report-dir": str(work / "out")}
    assert {p.name for p in (work / "out").iterdir()} == {"report.json", "report.html", "junit.xml"}


def test_action_apply_step_failure_keeps_exit_code_and_extra_args(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    code, outputs = _run_apply_step(
        work,
        {
            "pipeline": "pipelines/nightly-exchange.yaml",
            "emulate": "true",
            "scenario": "scenarios/failing.yaml",
            "args": "--no-state --report json",
        },
    )
    assert code == 1  # the job goes red, and the outputs still say why
    assert outputs["exit-code"] == "1"
    assert outputs["report-dir"] == str(work / "mftrun-report")
    assert [p.name for p in (work / "mftrun-report").iterdir()] == ["report.json"]


# -- GitLab ---------------------------------------------------------------------------------


def test_gitlab_job_wires_junit_and_its_commands_run(tmp_path: Path) -> None:
    config = yaml.safe_load((CI / ".gitlab-ci.yml").read_text())
    job = config["mftrun-apply"]
    assert job["artifacts"]["when"] == "always"
    junit = job["artifacts"]["reports"]["junit"]
    assert junit == "mftrun-report/junit.xml"
    assert "pip install" in config["default"]["before_script"][0]  # not run here: no network
    work = _workdir(tmp_path)
    mr_rule = next(r for r in job["rules"] if "merge_request_event" in r["if"])
    variables = {**job["variables"], **mr_rule["variables"]}
    script = "\n".join(config["validate"]["script"] + job["script"])
    done = subprocess.run(
        [BASH, "-e", "-c", script],
        cwd=work,
        env=_env(**variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 file valid" in done.stdout
    assert "<testsuite" in (work / junit).read_text()


# -- Jenkins --------------------------------------------------------------------------------


def test_jenkinsfile_parses_as_groovy() -> None:
    from groovy_parser.parser import parse_groovy_content

    parse_groovy_content((CI / "Jenkinsfile").read_text())
    with pytest.raises(Exception, match="Unexpected"):
        parse_groovy_content("pipeline { stages { stage('x' { } }")  # the parser does reject


def test_jenkinsfile_stage_commands_run_and_leave_what_junit_and_archive_read(
    tmp_path: Path,
) -> None:
    text = (CI / "Jenkinsfile").read_text()
    commands = re.findall(r"^\s*sh '(.*)'$", text, flags=re.M)
    assert len(commands) == 3 and "pip install" in commands[0]  # install: not run, no network
    junit = re.search(r"junit testResults: '([^']+)'", text)
    archived = re.search(r"archiveArtifacts artifacts: '([^']+)'", text)
    assert junit and archived and "always {" in text
    env = dict(re.findall(r"^\s*(PIPELINE|MFTRUN_REPORT_DIR) = '([^']+)'", text, flags=re.M))
    work = _workdir(tmp_path)
    (work / ".venv").symlink_to(Path(sys.prefix))
    done = subprocess.run(
        [BASH, "-e", "-c", "\n".join(commands[1:])],
        cwd=work,
        env=_env(**env, MFTRUN_EXTRA="--emulate", MFTRUN_STATE=str(work / "state.db")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "<testsuite" in (work / junit.group(1)).read_text()
    assert (work / archived.group(1).removesuffix("/**") / "report.html").is_file()
