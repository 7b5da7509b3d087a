"""Issue 15, items 2, 5, 7 and 15: what is masked, where, and what is never quoted.

- 5: a secret is masked where it occurs as a value or token in text from outside,
  never in fields mftrun wrote (a token "success" left `"status": "***"` and a
  report that `report show` refused); secrets too short to mask are refused at
  preflight, with the reason, before anything is sent.
- 7: every value read through `{env:}`/`{file:}` is sensitive in output, whatever
  its field; only identifiers written inline are shown.
- 15: a token endpoint's success body is never quoted; token-like text in a body
  quoted from a token endpoint is masked.
- 2: lone surrogates: the crash path's report and the crash log are always written.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from hostile_server import CLIENT_ID, CLIENT_SECRET, PIPELINE, Hostility, hostile_server
from mftrun.cli import main, run_command
from mftrun.credentials import MIN_SECRET_LENGTH, Redactor, resolve
from mftrun.model import CredentialRef
from mftrun.reports import FORMATS, FILENAMES, atomic_write, build_report, load_report
from mftrun.results import Attempt, RunResult, Status, StepResult


def apply_hostile(
    hostility: Hostility,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
) -> tuple[int, str, Path]:
    """`mftrun apply` against the hostile platform; (exit code, stdout+stderr+reports, folder)."""
    monkeypatch.setenv("HOSTILE_CLIENT_ID", client_id)
    monkeypatch.setenv("HOSTILE_CLIENT_SECRET", client_secret)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    reports = tmp_path / "reports"
    with hostile_server(hostility) as url:
        file = tmp_path / "hostile.yaml"
        file.write_text(PIPELINE.format(url=url))
        code = main(["apply", str(file), "--no-state", "--report-dir", str(reports)])
    out, err = capsys.readouterr()
    written = "".join(
        (reports / FILENAMES[f]).read_text(encoding="utf-8")
        for f in FORMATS
        if (reports / FILENAMES[f]).exists()
    )
    return code, out + err + written, reports


# --------------------------------------------------------------------------- item 5


def test_a_token_that_spells_success_leaves_statuses_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The platform issues the token "success": mftrun's statuses stay readable."""
    hostility = Hostility(token="success", code="ok", http_status=200)
    code, everything, reports = apply_hostile(hostility, tmp_path, monkeypatch, capsys)
    assert code == 0, everything
    report = load_report(reports / "report.json")  # `report show` accepts it
    assert [s["status"] for s in report["steps"]] == ["success", "success"]
    assert report["totals"]["success"] == 2
    assert '"status": "***"' not in everything
    assert re.search(r"settle +success", everything)  # the console's status column too
    assert main(["report", "show", str(reports)]) == 0
    assert "✓ success" in capsys.readouterr().out


def test_redactor_masks_tokens_not_parts_of_words() -> None:
    redactor = Redactor()
    redactor.add("success")
    assert redactor.scrub("token success; unsuccessful; success_rate") == (
        "token ***; unsuccessful; success_rate"
    )
    long = "k" * 30 + "0123"
    redactor.add(long)
    assert redactor.scrub(f"glued{long}glued") == "glued***glued"  # long: anywhere


def test_report_masks_outside_text_never_mftrun_fields() -> None:
    redactor = Redactor()
    redactor.add("failed")
    now = datetime.now(timezone.utc)
    step = StepResult("pull", "mft", "start_task", outcome=Status.FAILED, conclusion=Status.FAILED)
    step.started_at = step.ended_at = now
    step.error = "the platform said: failed"
    step.attempts = [Attempt(1, now, now, status=Status.FAILED, message="failed", run_id="r1")]
    report = build_report(RunResult("p", "p.yaml", "0" * 64, now, now, [step], 1), redactor)
    (s,) = report["steps"]
    assert (s["status"], s["outcome"], s["conclusion"]) == ("failed", "failed", "failed")
    assert s["attempts"][0]["status"] == "failed"
    assert report["totals"]["failed"] == 1
    assert s["error"] == "the platform said: ***"
    assert s["attempts"][0]["message"] == "***"


@pytest.mark.parametrize("secret", ["success", "hunter2", "x" * (MIN_SECRET_LENGTH - 1)])
def test_preflight_refuses_a_secret_too_short_to_mask(
    secret: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hostility = Hostility()
    code, everything, reports = apply_hostile(
        hostility, tmp_path, monkeypatch, capsys, client_secret=secret
    )
    assert code == 3
    assert f"is {len(secret)} characters long" in everything
    assert "too short to mask safely" in everything
    assert "nothing was started" in everything
    assert hostility.seen == {}  # not even a token request
    assert not reports.exists() or not any(reports.iterdir())
    if secret != "success":
        assert secret not in everything  # the reason, never the value


# --------------------------------------------------------------------------- item 7


def test_identifiers_read_from_references_are_masked_inline_ones_are_not() -> None:
    redactor = Redactor()
    environ = {"SOME_CI_SECRET": "ci-secret-7f3a9b"}
    assert (
        resolve(
            "key_id",
            CredentialRef("env", "SOME_CI_SECRET"),
            environ=environ,
            redactor=redactor,
            secret=False,
        )
        == "ci-secret-7f3a9b"
    )
    resolve(
        "tenant_id", CredentialRef("value", "tenant-inline-01"), redactor=redactor, secret=False
    )
    assert redactor.scrub("kid ci-secret-7f3a9b unknown") == "kid *** unknown"
    assert redactor.scrub("tenant tenant-inline-01") == "tenant tenant-inline-01"


def test_a_client_id_from_a_variable_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`client_id: {env: …}` holding a CI secret by mistake, echoed back by the platform."""
    mistaken = "ci-only-secret-42ab77"
    hostility = Hostility(
        code="ok",
        http_body=json.dumps({"error": f"unknown client {mistaken}"}).encode(),
    )
    code, everything, _ = apply_hostile(
        hostility, tmp_path, monkeypatch, capsys, client_id=mistaken
    )
    assert code == 1
    assert "unknown client ***" in everything
    assert mistaken not in everything


# --------------------------------------------------------------------------- item 15


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<html><body>token issued: {token}</body></html>", "text/html"),
        (b'{{"access_token": "{token}", "expires_in": 36', "application/json"),  # cut
        (b'{{"token": "{token}"}}', "application/json"),  # JSON, no access_token
        (b"", "application/json"),
    ],
    ids=["html", "cut-json", "no-access-token", "empty"],
)
def test_a_token_success_body_is_never_quoted(
    body: bytes,
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = "live-bearer-9d8c7b6a5f4e3d2c1b0a"
    hostility = Hostility(
        token_body=body.replace(b"{token}", token.encode())
        .replace(b"{{", b"{")
        .replace(b"}}", b"}"),
        token_type=kind,
    )
    code, everything, reports = apply_hostile(hostility, tmp_path, monkeypatch, capsys)
    assert code == 3
    assert "the body is not shown, as it may hold the token" in everything
    assert token not in everything
    assert "9d8c7b6a5f4e3d2c1b0a" not in everything
    assert (reports / "report.json").exists()


def test_token_like_text_in_a_token_error_body_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"
    opaque = "a1b2c3d4e5f6a7b8c9d0e1f2"
    description = (
        f"invalid_client; your previous access_token={jwt} and refresh {opaque}; "
        "client_secret: 'short1' expired"
    )
    hostility = Hostility(
        token_status=401,
        token_body=json.dumps(
            {"error": "invalid_client", "error_description": description}
        ).encode(),
    )
    code, everything, _ = apply_hostile(hostility, tmp_path, monkeypatch, capsys)
    assert code == 3
    assert "credentials rejected" in everything
    for leaked in (jwt, opaque, "short1", "eyJ"):
        assert leaked not in everything
    assert "invalid_client" in everything  # the useful words stay


def test_redact_tokens() -> None:
    from mftrun.http.auth import redact_tokens

    assert redact_tokens("Bearer abcdefghij0123456789xyz ok") == "Bearer *** ok"
    assert redact_tokens('{"access_token":"tiny"}') == '{"access_token":"***"}'
    assert redact_tokens("id_token=eyJa.eyJb.c") == "id_token=***"
    assert redact_tokens("ordinary words and 12345678901234567890 stay") == (
        "ordinary words and 12345678901234567890 stay"
    )


# --------------------------------------------------------------------------- item 2


def test_crash_path_report_is_written_with_lone_surrogates(tmp_path: Path) -> None:
    """Text that reached the result some other way than the HTTP boundary still writes."""
    from mftrun.run import ApplyOptions, report

    now = datetime.now(timezone.utc)
    step = StepResult("s", "mft", "start_task", outcome=Status.RUNNING)
    step.error = "half \ud800 a pair \udc00"
    step.outputs = {"\udfff": ["\ud800"]}
    result = RunResult("p\ud800", "p.yaml", "0" * 64, now, None, [step], 0)
    result.message = "\udcff"
    options = ApplyOptions(file="p.yaml", variables={}, report_dir=tmp_path / "r")
    assert report(result, options, Redactor(), crashed=True) is True
    data = load_report(tmp_path / "r" / "report.json")
    assert data["steps"][0]["error"] == "half \\ud800 a pair \\udc00"
    assert (tmp_path / "r" / "junit.xml").exists() and (tmp_path / "r" / "report.html").exists()


def test_atomic_write_cannot_fail_on_a_lone_surrogate(tmp_path: Path) -> None:
    atomic_write(tmp_path / "x.txt", ["a\ud800b"])
    assert (tmp_path / "x.txt").read_text() == "a\\ud800b"


def test_crash_log_is_written_with_a_lone_surrogate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def explode(args: argparse.Namespace) -> int:
        raise RuntimeError("platform said \ud800")

    code = run_command(argparse.Namespace(_module=SimpleNamespace(run=explode)))
    err = capsys.readouterr().err
    assert code == 1
    log = Path(err.rsplit("details in ", 1)[1].strip())
    assert "platform said \\ud800" in log.read_text()
    log.unlink()


def test_lone_surrogates_from_a_platform_end_in_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hostility = Hostility(
        state="started\ud800", type="\udfff", reason="lost \ud800\udc00 pair", policy="\udbff"
    )
    code, everything, reports = apply_hostile(hostility, tmp_path, monkeypatch, capsys)
    assert code == 1
    data = load_report(reports / "report.json")
    error = data["steps"][0]["error"]
    # A lone one is spelled out; an escaped pair in JSON is a real character.
    assert "type \\udfff, policy '\\udbff'" in error
    assert "lost \U00010000 pair" in error
