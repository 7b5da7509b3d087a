"""`mftrun check FILE`: every used environment authenticated and called once; exit 0 or 3."""

from __future__ import annotations

import argparse
import socket
import textwrap

from mftrun.cli import main
from mftrun.commands import check
from mftrun.emulator import Emulator, Scenario


def pipeline(
    tmp_path, mft_url: str, acronis_url: str, *, unused_url: str = "https://unused.invalid"
) -> str:
    text = textwrap.dedent(f"""\
        version: 1
        name: check-me
        environments:
          mft:
            provider: automate-mft
            base_url: {mft_url}
            credentials:
              tenant_id: {{env: MFT_TENANT_ID}}
              key_id: {{env: MFT_KEY_ID}}
              private_key: {{file: {tmp_path}/mft-private-key.pem}}
          backup:
            provider: acronis
            base_url: {acronis_url}
            credentials:
              client_id: {{env: ACRONIS_CLIENT_ID}}
              client_secret: {{env: ACRONIS_CLIENT_SECRET}}
          spare:
            provider: acronis
            base_url: {unused_url}
            credentials:
              client_id: x
              client_secret: {{env: NOT_SET_ANYWHERE}}
        steps:
          - id: wait
            environment: backup
            wait_tasks: {{state: started}}
          - id: pull
            environment: mft
            needs: [wait]
            start_task: 02115928-16fe-4493-949b-d77d302a88ee
        """)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return str(path)


def args(file: str) -> argparse.Namespace:
    return argparse.Namespace(file=file, emulate=False, scenario=None)


def test_all_environments_ok_exit_0_and_unused_ones_are_not_touched(tmp_path, capsys):
    with Emulator(Scenario.default()) as emu:
        environ = emu.write_credentials(tmp_path)
        code = check.run(args(pipeline(tmp_path, emu.url, emu.url)), environ=environ)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "2 of 2 environment(s) ok" in out and "spare" not in out
        assert "license plan Professional" in out
        assert (
            emu.journal.tokens_issued("automate-mft") == 1
            and emu.journal.tokens_issued("acronis") == 1
        )
        assert not any(
            r.path.startswith("/v1/tasks") for r in emu.journal.requests
        )  # nothing started


def test_a_wrong_kid_fails_that_environment_with_exit_3(tmp_path, capsys, monkeypatch):
    with Emulator(Scenario.default()) as emu:
        for name, value in emu.write_credentials(tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MFT_KEY_ID", "wrong-kid")
        code = main(["check", pipeline(tmp_path, emu.url, emu.url)])
        out = capsys.readouterr().out
        assert code == 3
        assert "1 of 2 environment(s) ok" in out
        assert (
            "credentials rejected" in out and "key id (kid) and the private key must belong" in out
        )


def test_unreachable_environments_are_reported_not_raised(tmp_path, capsys):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    with Emulator(Scenario.default()) as emu:
        environ = emu.write_credentials(tmp_path)
    code = check.run(
        args(pipeline(tmp_path, "https://no-such-host.invalid", closed)), environ=environ
    )
    out = capsys.readouterr().out
    assert code == 3 and "0 of 2 environment(s) ok" in out
    assert "cannot resolve host no-such-host.invalid" in out
    assert "connection refused by 127.0.0.1" in out


def test_secrets_never_reach_the_output(tmp_path, capsys):
    with Emulator(Scenario.default()) as emu:
        environ = emu.write_credentials(tmp_path)
        environ["ACRONIS_CLIENT_SECRET"] = "a-wrong-but-secret-value"
        code = check.run(args(pipeline(tmp_path, emu.url, emu.url)), environ=environ)
        out = capsys.readouterr().out
        assert code == 3 and "credentials rejected" in out
        assert "a-wrong-but-secret-value" not in out
        assert emu.credentials.private_key_pem.splitlines()[1] not in out


def test_check_with_emulate_needs_no_credentials(capsys):
    code = main(["check", "examples/nightly-exchange.yaml", "--emulate"])
    out = capsys.readouterr().out
    assert code == 0 and "2 of 2 environment(s) ok" in out
