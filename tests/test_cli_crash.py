"""An unexpected error (a bug in mftrun) ends in a short message and a crash log without secrets."""

from __future__ import annotations

import re
from pathlib import Path

from mftrun import cli
from mftrun.commands import plan as plan_command
from mftrun.credentials import Redactor

SECRET = "canary-client-secret-7f3a9c"


def test_a_bug_prints_no_traceback_and_its_log_quotes_no_secret(monkeypatch, capsys, tmp_path):
    redactor = Redactor()
    redactor.add(SECRET)

    def buggy(args: object) -> int:
        raise RuntimeError(f"unexpected answer quoting {SECRET}")

    monkeypatch.setattr(plan_command, "run", buggy)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    code = cli.main(["plan", "whatever.yaml"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and SECRET not in err
    match = re.search(r"details in (\S+)", err)
    assert match, err
    log = Path(match.group(1)).read_text()
    assert "RuntimeError: unexpected answer quoting ***" in log
    assert SECRET not in log
    del redactor
