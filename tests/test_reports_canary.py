"""Canary secrets.

A real `mftrun apply` process never writes a key, a secret, a token or an assertion.

The emulator runs in this process so the test can see what the client really
sent and received: every client assertion (from the token request bodies),
every access and id token (from the token answers) and every Authorization
header. A spy around the emulator's dispatcher also makes the platform echo
those values back inside a failed run's message, the way a careless server
error might. The run happens under GITHUB_ACTIONS=true, so annotations and the
job summary are checked too. Then every byte of stdout, stderr, the report
folder and the job summary is searched for every secret.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mftrun.emulator import Emulator, Scenario
from mftrun.emulator.wire import Request, Response

ROOT = Path(__file__).resolve().parent.parent
OK, BAD, CUT = (f"00000000-0000-4000-b000-00000000000{i}" for i in (1, 2, 3))


@dataclass
class Spy:
    """What went over the wire, and the echo the 'platform' sends back."""

    assertions: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    echoes: int = 0


def install_spy(emu: Emulator, *, secret: str, pem: str, basic: str) -> Spy:
    spy = Spy()
    original = emu._dispatch

    def dispatch(req: Request, platform: str | None) -> Response:
        auth = req.headers.get("authorization")
        if auth:
            spy.authorizations.append(auth)
        if req.path == "/v1/oauth/token":
            spy.assertions.append(json.loads(req.body)["client_assertion"])
        response = original(req, platform)
        if req.path in ("/v1/oauth/token", "/api/2/idp/token") and response.status == 200:
            answer = json.loads(response.body)
            spy.tokens += [answer[k] for k in ("access_token", "id_token") if k in answer]
        if req.path.startswith("/v1/task-runs/") and response.status == 200:
            body = json.loads(response.body)
            if body["status"]["taskRunStatus"] == "failed":
                spy.echoes += 1
                if body["taskId"] == CUT:  # the platform's message is cut mid-token by the provider
                    body["status"]["message"] = "denied: " + "." * 455 + f" {auth}"
                else:
                    body["status"]["message"] = (
                        f"denied; client_secret={secret}; Authorization: {auth}"
                    )
                    body["echo"] = {
                        "authorization": auth,
                        "first": spy.authorizations[0],
                        "secret": secret,
                        "basic": basic,
                        "tokens": spy.tokens,
                        "assertions": spy.assertions,
                        "key": pem,
                        "flat_key": "".join(pem.split()),
                    }
                response.body = json.dumps(body).encode()
        return response

    emu._dispatch = dispatch  # type: ignore[method-assign]
    return spy


PIPELINE = """\
version: 1
name: canary
environments:
  mft:
    provider: automate-mft
    base_url: {url}
    credentials:
      tenant_id: {{env: MFT_TENANT_ID}}
      key_id: {{env: MFT_KEY_ID}}
      private_key: {{env: MFT_PRIVATE_KEY}}
  backup:
    provider: acronis
    base_url: {url}
    credentials:
      client_id: {{env: ACRONIS_CLIENT_ID}}
      client_secret: {{env: ACRONIS_CLIENT_SECRET}}
defaults:
  environment: mft
  poll: {{interval: 0.05s, max_interval: 0.2s}}
steps:
  - id: backups
    environment: backup
    wait_tasks: {{state: [enqueued, assigned, started, paused]}}
  - id: good
    needs: [backups]
    start_task: {ok}
  - id: echoing
    needs: [backups]
    start_task: {bad}
  - id: cut
    needs: [backups]
    start_task: {cut}
"""


@dataclass
class Canary:
    code: int
    stdout: str
    stderr: str
    folder: Path  # the report folder, plus the job summary beside it
    pipeline: Path
    spy: Spy
    needles: dict[str, str]

    def blobs(self) -> dict[str, bytes]:
        files = {
            str(p.relative_to(self.folder)): p.read_bytes()
            for p in self.folder.rglob("*")
            if p.is_file()
        }
        return {"stdout": self.stdout.encode(), "stderr": self.stderr.encode(), **files}


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canary]:
    tmp = tmp_path_factory.mktemp("canary")
    scenario = Scenario.from_dict(
        {
            "seed": 21,
            "speed": 50,
            "automate_mft": {
                "tasks": [
                    {"id": OK, "queue": 1, "duration": 2},
                    {
                        "id": BAD,
                        "queue": 1,
                        "duration": 2,
                        "outcome": "failed",
                        "message": "replaced by the spy",
                    },
                    {
                        "id": CUT,
                        "queue": 1,
                        "duration": 2,
                        "outcome": "failed",
                        "message": "replaced by the spy",
                    },
                ]
            },
        }
    )
    with Emulator(scenario) as emu:
        emu.ensure_acronis_activity()
        creds = emu.credentials
        pem = creds.private_key_pem or ""
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        spy = install_spy(emu, secret=creds.client_secret, pem=pem, basic=basic)
        pipeline = tmp / "pipeline.yaml"
        pipeline.write_text(PIPELINE.format(url=emu.url, ok=OK, bad=BAD, cut=CUT))
        out = tmp / "out"
        (out / "report").mkdir(parents=True)
        summary = out / "summary.md"
        summary.write_text("## earlier step\n")
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT),
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_WORKSPACE": str(tmp),
            "MFT_TENANT_ID": creds.tenant_id,
            "MFT_KEY_ID": creds.key_id,
            "MFT_PRIVATE_KEY": pem,
            "ACRONIS_CLIENT_ID": creds.client_id,
            "ACRONIS_CLIENT_SECRET": creds.client_secret,
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mftrun",
                "apply",
                str(pipeline),
                "--report-dir",
                str(out / "report"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp,
            env=env,
            check=False,
        )
    needles = {"client_secret": creds.client_secret, "basic_credentials": basic}
    needles |= {
        f"key line {i}": line
        for i, line in enumerate(pem.splitlines())
        if len(line) >= 16 and "PRIVATE KEY" not in line
    }
    needles |= {f"token {i}": token for i, token in enumerate(spy.tokens)}
    needles |= {f"assertion {i}": a for i, a in enumerate(spy.assertions)}
    for i, header in enumerate(sorted(set(spy.authorizations))):
        if header.lower().startswith("bearer "):  # the Basic one is basic_credentials
            needles[f"authorization {i}"] = header.split(" ", 1)[1]
    yield Canary(proc.returncode, proc.stdout, proc.stderr, out, pipeline, spy, needles)


def test_the_run_used_and_echoed_every_kind_of_secret(canary: Canary) -> None:
    """Guard the guard: the canaries really went over the wire and really came back."""
    assert canary.code == 1, canary.stderr
    assert "Traceback" not in canary.stderr
    assert canary.spy.assertions and canary.spy.echoes >= 1
    assert len(canary.spy.tokens) >= 3  # an MFT token, an Acronis access token and its id_token
    assert any(a.lower().startswith("bearer ") for a in canary.spy.authorizations)
    assert any(a.startswith("Basic ") for a in canary.spy.authorizations)
    report = json.loads((canary.folder / "report" / "report.json").read_text())
    echoing = next(s for s in report["steps"] if s["id"] == "echoing")
    assert echoing["status"] == "failed" and "client_secret=***" in echoing["error"]
    echo = echoing["outputs"]["run"]["echo"]
    assert echo["authorization"] == "bearer ***" and echo["secret"] == "***"
    assert set(echo["tokens"]) == {"***"} and set(echo["assertions"]) == {"***"}
    assert set(
        echo["key"]
        .replace("\n", "")
        .replace("-----BEGIN PRIVATE KEY-----", "")
        .replace("-----END PRIVATE KEY-----", "")
    ) <= set("*")
    assert sorted(p.name for p in (canary.folder / "report").iterdir()) == [
        "junit.xml",
        "report.html",
        "report.json",
    ]


def test_no_secret_in_any_byte_written(canary: Canary) -> None:
    blobs = canary.blobs()
    assert set(blobs) >= {
        "stdout",
        "stderr",
        "summary.md",
        "report/report.json",
        "report/report.html",
        "report/junit.xml",
    }
    leaks = [
        (where, name)
        for where, blob in blobs.items()
        for name, needle in canary.needles.items()
        if name != "basic_credentials" and needle.encode() in blob
    ]
    assert leaks == []
    assert len(canary.needles) >= 10


def test_an_echoed_basic_authorization_header_is_scrubbed(canary: Canary) -> None:
    basic = canary.needles["basic_credentials"].encode()
    assert [where for where, blob in canary.blobs().items() if basic in blob] == []


def test_github_annotation_points_at_the_failed_steps_line(canary: Canary) -> None:
    line = canary.pipeline.read_text().splitlines().index("  - id: echoing") + 1
    errors = [text for text in canary.stdout.splitlines() if text.startswith("::error ")]
    assert len(errors) == 2
    assert errors[0].startswith(
        f"::error file=pipeline.yaml,line={line},col=5,title=mftrun%3A step echoing failed::"
    )
    assert "client_secret=***" in errors[0]


def test_github_step_summary_is_appended(canary: Canary) -> None:
    text = (canary.folder / "summary.md").read_text()
    assert text.startswith("## earlier step\n### ❌ mftrun · canary: Failed")
    assert "| echoing | ✗ failed | mft | start_task |" in text
    assert "| good | ✓ success | mft | start_task | 1 |" in text


def fragments(secret: str, size: int = 20) -> set[str]:
    return {secret[i : i + size] for i in range(max(1, len(secret) - size + 1))}


def test_no_fragment_of_a_secret_survives_truncation(canary: Canary) -> None:
    # The MFT tokens are opaque (no JWT parts shared with other values), so any piece is a leak.
    bearer = [
        v for k, v in canary.needles.items() if k.startswith("authorization") and "." not in v
    ]
    assert bearer
    leaks = [
        (where, secret[:6])
        for where, blob in canary.blobs().items()
        for secret in bearer
        for piece in fragments(secret)
        if piece.encode() in blob
    ]
    assert leaks == []
