"""A configuration mistake is not an outage (issue 11 section 2).

Real HTTP to the emulator; the journal is the ground truth, the reports what a user reads.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario

TASK = "02115928-16fe-4493-949b-d77d302a88ee"
MISSING = "6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f"


def start(data: dict[str, Any]) -> Emulator:
    return Emulator(Scenario.from_dict({"seed": 5, **data})).start()


@pytest.fixture
def platform():
    started: list[Emulator] = []

    def make(**data: Any) -> Emulator:
        emu = start(data)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


def pipeline(tmp_path: Path, emu: Emulator, steps: str, *, mft_extra: str = "") -> Path:
    key = tmp_path / "mft.pem"
    key.write_text(emu.credentials.private_key_pem)
    c = emu.credentials
    text = textwrap.dedent(f"""\
        version: 1
        name: mistakes
        environments:
          mft:
            provider: automate-mft
            base_url: {emu.url}
            credentials:
              {{tenant_id: {c.tenant_id}, key_id: {c.key_id}, private_key: {{file: {key}}}}}
            {{mft_extra}}
          backup:
            provider: acronis
            base_url: {emu.url}
            credentials: {{client_id: {c.client_id}, client_secret: {{env: SECRET}}}}
        defaults: {{environment: mft, poll: {{interval: 0.05, max_interval: 0.2}}}}
        steps:
        """) + textwrap.indent(textwrap.dedent(steps), "  ")
    path = tmp_path / "mistakes.yaml"
    path.write_text(text.replace("{mft_extra}", mft_extra))
    return path


def apply(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emu: Emulator, *extra: str
) -> tuple[int, dict[str, Any], Path]:
    monkeypatch.setenv("SECRET", emu.credentials.client_secret)
    reports = tmp_path / "report"
    code = main(["apply", str(path), "--no-state", "--report-dir", str(reports), *extra])
    return code, json.loads((reports / "report.json").read_text()), reports


# --------------------------------------------------------------------------- token body hint


@contextmanager
def token_endpoint_answering(status: int) -> Iterator[str]:
    """A token endpoint that refuses the body's encoding (the emulator takes both, as the
    contract leaves it open): every POST /v1/oauth/token is answered `status`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": "invalid_request", "error_description": "bad body"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "body"), [(400, "json"), (415, "json"), (415, "form")])
def test_a_token_request_refused_400_or_415_names_token_body(
    status, body, platform, tmp_path, monkeypatch, capsys
):
    emu = platform()
    other = "form" if body == "json" else "json"
    with token_endpoint_answering(status) as url:
        steps = f"- {{id: pull, start_task: {TASK}}}\n"
        path = pipeline(tmp_path, emu, steps, mft_extra=f"token_body: {body}")
        path.write_text(path.read_text().replace(emu.url, url, 1))
        code, report, _ = apply(path, tmp_path, monkeypatch, emu)
    out = capsys.readouterr().out
    assert code == 3
    assert f"set token_body: {other}" in out and "key id (kid)" in out
    assert f"set token_body: {other}" in report["steps"][0]["error"]


# --------------------------------------------------------------------------- unknown task


@pytest.mark.parametrize(
    ("spec", "label"),
    [(MISSING, f"task {MISSING}"), ("{name: Push partner invoices}", "task named 'Push")],
)
def test_an_unknown_task_is_a_mistake_in_the_file_exit_2_everywhere(
    spec, label, platform, tmp_path, monkeypatch, capsys
):
    emu = platform(automate_mft={"tasks": [{"id": TASK, "duration": 1}]})
    summary = tmp_path / "summary.md"
    summary.write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    path = pipeline(tmp_path, emu, f"- {{id: push, start_task: {spec}}}\n")
    code, report, reports = apply(path, tmp_path, monkeypatch, emu)
    out = capsys.readouterr().out
    tenant = emu.credentials.tenant_id
    assert code == 2 and report["exit_code"] == 2
    error = report["steps"][0]["error"]
    assert error.startswith(f"{label}") and f"not found on mft (tenant {tenant})" in error
    assert "hint: check the task" in error
    assert emu.journal.runs == []
    headline = "Invalid input"
    wrong = "Platform unreachable"
    assert headline in out and wrong not in out
    assert f"<title>{headline}" in (reports / "report.html").read_text()
    junit = (reports / "junit.xml").read_text()
    assert "not found on mft" in junit and 'name="verdict" value="error"' in junit
    github = summary.read_text()
    assert headline in github and wrong not in github
    assert "::error" in out and "not found on mft" in out


# --------------------------------------------------------------------------- short form


def test_a_task_name_in_the_short_form_is_caught_by_validate(tmp_path, capsys):
    path = tmp_path / "short.yaml"
    path.write_text(
        textwrap.dedent("""\
        version: 1
        environments:
          mft:
            provider: automate-mft
            region: us
            credentials: {tenant_id: t, key_id: k, private_key: {env: MFT_PRIVATE_KEY}}
        defaults: {environment: mft}
        steps:
          - {id: push, start_task: Push partner invoices}
          - {id: ok, start_task: 02115928-16fe-4493-949b-d77d302a88ee}
          - {id: templated, start_task: "{{ vars.task }}"}
        vars: {task: 02115928-16fe-4493-949b-d77d302a88ee}
        """)
    )
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert f"{path}:9:28: start_task 'Push partner invoices' is not a task id" in out
    assert (
        "hint: to start the task by its name, write start_task: {name: Push partner invoices}"
        in out
    )
    assert "1 problem in 1 of 1 file" in out


# --------------------------------------------------------------------------- an empty wait

LATE_BACKUP = {  # queued three real seconds after the emulator starts (speed 10), done at four
    "speed": 10,
    "acronis": {
        "tasks": [
            {
                "type": "backup",
                "enqueued": "30s",
                "started": "32s",
                "completed": "40s",
                "result": "ok",
            }
        ]
    },
}


@pytest.mark.parametrize(
    ("options", "count"),
    [("", 0), ("min_count: 1", 1), ("settle: 8s", 1)],
    ids=["default passes at once", "min_count", "settle"],
)
def test_a_wait_that_matches_nothing_says_so_and_min_count_or_settle_hold_it(
    options, count, platform, tmp_path, monkeypatch, capsys
):
    emu = platform(**LATE_BACKUP)
    filters = "state: [enqueued, assigned, started]" + (f", {options}" if options else "")
    steps = f"""\
        - id: backups-settled
          environment: backup
          timeout: 20s
          wait_tasks: {{{filters}}}
        """
    path = pipeline(tmp_path, emu, steps)
    code, report, _ = apply(path, tmp_path, monkeypatch, emu)
    out = capsys.readouterr().out
    step = report["steps"][0]
    assert code == 0 and step["status"] == "success", out
    assert step["outputs"]["count"] == count
    said = "no task matched the filters, so there was nothing to wait for"
    assert (said in out) == (count == 0)
    if count:
        assert step["outputs"]["tasks"][0]["result_code"] == "ok"


def test_min_count_that_is_never_reached_times_out_saying_why(
    platform, tmp_path, monkeypatch, capsys
):
    emu = platform()
    steps = """\
        - id: backups-settled
          environment: backup
          timeout: 1s
          wait_tasks: {state: started, min_count: 1}
        """
    code, report, _ = apply(pipeline(tmp_path, emu, steps), tmp_path, monkeypatch, emu)
    step = report["steps"][0]
    assert code == 1 and step["status"] == "timed_out"
    assert step["attempts"][0]["remote_status"] == (
        "0 task(s) seen, waiting for at least 1 (min_count)"
    )


# --------------------------------------------------------------------------- accepted warnings


def test_an_accepted_warning_is_shown_as_a_warning_everywhere(
    platform, tmp_path, monkeypatch, capsys
):
    said = "3 files were locked and skipped"
    emu = platform(
        acronis={
            "tasks": [
                {
                    "type": "backup",
                    "started": "-1m",
                    "completed": "3s",
                    "result": {"code": "warning", "warnings": [{"reason": said}]},
                    "policy": {"id": "pol-nightly", "name": "Nightly servers"},
                },
                {"type": "backup", "started": "-1m", "completed": "4s", "result": "ok"},
            ]
        }
    )
    summary = tmp_path / "summary.md"
    summary.write_text("")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    steps = """\
        - id: backups-settled
          environment: backup
          timeout: 30s
          wait_tasks: {state: [enqueued, assigned, started]}
        """
    code, report, reports = apply(pipeline(tmp_path, emu, steps), tmp_path, monkeypatch, emu)
    out = capsys.readouterr().out
    step = report["steps"][0]
    assert code == 0 and step["status"] == "success"
    assert len(step["warnings"]) == 1 and said in step["warnings"][0]
    assert "Nightly servers" in step["warnings"][0] and "accepted" in step["warnings"][0]
    assert "Succeeded (1 warning)" in out
    assert "⚠ backups-settled: warning: " in out and said in out
    annotations = [line for line in out.splitlines() if line.startswith("::warning ")]
    assert len(annotations) == 1 and said in annotations[0]
    assert "<title>Succeeded (1 warning)" in (reports / "report.html").read_text()
    assert said in (reports / "report.html").read_text()
    assert f"warning: {step['warnings'][0]}" in (reports / "junit.xml").read_text()
    github = summary.read_text()
    assert "Succeeded (1 warning)" in github and "locked and skipped" in github


# --------------------------------------------------------------------------- unknown statuses


@contextmanager
def mft_reporting(statuses: list[str]) -> Iterator[str]:
    """An Automate MFT whose one run reports `statuses` in turn (the last repeats): the
    vendor's list of run states is open, and the emulator knows only the documented four."""
    seen = iter(statuses)
    last = [statuses[0]]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _json(self, data: Any) -> None:
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/v1/oauth/token":
                self._json({"access_token": "tok", "token_type": "bearer", "expires_in": 300})
            else:
                self._json({"id": "run-1"})

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/v1/licenses/current":
                self._json({"plan": "Professional"})
                return
            last[0] = next(seen, last[0])
            self._json({"id": "run-1", "status": {"taskRunStatus": last[0]}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_statuses_are_shown_and_a_final_looking_one_asks_to_be_settled(
    platform, tmp_path, monkeypatch, capsys
):
    emu = platform()
    with mft_reporting(["queued", "Transferring", "Completed"]) as url:
        path = pipeline(tmp_path, emu, f"- {{id: pull, start_task: {TASK}, timeout: 1h}}\n")
        path.write_text(path.read_text().replace(emu.url, url, 1))
        code, report, _ = apply(path, tmp_path, monkeypatch, emu)
    out = capsys.readouterr().out
    step = report["steps"][0]
    assert "remote status: Transferring (unknown status: polling on" in out
    assert code == 2 and step["status"] == "error"
    assert "reports status 'Completed', which looks final" in step["error"]
    assert "add 'Completed' to start_task.success_statuses or failure_statuses" in step["error"]


def test_success_statuses_settle_an_unknown_final_status(platform, tmp_path, monkeypatch):
    emu = platform()
    with mft_reporting(["queued", "Completed"]) as url:
        spec = f"{{task_id: {TASK}, success_statuses: [success, completed]}}"
        path = pipeline(tmp_path, emu, f"- {{id: pull, start_task: {spec}, timeout: 1h}}\n")
        path.write_text(path.read_text().replace(emu.url, url, 1))
        code, report, _ = apply(path, tmp_path, monkeypatch, emu)
    assert code == 0 and report["steps"][0]["outputs"]["status"] == "Completed"
