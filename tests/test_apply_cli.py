"""`mftrun apply` from the command line: --emulate, and bad input ending in a message and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mftrun.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def mftrun(
    *args: str, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mftrun", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def test_quickstart_runs_green_against_the_embedded_emulator(tmp_path):
    result = mftrun(
        "apply", str(EXAMPLES / "quickstart.yaml"), "--emulate", "--report-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["emulated"] is True
    statuses = {s["id"]: s["status"] for s in report["steps"]}
    assert statuses.pop("notify-failure") == "skipped"
    assert set(statuses.values()) == {"success"}
    assert "Traceback" not in result.stderr


def test_emulate_with_a_scenario_exercises_the_failure_branch(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "speed: 5\nautomate_mft:\n  tasks:\n"
        "    - {id: 6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f, outcome: failed, queue: 1, duration: 2,"
        " message: 'partner SFTP refused the upload'}\n"
    )
    result = mftrun(
        "apply",
        str(EXAMPLES / "quickstart.yaml"),
        "--emulate",
        "--scenario",
        str(scenario),
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["push-invoices"]["status"] == "failed"
    assert "partner SFTP refused the upload" in steps["push-invoices"]["error"]
    assert steps["summary"]["status"] == "skipped"
    assert steps["notify-failure"]["status"] == "success"


@pytest.mark.parametrize(
    "args, message",
    [
        (["apply", "does-not-exist.yaml"], "does-not-exist.yaml"),
        (["apply", "examples/quickstart.yaml", "--var", "novalue"], "KEY=VALUE"),
        (["apply", "examples/quickstart.yaml", "--scenario", "x.yaml"], "--emulate"),
        (["apply", "examples/quickstart.yaml", "--report", "pdf"], "unknown format pdf"),
        (["apply", "examples/quickstart.yaml", "--max-parallel", "0"], "at least 1"),
        (
            ["apply", "examples/quickstart.yaml", "--emulate", "--scenario", "nope.yaml"],
            "nope.yaml",
        ),
    ],
)
def test_bad_command_lines_exit_2_with_a_message(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_invalid_pipeline_is_reported_with_position_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\nname: x\nenvironments: {}\nsteps:\n  - id: a\n    start_task: t\n    needs: "
        "[ghost]\n"
    )
    assert main(["apply", str(path), "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7:" in err and "ghost" in err
    assert not (tmp_path / "r").exists(), "nothing ran, so no report"


def test_missing_credentials_stop_the_run_before_anything_starts_with_exit_3(
    tmp_path, capsys, monkeypatch
):
    for name in ("MFT_TENANT_ID", "MFT_KEY_ID", "ACRONIS_CLIENT_ID", "ACRONIS_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: creds\nenvironments:\n  mft:\n    provider: automate-mft\n"
        "    base_url: http://127.0.0.1:9\n    credentials:\n      tenant_id: {env: "
        "MFT_TENANT_ID}\n"
        "      key_id: k\n      private_key: {file: /nonexistent/key.pem}\n"
        "steps:\n  - {id: a, environment: mft, start_task: 02115928-16fe-4493-949b-d77d302a88ee}\n"
    )
    code = main(["apply", str(path), "--report-dir", str(tmp_path / "r"), "-q"])
    assert code == 3
    err = capsys.readouterr().err
    assert "nothing was started" in err and "Traceback" not in err
    # every problem at once, each pointing at where the reference is declared
    assert f"MFT_TENANT_ID is not set (declared at {path}:8:18)" in err
    assert "/nonexistent/key.pem does not exist" in err
    assert not (tmp_path / "r").exists(), "nothing ran, so no report"


def test_every_example_runs_green_under_emulate(tmp_path):
    """The examples are documentation: each must run as written, not only validate.

    They run side by side (each mostly waits on its emulator), so this costs the
    slowest one (wait-backups polls every 30 s as written), not their sum.
    """
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert len(examples) >= 6
    env = {**os.environ, "NO_COLOR": "1"}
    running = {
        path.name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mftrun",
                "apply",
                str(path),
                "--emulate",
                "-q",
                "--report-dir",
                str(tmp_path / path.stem),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for path in examples
    }
    for name, proc in running.items():
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{out}\n{err}"
        assert "Traceback" not in err
        report = json.loads((tmp_path / Path(name).stem / "report.json").read_text())
        assert report["exit_code"] == 0
        assert {s["status"] for s in report["steps"]} <= {"success", "skipped"}, name
        assert any(s["status"] == "success" for s in report["steps"]), name


def test_an_unusable_report_dir_is_refused_before_anything_starts(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(
        [
            "apply",
            str(EXAMPLES / "http-call.yaml"),
            "--emulate",
            "-q",
            "--report-dir",
            str(blocker / "reports"),
        ]
    )
    assert code == 2
    captured = capsys.readouterr()
    assert "--report-dir" in captured.err and "cannot create the folder" in captured.err
    assert "started" not in captured.out, "no step may run when its evidence cannot be kept"


def test_a_missing_ca_bundle_is_found_before_anything_starts(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: ca\nenvironments:\n  backup:\n    provider: acronis\n"
        "    base_url: http://127.0.0.1:9\n    ca_bundle: ~/no-such-ca.pem\n"
        "    credentials: {client_id: c, client_secret: {env: HOME}}\n"
        "steps:\n  - {id: a, environment: backup, wait_tasks: {state: started}}\n"
    )
    assert main(["apply", str(path), "--report-dir", str(tmp_path / "r"), "-q"]) == 3
    err = capsys.readouterr().err
    assert "environment 'backup': ca_bundle ~/no-such-ca.pem does not exist" in err
    assert "nothing was started" in err


def test_emulate_with_a_public_key_only_scenario_says_why_it_cannot_sign(tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "pub.pem").write_bytes(public)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "automate_mft:\n  tenants:\n    - keys:\n        - {public_key_file: "
        f"{tmp_path / 'pub.pem'}}}\n"
    )
    code = main(
        [
            "apply",
            str(EXAMPLES / "http-call.yaml"),
            "--emulate",
            "--scenario",
            str(scenario),
            "--report-dir",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "public key only" in err and "Traceback" not in err and "internal error" not in err


def test_an_unreadable_private_key_is_found_before_anything_starts(tmp_path, capsys, monkeypatch):
    garbage = (
        "-----BEGIN PRIVATE KEY-----\nCanarySecretGarbage1234567890\n-----END PRIVATE KEY-----"
    )
    monkeypatch.setenv("MFT_BAD_KEY", garbage)
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: key\nenvironments:\n  mft:\n    provider: automate-mft\n"
        "    base_url: http://127.0.0.1:9\n    credentials:\n      tenant_id: t\n      key_id: k\n"
        "      private_key: {env: MFT_BAD_KEY}\nsteps:\n  - {id: a, environment: mft, start_task: "
        "02115928-16fe-4493-949b-d77d302a88ee}\n"
    )
    assert main(["apply", str(path), "--report-dir", str(tmp_path / "r"), "-q"]) == 3
    err = capsys.readouterr().err
    assert (
        f"declared at {path}:10:20) cannot be read: the PEM is damaged or not a private key" in err
    )
    assert "nothing was started" in err and "CanarySecretGarbage" not in err
