"""Issue 15 reliability findings 13-19, each with the hostile input that found it.

Real processes (`python -m mftrun apply`) against the emulator, through the tests' own
fault-injecting proxy where the emulator cannot make the fault; the emulator's journal says
what really happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any
from pathlib import Path

import jsonschema
import pytest

from fault_proxy import FaultProxy
from mftrun.emulator import Emulator, Scenario
from mftrun.reports import report_schema

TASK = "00000000-0000-4000-9000-000000000001"
ALERT = "00000000-0000-4000-9000-000000000002"


def emulator(tasks=(), acronis=(), speed: float = 1) -> Emulator:
    scenario = {"seed": 5, "speed": speed, "automate_mft": {"tasks": list(tasks)}}
    if acronis:
        scenario["acronis"] = {"tasks": list(acronis)}
    return Emulator(Scenario.from_dict(scenario)).start()


def write_pipeline(tmp_path: Path, emu: Emulator, base_url: str, steps, **env) -> Path:
    key = tmp_path / "k.pem"
    key.write_text(emu.credentials.private_key_pem or "")
    os.chmod(key, 0o600)
    doc = {
        "version": 1,
        "name": "reliability",
        "environments": {
            "mft": {
                "provider": "automate-mft",
                "base_url": base_url,
                "credentials": {
                    "tenant_id": emu.credentials.tenant_id,
                    "key_id": emu.credentials.key_id,
                    "private_key": {"file": str(key)},
                },
                **env,
            },
            "backup": {
                "provider": "acronis",
                "base_url": base_url,
                "credentials": {
                    "client_id": emu.credentials.client_id,
                    "client_secret": {"env": "ACRONIS_SECRET"},
                },
            },
        },
        "defaults": {"environment": "mft", "poll": {"interval": 0.1, "max_interval": 0.3}},
        "steps": steps,
    }
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(doc))
    return path


def apply(path: Path, emu: Emulator, report: Path, *extra: str, **kwargs: Any) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1", "ACRONIS_SECRET": emu.credentials.client_secret}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "mftrun", "apply", str(path), "--report-dir", str(report), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def finish(proc: subprocess.Popen, report: Path) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=60)
    data = json.loads((report / "report.json").read_text())
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    assert data["exit_code"] == proc.returncode, err
    assert "Traceback" not in err
    return proc.returncode, data, out + err


def steps_of(data: dict) -> dict[str, dict]:
    return {s["id"]: s for s in data["steps"]}


# -- 14: a 2xx start whose run id cannot be read is an ambiguous start -----------------------


@pytest.mark.parametrize("kind", ["not_json", "wrong_shape", "truncated"])
def test_a_2xx_start_without_a_readable_run_id_may_have_started_and_is_never_resent(tmp_path, kind):
    emu = emulator([{"id": TASK, "queue": 0, "duration": 1}])

    def rule(m, p):
        return (kind, 0.0) if m == "POST" and p.endswith("/start") else None

    with emu, FaultProxy(emu.port, seed=1, rule=rule) as proxy:
        steps = [{"id": "pull", "start_task": TASK, "retries": {"attempts": 2, "delay": 0.1}}]
        path = write_pipeline(tmp_path, emu, proxy.url, steps)
        code, data, text = finish(apply(path, emu, tmp_path / "r"), tmp_path / "r")
        assert emu.journal.starts(TASK) == 1, "the platform really started it, once"
    pull = steps_of(data)["pull"]
    assert code == 3 and pull["status"] == "error"
    assert "may have started" in pull["error"] and "did not send" in pull["error"]
    assert "is base_url right" not in pull["error"]
    assert pull["remote_may_continue"] == [f"unknown run of task {TASK}"]
    assert pull["start_unconfirmed"] is True  # resume refuses to guess
    assert len(pull["attempts"]) == 1


# -- 16 and 19: once a step has ended, nothing is sent for it --------------------------------


def test_a_start_sleeping_on_retry_after_past_the_step_timeout_is_abandoned(tmp_path):
    emu = emulator([{"id": TASK, "queue": 0, "duration": 1}, {"id": ALERT, "duration": 3}])

    def rule(method, path):
        if method == "POST" and TASK in path:
            return ("rate_limit", 4.0)
        return None

    with emu, FaultProxy(emu.port, seed=1, rule=rule) as proxy:
        steps = [
            {"id": "pull", "start_task": TASK, "timeout": 2},
            {"id": "alert", "start_task": ALERT, "needs": ["pull"], "run_if": "failure"},
        ]
        path = write_pipeline(tmp_path, emu, proxy.url, steps)
        code, data, _ = finish(apply(path, emu, tmp_path / "r"), tmp_path / "r")
        time.sleep(0.5)
        assert emu.journal.starts(TASK) == 0, "the start must never be sent after the timeout"
        assert emu.journal.starts(ALERT) == 1
        pull_posts = [s for s in proxy.seen if s.method == "POST" and TASK in s.path]
    pull = steps_of(data)["pull"]
    assert pull["status"] == "timed_out" and code == 1
    assert "nothing was started" in pull["error"] and "in flight" not in pull["error"]
    assert "Retry-After 4s" in pull["error"]
    assert pull["remote_may_continue"] == [] and pull["start_unconfirmed"] is False
    assert pull["attempts"][-1]["status"] == "timed_out"  # item 19: not "cancelled"
    ended = pull["ended_at"]
    assert len(pull_posts) == 1, f"one 429 only, none after the step ended at {ended}"


def test_a_start_waiting_behind_a_slow_token_is_abandoned_at_the_timeout(tmp_path):
    emu = emulator([{"id": TASK, "queue": 0, "duration": 1}, {"id": ALERT, "duration": 2}])

    def rule(m, p):
        return ("slow", 3.0) if p == "/v1/oauth/token" else None

    steps = [
        {"id": "pull", "start_task": TASK, "timeout": 1},
        {"id": "alert", "start_task": ALERT, "needs": ["pull"], "run_if": "failure"},
    ]
    with emu, FaultProxy(emu.port, seed=1, rule=rule) as proxy:
        path = write_pipeline(tmp_path, emu, proxy.url, steps)
        # without the login check, which would fetch the token before the step starts
        run = apply(path, emu, tmp_path / "r", "--no-login-check")
        code, data, _ = finish(run, tmp_path / "r")
        time.sleep(2.5)  # the token answer arrives; the start must still not go out
        assert emu.journal.tokens_issued("automate-mft") == 1
        assert emu.journal.starts(TASK) == 0 and emu.journal.starts(ALERT) == 1
    pull = steps_of(data)["pull"]
    assert code == 1 and pull["status"] == "timed_out"
    assert "nothing was started" in pull["error"] and "access token" in pull["error"]
    assert pull["attempts"][-1]["status"] == "timed_out"


def test_a_timed_out_running_attempt_is_timed_out_with_its_run_left_going(tmp_path):
    emu = emulator([{"id": TASK, "queue": 0, "duration": 1, "outcome": "stuck"}])
    with emu:
        steps = [{"id": "pull", "start_task": TASK, "timeout": 1}]
        path = write_pipeline(tmp_path, emu, emu.url, steps)
        code, data, _ = finish(apply(path, emu, tmp_path / "r"), tmp_path / "r")
        run_ids = [r.run_id for r in emu.journal.runs]
    pull = steps_of(data)["pull"]
    assert code == 1 and pull["attempts"][-1]["status"] == "timed_out"
    assert pull["remote_may_continue"] == run_ids and len(run_ids) == 1


# -- the fault the independent campaign could not make: refused before anything was sent --


def test_a_start_refused_before_it_was_sent_is_sent_again_once(tmp_path):
    emu = emulator([{"id": TASK, "queue": 0, "duration": 0.5}])

    def rule(method, path):
        return ("then_refuse", 0.5) if path == "/v1/oauth/token" else None

    with emu, FaultProxy(emu.port, seed=1, rule=rule) as proxy:
        steps = [{"id": "pull", "start_task": TASK}]
        path = write_pipeline(tmp_path, emu, proxy.url, steps)
        # without the login check, whose call would be the one refused after the token
        run = apply(path, emu, tmp_path / "r", "--no-login-check")
        code, data, _ = finish(run, tmp_path / "r")
        assert emu.journal.starts(TASK) == 1
        posts = [s for s in proxy.seen if s.method == "POST" and TASK in s.path]
    pull = steps_of(data)["pull"]
    assert code == 0 and pull["status"] == "success" and len(pull["attempts"]) == 1
    assert len(posts) == 1, "the refused connection carried nothing; the resend went through"
    assert pull["start_unconfirmed"] is False
    assert pull["duration"] >= 2.5, "sent again after the start policy's back-off (2.5 s)"


# -- 13: a retried wait does not hide a failed backup ----------------------------------------


def test_a_wait_with_retries_still_fails_when_its_backup_failed(tmp_path):
    backup = {"type": "backup", "started": "-1s", "completed": "1s", "result": "error"}
    emu = emulator(acronis=[backup], speed=1)
    with emu:
        steps = [
            {
                "id": "backups",
                "environment": "backup",
                "wait_tasks": {"state": ["started"]},
                "retries": {"attempts": 2, "delay": 0.1},
            }
        ]
        path = write_pipeline(tmp_path, emu, emu.url, steps)
        code, data, _ = finish(apply(path, emu, tmp_path / "r"), tmp_path / "r")
    backups = steps_of(data)["backups"]
    assert code == 1 and backups["status"] == "failed"
    assert "result error" in backups["error"]
    assert len(backups["attempts"]) == 1, "a wait's verdict is final: not retried"


# -- 17: a signal just after the last step still gives a full, truthful report --------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_around_the_last_step_end_still_writes_a_consistent_report(tmp_path, signum):
    emu = emulator([{"id": TASK, "queue": 0, "duration": 0.3}])
    outcomes = []
    with emu:
        steps = [{"id": "pull", "start_task": TASK}]
        path = write_pipeline(tmp_path, emu, emu.url, steps)
        for i, delay in enumerate((0.0, 0.01, 0.02, 0.05, 0.1, 0.2)):
            report = tmp_path / f"r{i}"
            proc = apply(path, emu, report)
            before = len(emu.journal.runs)
            deadline = time.monotonic() + 20
            # wait for this process's run to end on the platform, then signal just after
            while time.monotonic() < deadline:
                runs = emu.journal.runs
                if len(runs) > before and runs[before].ended is not None:
                    break
                time.sleep(0.005)
            time.sleep(delay + 0.1)
            proc.send_signal(signum)
            code, data, text = finish(proc, report)
            outcomes.append(code)
            assert (report / "junit.xml").exists() and (report / "report.html").exists()
            if code in (130, 143):
                assert code == (143 if signum == signal.SIGTERM else 130)
                assert data["interrupted"] is True
            else:
                assert code == 0 and data["interrupted"] is False
            assert steps_of(data)["pull"]["status"] in ("success", "cancelled")
    assert emu.journal.starts(TASK) == 6


# -- 18: Ctrl-C during start-up ------------------------------------------------------------


SIGINT_ON_IMPORT = """
import os, signal, sys
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("SIGINT_AT"):
            os.kill(os.getpid(), getattr(signal, os.environ.get("SIG", "SIGINT")))
        return None
sys.meta_path.insert(0, Hook())
"""


@pytest.mark.parametrize(
    "module", ["mftrun.cli", "mftrun.commands", "mftrun.commands.apply", "mftrun.commands.state"]
)
def test_ctrl_c_while_importing_or_building_the_parser_exits_130_without_a_traceback(
    tmp_path, module
):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(SIGINT_ON_IMPORT))
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}", "SIGINT_AT": module}
    proc = subprocess.run(
        [sys.executable, "-m", "mftrun", "validate", "nothing.yaml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    assert "interrupted" in proc.stderr


SIGINT_INSIDE_EXEC = """
import os, signal, sys
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("SIGINT_AT"):
            os.environ["SIGINT_AT"] = ""
            # the Ctrl-C lands in code run from a string, as in the methods that dataclasses
            # and namedtuple make with exec() while a module is imported
            exec("os.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(10**7): pass")
        return None
sys.meta_path.insert(0, Hook())
"""

AS_CONSOLE_SCRIPT = "import sys; from mftrun.cli import main; sys.exit(main())"


@pytest.mark.parametrize(
    ("launch", "module"),
    [
        (["-m", "mftrun"], "mftrun.cli"),  # caught by __main__
        (["-m", "mftrun"], "mftrun.commands.apply"),  # caught by cli while building the parser
        (["-m", "mftrun"], "mftrun.console"),  # caught by apply's signal guard during set-up
        (["-c", AS_CONSOLE_SCRIPT], "mftrun.commands.apply"),
        (["-c", AS_CONSOLE_SCRIPT], "mftrun.console"),
    ],
)
def test_ctrl_c_inside_code_run_from_a_string_still_exits_130(tmp_path, launch, module):
    """CPython remembers a KeyboardInterrupt that left code run by exec() of a string, even one
    caught later, and ends the process by SIGINT (exit -2) instead of its exit code (seed 1003
    of the fault campaign: a Ctrl-C 0.3 s into apply). mftrun's exit code must still be 130."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(SIGINT_INSIDE_EXEC))
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}",
        "SIGINT_AT": module,
        "MFTRUN_STATE": str(tmp_path / "state.db"),
    }
    pipeline = root / "examples" / "quickstart.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            *launch,
            "apply",
            str(pipeline),
            "--emulate",
            "--report-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    # said by cli/__main__ ("interrupted") or, when the held Ctrl-C reached the run's own
    # guard after set-up's import ended, by the guard
    assert "interrupted" in proc.stderr or "SIGINT received" in proc.stderr


def test_ctrl_c_while_the_login_check_waits_on_a_silent_platform_exits_at_once(tmp_path):
    """Two environments whose token endpoint accepts the connection and never answers (read
    timeout 60 s): Ctrl-C during the login check exits 130 in seconds, not after the timeout
    (the check's workers were joined at interpreter exit)."""
    import socket
    import threading

    held: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as silent, emulator() as emu:
        silent.settimeout(0.2)
        done = threading.Event()

        def accept() -> None:
            while not done.is_set():
                with contextlib.suppress(OSError):
                    held.append(silent.accept()[0])

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        steps = [
            {"id": "settled", "environment": "backup", "wait_tasks": {"state": "started"}},
            {"id": "pull", "needs": ["settled"], "start_task": TASK},
        ]
        path = write_pipeline(tmp_path, emu, url, steps, timeout=60)
        report = tmp_path / "r"
        proc = apply(path, emu, report, "--no-state")
        try:
            deadline = time.monotonic() + 30
            while len(held) < 2 and time.monotonic() < deadline:  # both token requests wait
                time.sleep(0.05)
            assert len(held) == 2, "the login check never reached the silent platform"
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            signalled = time.monotonic()
            _, err = proc.communicate(timeout=50)
            took = time.monotonic() - signalled
        finally:
            done.set()
            proc.kill()
            for conn in held:
                conn.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert took < 20, f"exit took {took:.1f} s after Ctrl-C: it waited for the platform"
    assert not (report / "report.json").exists()  # nothing was started: no report, as documented


def test_sigterm_while_building_the_parser_exits_143_without_a_traceback(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(SIGINT_ON_IMPORT))
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}",
        "SIGINT_AT": "mftrun.commands.apply",
        "SIG": "SIGTERM",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mftrun", "validate", "nothing.yaml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr and "terminated" in proc.stderr
