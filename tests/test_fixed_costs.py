"""What `apply` does before its first request and when it starts (issue 13 section 5).

The login check now runs on its own thread while the run is prepared. These tests
pin what that must not change, with the emulator's journal as ground truth and the
process's own stage marks (MFTRUN_PHASES) for "when": one token request per
environment; nothing sent before the file is validated; nothing started before the
run is prepared and the check has answered; and what is loaded when the first
request leaves (a sys.modules snapshot taken by an audit hook in the child).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mftrun.emulator import Emulator, Scenario

T = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)]

# In the child: at the first socket connect (the token request), write sys.modules to a file.
_SNAPSHOT = r"""
import json, sys
OUT = sys.argv[1]
done = []
def hook(event, args):
    if event == "socket.connect" and not done:
        done.append(1)
        with open(OUT, "w") as f:
            json.dump(sorted(sys.modules), f)
sys.addaudithook(hook)
from mftrun.cli import main
raise SystemExit(main(sys.argv[2:]))
"""

# Loaded only after the run (reports, summary, templates of outputs), or never in a run
# against one environment; none of them is needed to send the first request.
NOT_BEFORE_FIRST_REQUEST = (
    "jinja2",
    "rich",
    "mftrun.reports",
    "mftrun.reports.html",
    "mftrun.emulator",
    "concurrent.futures",
    "asyncio",
)


def _pipeline(emu: Emulator, key: Path, steps: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "version": 1,
            "name": "fixed-costs",
            "environments": {
                "mft": {
                    "provider": "automate-mft",
                    "base_url": emu.url,
                    "credentials": {
                        "tenant_id": emu.credentials.tenant_id,
                        "key_id": emu.credentials.key_id,
                        "private_key": {"file": str(key)},
                    },
                }
            },
            "defaults": {"environment": "mft", "poll": {"interval": 0.05, "max_interval": 0.3}},
            "steps": steps,
        }
    )


def _apply(tmp_path: Path, steps: list[dict[str, Any]], tasks: list[dict[str, Any]]):
    emu = Emulator(
        Scenario.from_dict({"seed": 3, "speed": 20, "automate_mft": {"tasks": tasks}})
    ).start()
    key = tmp_path / "k.pem"
    key.write_text(emu.credentials.private_key_pem)
    path = tmp_path / "p.yaml"
    path.write_text(_pipeline(emu, key, steps))
    marks, modules = tmp_path / "phases.jsonl", tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT, str(modules), "apply", str(path), "-q"]
        + ["--report-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "MFTRUN_PHASES": str(marks)},
    )
    emu.stop()
    at = (
        {m["phase"]: m["time"] for m in map(json.loads, marks.read_text().splitlines())}
        if marks.exists()
        else {}
    )
    loaded = json.loads(modules.read_text()) if modules.exists() else None
    return done, emu, at, loaded


def test_one_token_nothing_sent_before_validation_nothing_started_before_the_run_is_ready(
    tmp_path: Path,
) -> None:
    tasks = [{"id": t, "queue": 0.2, "duration": 1} for t in T]
    steps = [
        {"id": "a", "start_task": T[0]},
        {"id": "b", "start_task": T[1], "needs": ["a"]},
        {"id": "c", "start_task": T[2]},
    ]
    done, emu, at, loaded = _apply(tmp_path, steps, tasks)
    assert done.returncode == 0, done.stderr
    requests = [r for r in emu.journal.requests if r.platform == "automate-mft"]
    tokens = [r for r in requests if r.path == "/v1/oauth/token"]
    starts = [r for r in requests if r.method == "POST" and r.path.endswith("/start")]
    assert len(tokens) == 1 and emu.journal.tokens_issued("automate-mft") == 1
    assert [emu.journal.starts(t) for t in T] == [1, 1, 1]
    # the first request is the login check's token, sent after the file was validated
    assert requests[0] is tokens[0] and tokens[0].time > at["validated"]
    # the check's licence call answered before the first start, and nothing was started before
    # the plan, the executor and the check's verdict were all ready
    licence = [r for r in requests if r.path == "/v1/licenses/current"]
    assert len(licence) == 1 and licence[0].time < starts[0].time
    assert min(r.time for r in starts) > max(at["planned"], at["prepared"], at["logged_in"])
    assert loaded is not None
    early = [m for m in NOT_BEFORE_FIRST_REQUEST if m in loaded]
    assert early == [], f"imported before the first request: {early}"
    assert "mftrun.validation" in loaded and "requests" in loaded  # the snapshot is real


def test_an_invalid_file_sends_nothing_not_even_a_token(tmp_path: Path) -> None:
    steps = [{"id": "a", "start_task": T[0], "needs": ["ghost"]}]
    done, emu, at, loaded = _apply(tmp_path, steps, [{"id": T[0]}])
    assert done.returncode == 2, done.stderr
    assert "ghost" in done.stderr + done.stdout
    assert emu.journal.requests == [] and emu.journal.tokens_issued("automate-mft") == 0
    assert loaded is None  # no socket was ever connected
    assert "validated" not in at and "started" in at


def test_help_loads_neither_the_login_check_pool_nor_the_http_stack() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from mftrun.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in ('concurrent.futures', 'requests', 'jsonschema', 'jinja2')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
