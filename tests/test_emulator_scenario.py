"""Scenario loading and validation, the in-process API, and `mftrun emulate`."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests

from mftrun.emulator import Emulator, Scenario, SteppedClock, load_scenario
from mftrun.errors import InputError, ValidationFailed

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_example_scenarios_load_and_serve(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.source == str(path)
    with Emulator(scenario) as emu:
        assert requests.get(f"{emu.url}/_emulator/health", timeout=5).status_code == 200


def test_there_are_example_scenarios() -> None:
    assert len(SCENARIOS) >= 3


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, where, words",
    [
        ("speed: 2\nspeed: 3\n", ":2:1:", "duplicate key"),
        ("automate_mft:\n  tasks:\n    - id: a\n      outcome: maybe\n", ":4:16:", "outcome"),
        ("faults:\n  - kind: meteor\n", ":2:11:", "kind"),
        ("faults:\n  - kind: error\n    status: 404\n", ":3:13:", "5xx"),
        ("automate_mft:\n  tasks:\n    - id: a\n      duration: soon\n", ":4:17:", "duration"),
        ("acronis:\n  tasks:\n    - started: 1h\n      completed: 5m\n", ":3:7:", "timeline"),
        ("speed: [\n", ":2:1:", "YAML syntax"),
        ("faults:\n  - kind: revoke_tokens\n", ":2:5:", "at"),
        ("automate_mft:\n  tasks:\n    - id: a\n    - id: a\n", ":4:7:", "duplicate task id"),
        ("surprise: 1\n", ":1:1:", "surprise"),
        ("speed: .nan\n", ":1:8:", "not a usable time scale"),
        ("speed: .inf\n", ":1:8:", "not a usable time scale"),
        ("automate_mft:\n  tenants:\n    - keys:\n        - private_key: nope\n", ":4:11:", "PEM"),
    ],
)
def test_bad_scenarios_name_file_line_column(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    message = str(info.value)
    assert f"{path}{where}" in message, message
    assert words in message
    assert "Traceback" not in message


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")


def test_from_dict_errors_name_the_path() -> None:
    with pytest.raises(ValidationFailed, match=r"faults\[0\]"):
        Scenario.from_dict({"faults": [{"kind": "rate_limit", "every": 0}]})


def test_default_scenario_is_deterministic() -> None:
    a, b = Scenario.default(), Scenario.default()
    assert a.mft_tenants == b.mft_tenants and a.acronis_clients == b.acronis_clients
    assert a.mft_tenants[0].keys[0].algorithm == "ES256" and a.speed == 1
    assert Scenario.from_dict({"seed": 5}).mft_tenants != a.mft_tenants


def test_private_key_file_relative_to_the_scenario(tmp_path: Path) -> None:
    key_pem = Scenario.default().mft_tenants[0].keys[0].private_key_pem
    assert key_pem
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k.pem").write_text(key_pem)
    path = write(
        tmp_path,
        "automate_mft:\n  tenants:\n    - id: t\n      keys:\n"
        "        - {id: k, private_key_file: keys/k.pem}\n",
    )
    key = load_scenario(path).mft_tenants[0].keys[0]
    assert key.private_key_pem == key_pem and key.algorithm == "ES256"


def test_credentials_and_write_credentials(tmp_path: Path) -> None:
    with Emulator() as emu:
        creds = emu.credentials
        env = emu.write_credentials(tmp_path / "creds")
        assert set(env) == {
            "MFT_TENANT_ID",
            "MFT_KEY_ID",
            "MFT_PRIVATE_KEY_FILE",
            "ACRONIS_CLIENT_ID",
            "ACRONIS_CLIENT_SECRET",
        }
        key_file = Path(env["MFT_PRIVATE_KEY_FILE"])
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text() == creds.private_key_pem
        assert creds.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8
        assert (
            env["MFT_TENANT_ID"] == creds.tenant_id
            and env["ACRONIS_CLIENT_SECRET"] == creds.client_secret
        )
        assert emu.url == f"http://127.0.0.1:{emu.port}"


def _token(emu: Emulator) -> str:
    creds = emu.credentials
    now = int(time.time())
    text = jwt.encode(
        {
            "iss": creds.tenant_id,
            "sub": creds.tenant_id,
            "aud": f"{emu.url}/v1/oauth/token",
            "exp": now + 60,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
        },
        creds.private_key_pem,
        algorithm="ES256",
        headers={"kid": creds.key_id},
    )
    return requests.post(
        f"{emu.url}/v1/oauth/token",
        timeout=5,
        json={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": text,
        },
    ).json()["access_token"]


def test_ensure_mft_task_defaults_and_keeps_scenario_tasks() -> None:
    scenario = Scenario.from_dict(
        {
            "speed": 1000,
            "automate_mft": {
                "token_lifetime": "10h",
                "tasks": [{"id": "defined", "outcome": "failed", "queue": 0, "duration": 1}],
            },
        }
    )
    clock = SteppedClock()
    with Emulator(scenario, clock=clock) as emu:
        emu.ensure_mft_task(task_id="defined")  # already defined: keeps failing
        emu.ensure_mft_task(task_id="added")
        emu.ensure_mft_task(name="By name")
        hdrs = {"Authorization": f"bearer {_token(emu)}"}
        defined = requests.post(
            f"{emu.url}/v1/tasks/defined/start", headers=hdrs, timeout=5
        ).json()["id"]
        added = requests.post(f"{emu.url}/v1/tasks/added/start", headers=hdrs, timeout=5).json()[
            "id"
        ]
        by_name = requests.post(
            f"{emu.url}/v1/tasks/start", params={"name": "By name"}, headers=hdrs, timeout=5
        )
        assert by_name.status_code == 200
        assert (
            requests.post(
                f"{emu.url}/v1/tasks/start", params={"name": "Other"}, headers=hdrs, timeout=5
            ).status_code
            == 404
        )
        first = requests.get(f"{emu.url}/v1/task-runs/{added}", headers=hdrs, timeout=5).json()
        assert first["status"]["taskRunStatus"] == "queued"  # ~0.2 s real, whatever the speed
        clock.advance(1.4)
        views = {
            run: requests.get(f"{emu.url}/v1/task-runs/{run}", headers=hdrs, timeout=5).json()
            for run in (defined, added)
        }
        assert views[defined]["status"]["taskRunStatus"] == "failed"
        assert views[added]["status"]["taskRunStatus"] == "success"
        assert {r.task_id for r in emu.journal.runs} >= {"defined", "added"}


def test_loopback_only() -> None:
    with pytest.raises(ValueError):
        Emulator(host="0.0.0.0")


def test_many_concurrent_keep_alive_clients() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with Emulator() as emu:

        def client(_: int) -> int:
            with requests.Session() as session:
                return sum(
                    session.get(f"{emu.url}/_emulator/health", timeout=10).status_code == 200
                    for _ in range(5)
                )

        with ThreadPoolExecutor(max_workers=200) as pool:
            assert sum(pool.map(client, range(200))) == 1000
        assert emu.journal.connections == 200


def test_emulate_command_prints_block_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    scenario = ROOT / "scenarios" / "nightly-exchange.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mftrun",
            "emulate",
            "--scenario",
            str(scenario),
            "--credentials-dir",
            str(tmp_path / "creds"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        out = "".join(lines)
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", out).group(1)
        assert (
            "environments:" in out
            and "provider: automate-mft" in out
            and "provider: acronis" in out
        )
        # the block names variables only; env.sh and the printed exports carry the values
        assert "base_url: {env: MFT_BASE_URL}" in out and "{env: MFT_TENANT_ID}" in out
        assert "private_key: {file: {env: MFT_PRIVATE_KEY_FILE}}" in out
        assert f"export MFT_BASE_URL={url}" in out
        assert "export MFT_PRIVATE_KEY_FILE=" in out
        assert (tmp_path / "creds" / "mft-private-key.pem").exists()
        assert "export ACRONIS_CLIENT_SECRET" in (tmp_path / "creds" / "env.sh").read_text()
        assert requests.get(f"{url}/_emulator/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert "stopped:" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_emulate_command_bad_scenario_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "speed: fast\n")
    result = subprocess.run(
        [sys.executable, "-m", "mftrun", "emulate", "--scenario", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert f"{path}:1:8" in result.stderr and "Traceback" not in result.stderr
