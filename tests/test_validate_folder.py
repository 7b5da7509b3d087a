"""A GitOps folder (issue 11 §6): `validate dir/` validates scenario files as scenarios,
`--exclude GLOB` leaves files out, `check` lists every missing credential per environment
(against the emulator: the good environment is really checked, the others send nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mftrun.cli import main
from mftrun.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = """\
version: 1
environments:
  mft:
    provider: automate-mft
    region: us
    credentials: {tenant_id: t, key_id: k, private_key: {env: K}}
steps:
  - {id: a, environment: mft, start_task: 02115928-16fe-4493-949b-d77d302a88ee}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "night.yaml").write_text(PIPELINE)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "ok.yaml").write_text("seed: 1\nspeed: 10\n")
    (tmp_path / "rehearse.yaml").write_text(
        "# yaml-language-server: $schema=../schemas/scenario.schema.json\nseed: 2\n"
    )
    return tmp_path


def test_scenarios_are_validated_as_scenarios(folder: Path, capsys: Any) -> None:
    assert main(["validate", str(folder)]) == 0
    assert "3 files valid (2 of them scenarios)" in capsys.readouterr().out


def test_a_broken_scenario_gets_the_scenario_message(folder: Path, capsys: Any) -> None:
    (folder / "scenarios" / "typo.yaml").write_text("seed: 1\nfualts: []\n")
    assert main(["validate", str(folder)]) == 2
    out = capsys.readouterr().out
    typo = [line for line in out.splitlines() if "typo.yaml" in line]
    assert typo and "fualts" in typo[0]
    assert "missing required fields 'version'" not in out  # not read as a pipeline
    assert "1 problem in 1 of 4 files (3 of them scenarios)" in out


def test_a_pipeline_in_the_scenarios_folder_is_still_a_pipeline(folder: Path, capsys: Any) -> None:
    (folder / "scenarios" / "misplaced.yaml").write_text("version: 1\nsteps: []\n")
    assert main(["validate", str(folder)]) == 2
    assert "misplaced.yaml" in capsys.readouterr().out


def test_skip_scenarios_still_skips(folder: Path, capsys: Any) -> None:
    assert main(["validate", "--skip-scenarios", str(folder)]) == 0
    assert "1 file valid (2 scenario files skipped)" in capsys.readouterr().out


def test_exclude(folder: Path, capsys: Any) -> None:
    (folder / "drafts").mkdir()
    (folder / "drafts" / "wip.yaml").write_text("version: 1\nsteps: [\n")
    assert main(["validate", str(folder)]) == 2
    capsys.readouterr()
    assert main(["validate", str(folder), "--exclude", "drafts/*"]) == 0
    assert "3 files valid" in capsys.readouterr().out
    assert main(["validate", str(folder), "--exclude", "wip.yaml", "--exclude", "*/ok.yaml"]) == 0
    assert "2 files valid" in capsys.readouterr().out
    assert main(["validate", str(folder / "drafts" / "wip.yaml"), "--exclude", "*"]) == 2
    assert "every file was left out" in capsys.readouterr().err


def test_repository_folder_validates(capsys: Any) -> None:
    assert main(["validate", str(ROOT / "examples"), str(ROOT / "scenarios")]) == 0
    assert "(3 of them scenarios)" in capsys.readouterr().out


def test_check_lists_every_missing_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for name in ("ACRONIS_ID", "ACRONIS_SECRET", "HOOK_URL", "HOOK_KEY"):
        monkeypatch.delenv(name, raising=False)
    with Emulator() as emu:
        key = tmp_path / "mft.pem"
        key.write_text(emu.credentials.private_key_pem or "")
        file = tmp_path / "p.yaml"
        file.write_text(
            "version: 1\nenvironments:\n"
            f"  mft:\n    provider: automate-mft\n    base_url: {emu.url}\n"
            f"    credentials: {{tenant_id: {emu.credentials.tenant_id}, "
            f"key_id: {emu.credentials.key_id}, private_key: {{file: {key}}}}}\n"
            f"  backup:\n    provider: acronis\n    base_url: {emu.url}\n"
            "    credentials:\n"
            "      {client_id: {env: ACRONIS_ID}, client_secret: {env: ACRONIS_SECRET}}\n"
            "  hook:\n    provider: webhook\n    base_url: {env: HOOK_URL}\n"
            "    headers: {X-Api-Key: {env: HOOK_KEY}}\n"
            "steps:\n"
            "  - {id: a, environment: mft, start_task: 02115928-16fe-4493-949b-d77d302a88ee}\n"
            "  - {id: b, environment: backup, wait_tasks: {state: started}}\n"
            "  - {id: c, environment: hook, http: {method: POST}}\n"
        )
        assert main(["check", str(file)]) == 3
        assert emu.journal.tokens_issued("automate-mft") == 1  # the good one was checked
        assert emu.journal.tokens_issued("acronis") == 0  # nothing sent for the others
    out = capsys.readouterr().out
    for missing in ("ACRONIS_ID", "ACRONIS_SECRET", "HOOK_URL", "HOOK_KEY"):
        assert f"environment variable {missing} is not set" in out
    assert "1 of 3 environment(s) ok" in out
