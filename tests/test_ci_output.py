"""CI output (issue 11 §5): annotation paths from a sub-folder, "emulated" in the step
summary and JUnit, no 80-column wrapping outside a terminal, one message per cause, a
cycle reported once at the needs entry that closes it. Real runs against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario

FAILING = "6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f"
LONG = "partner folder /in/invoices is read-only and full; " * 4 + "END-OF-MESSAGE"
GOOD = "02115928-16fe-4493-949b-d77d302a88ee"


def test_run_from_a_sub_folder_on_github(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "night.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        environments:
          mft:
            provider: automate-mft
            region: us
            credentials: {{tenant_id: t, key_id: k, private_key: {{env: K}}}}
        defaults: {{environment: mft}}
        steps:
          - {{id: pull, start_task: {GOOD}}}
          - {{id: push, start_task: {FAILING}, needs: [pull]}}
        """)
    )
    (work / "bad.yaml").write_text(
        "automate_mft:\n  tasks:\n"
        f"    - {{id: {FAILING}, outcome: failed, duration: 1s, message: '{LONG}'}}\n"
    )
    summary = tmp_path / "summary.md"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("COLUMNS",)},
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_STEP_SUMMARY": str(summary),
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mftrun", "apply", "night.yaml", "--emulate", "-q", "--no-state"]
        + ["--scenario", "bad.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1
    assert errors[0].startswith("::error file=work/night.yaml,line=10,col=5,")
    # not wrapped at 80 columns: the error line is whole, on one line
    (note,) = [line for line in proc.stdout.splitlines() if "push:" in line and "END" in line]
    assert LONG in note and len(note) > 200
    assert all(
        len(line) <= 80 for line in proc.stdout.splitlines() if "─" in line
    )  # a narrow table
    text = summary.read_text()
    assert "(emulated)" in text.splitlines()[0]
    assert "Emulated run" in text
    junit = (work / "mftrun-report" / "junit.xml").read_text()
    assert junit.count("emulated run (--emulate): no real platform was called") == 3  # 2 + suite
    assert '<property name="emulated" value="true"' in junit


def test_a_real_run_says_nothing_about_emulation(tmp_path: Path) -> None:
    from mftrun.reports.github import markdown_summary
    from mftrun.reports.junit import render_junit

    report = {"pipeline": "p", "duration": 1.0, "exit_code": 0, "totals": {}, "steps": []}
    assert "emulated" not in markdown_summary(report).lower()
    assert "emulated run" not in render_junit(report)


def stranger_key(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "stranger.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_an_authentication_failure_is_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    with Emulator(Scenario.from_dict({"seed": 4})) as emu:
        file = tmp_path / "five.yaml"
        steps = "".join(f"  - {{id: s{i}, start_task: {GOOD}}}\n" for i in range(1, 6))
        file.write_text(
            "version: 1\nenvironments:\n  mft:\n    provider: automate-mft\n"
            f"    base_url: {emu.url}\n    credentials:\n"
            f"      tenant_id: {emu.credentials.tenant_id}\n"
            f"      key_id: {emu.credentials.key_id}\n"
            f"      private_key: {{file: {stranger_key(tmp_path)}}}\n"
            "defaults: {environment: mft}\nsteps:\n" + steps
        )
        code = main(["apply", str(file), "-q", "--no-state", "--report-dir", str(tmp_path / "r")])
        assert emu.journal.tokens_issued("automate-mft") == 0
    assert code == 3
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    errors = {s["error"] for s in report["steps"]}
    assert len(errors) == 1 and all(s["status"] == "error" for s in report["steps"])
    first_line = errors.pop().splitlines()[0]
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if first_line in line and "::" not in line]
    # once as it happens (the log line of the first step), once in the final summary
    assert len(lines) == 2
    assert lines[0].split()[1] in {"s1", "s2", "s3", "s4", "s5"}
    assert lines[1] == f"  ! mft: 5 steps (s1, s2, s3, s4, s5): {first_line}"
    assert out.count("same cause as ") == 4
    annotations = [line for line in out.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 1
    assert "title=mftrun%3A 5 steps on environment mft" in annotations[0]
    assert "affected steps: s1, s2, s3, s4, s5" in annotations[0]


def test_a_cycle_is_reported_once_at_the_need_that_closes_it(tmp_path: Path, capsys: Any) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "version: 1\nenvironments:\n  mft: {provider: automate-mft, region: us, credentials: "
        "{tenant_id: t, key_id: k, private_key: {env: K}}}\ndefaults: {environment: mft}\n"
        "steps:\n"
        f"  - {{id: a, start_task: {GOOD}}}\n"
        f"  - {{id: b, start_task: {GOOD}, needs: [a, d]}}\n"  # line 7: needs d, further down
        f"  - {{id: c, start_task: {GOOD}, needs: [b]}}\n"
        f"  - {{id: d, start_task: {GOOD}, needs: [c]}}\n"
    )
    assert main(["validate", str(file)]) == 2
    out = capsys.readouterr().out
    cycles = [line for line in out.splitlines() if "dependency cycle" in line]
    assert cycles == [
        f"{file}:7:{out.split(':7:')[1].split(':')[0]}: dependency cycle: b -> c -> d -> b"
    ]
    assert "this need of 'b' on 'd' closes it" in out
