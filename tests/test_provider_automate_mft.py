"""Automate MFT provider against the emulator over real HTTP (the journal is the ground truth)."""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mftrun.credentials import Redactor
from mftrun.emulator import Emulator, Scenario
from mftrun.errors import (
    AmbiguousStartError,
    AuthError,
    CredentialError,
    NotFoundOnPlatform,
    RemoteError,
)
from mftrun.model import CredentialRef, Environment
from mftrun.providers.registry import create_provider

import kit  # noqa: E402
from kit import FAST_MFT, Ctx, mft_env, run_to_end  # noqa: E402

TASK = "02115928-16fe-4493-949b-d77d302a88ee"
FAST = FAST_MFT


def provider_for(env: Environment, redactor: Redactor | None = None, **kw):
    return create_provider(
        env, redactor=redactor or Redactor(), policies=kw.pop("policies", FAST), **kw
    )


def scenario(**extra) -> Scenario:
    data = {
        "speed": 50,
        "automate_mft": {
            "tasks": [
                {"id": TASK, "name": "Pull orders", "queue": "1s", "duration": "5s"},
                {
                    "id": "bad-task",
                    "outcome": "failed",
                    "queue": "1s",
                    "duration": "2s",
                    "message": "disk full",
                },
            ]
        },
    }
    data.update(extra)
    return Scenario.from_dict(data)


def test_start_by_id_runs_to_success_with_outputs(tmp_path):
    redactor = Redactor()
    with Emulator(scenario()) as emu:
        provider = provider_for(mft_env(emu, tmp_path), redactor)
        handle, first = kit.start(
            provider, "start_task", {"task_id": TASK, "parameters": {"FileMask": "*.csv"}}, Ctx()
        )
        assert first.state == "running" and first.run_id
        obs = run_to_end(provider, handle, first)
        assert obs.state == "success" and obs.remote_status == "success"
        assert obs.outputs["run_id"] == first.run_id and obs.outputs["task_id"] == TASK
        assert obs.outputs["status"] == "success" and obs.outputs["run"]["id"] == first.run_id
        runs = emu.journal.runs
        assert len(runs) == 1 and runs[0].parameters == {"FileMask": "*.csv"}
        assert emu.journal.tokens_issued("automate-mft") == 1
        assert provider.http_calls(handle) >= 2
        assert provider.stats()["token_requests"] == 1
        # The secrets of the session are registered for scrubbing.
        assert redactor.scrub(emu.credentials.private_key_pem).strip() == "***"
        provider.close()


def test_start_by_name_and_a_failed_run_carry_the_platform_message(tmp_path):
    with Emulator(scenario()) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        handle, first = kit.start(provider, "start_task", {"name": "Pull orders"}, Ctx())
        assert run_to_end(provider, handle, first).outputs["name"] == "Pull orders"
        handle, first = kit.start(provider, "start_task", {"task_id": "bad-task"}, Ctx())
        obs = run_to_end(provider, handle, first)
        assert obs.state == "failed" and obs.remote_status == "failed"
        assert "task bad-task run" in obs.message and "disk full" in obs.message


def test_custom_terminal_statuses(tmp_path):
    with Emulator(scenario()) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        handle, first = kit.start(
            provider, "start_task", {"task_id": TASK, "success_statuses": ["running"]}, Ctx()
        )
        obs = run_to_end(provider, handle, first)
        assert obs.state == "success" and obs.remote_status == "running"


def test_unknown_task_is_a_mistake_in_the_file_with_a_hint(tmp_path):
    with Emulator(scenario()) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        with pytest.raises(NotFoundOnPlatform) as caught:
            kit.start(provider, "start_task", {"task_id": "no-such-task"}, Ctx())
        assert caught.value.exit_code == 2
        assert "task no-such-task not found on" in str(caught.value)
        assert "check the task id in Automate MFT" in str(caught.value)


def test_the_assertion_passes_the_strict_check_and_check_describes_the_license(tmp_path):
    with Emulator(scenario()) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        line = provider.check()
        assert line.startswith("authenticated; license") and "Professional" in line
        assert emu.journal.tokens_issued("automate-mft") == 1


@pytest.mark.parametrize("what", ["key", "kid", "tenant"])
def test_wrong_key_kid_or_tenant_is_credentials_rejected(tmp_path, what):
    with Emulator(scenario()) as emu:
        overrides = {}
        if what == "key":
            other = (
                ec.generate_private_key(ec.SECP256R1())
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            )
            (tmp_path / "other.pem").write_text(other)
            overrides["private_key"] = CredentialRef("file", str(tmp_path / "other.pem"))
        elif what == "kid":
            overrides["key_id"] = CredentialRef("value", "not-the-key-id")
        else:
            overrides["tenant_id"] = CredentialRef("value", "not-the-tenant")
        provider = provider_for(mft_env(emu, tmp_path, **overrides))
        with pytest.raises(AuthError) as caught:
            provider.check()
        text = str(caught.value)
        assert (
            "credentials rejected" in text
            and "kid" in text
            and "must belong to the same API key" in text
        )
        assert caught.value.exit_code == 3
        assert emu.journal.tokens_issued("automate-mft") == 0


def test_missing_env_var_missing_file_and_unreadable_key(tmp_path):
    with Emulator(scenario()) as emu:
        env = mft_env(emu, tmp_path, key_id=CredentialRef("env", "MFT_KEY_ID_NOT_SET"))
        with pytest.raises(
            CredentialError, match="environment variable MFT_KEY_ID_NOT_SET is not set"
        ):
            provider_for(env, environ={}).check()
        env = mft_env(
            emu, tmp_path, private_key=CredentialRef("file", str(tmp_path / "missing.pem"))
        )
        with pytest.raises(CredentialError, match="missing.pem does not exist"):
            provider_for(env).check()
        (tmp_path / "garbage.pem").write_text(
            "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n"
        )
        env = mft_env(
            emu, tmp_path, private_key=CredentialRef("file", str(tmp_path / "garbage.pem"))
        )
        with pytest.raises(
            CredentialError, match="cannot be read: the PEM is damaged or not a private key"
        ):
            provider_for(env).check()
        assert emu.journal.request_count == 0


def test_a_429_storm_on_start_waits_for_retry_after_and_starts_once(tmp_path):
    faults = [
        {
            "kind": "rate_limit",
            "retry_after": 2,
            "times": 2,
            "burst": 2,
            "match": {"method": "POST", "path": f"/v1/tasks/{TASK}/start"},
        }
    ]
    with Emulator(scenario(faults=faults)) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        provider.check()  # token first, so the timings below are the start's own
        began = time.monotonic()
        handle, first = kit.start(provider, "start_task", {"task_id": TASK}, Ctx())
        elapsed = time.monotonic() - began
        assert first.run_id and elapsed >= 4.0  # two waits of Retry-After: 2
        starts = [r for r in emu.journal.requests if r.path == f"/v1/tasks/{TASK}/start"]
        assert [r.status for r in starts] == [429, 429, 200]
        assert starts[1].time - starts[0].time >= 1.9 and starts[2].time - starts[1].time >= 1.9
        assert len(emu.journal.runs) == 1 and emu.journal.starts(TASK) == 1
        assert provider.http_calls(handle) == 3


@pytest.mark.parametrize("kind", ["hang", "drop_response"])
def test_a_lost_start_answer_is_ambiguous_and_never_resent(tmp_path, kind):
    faults = [
        {
            "kind": kind,
            "hang_for": 3,
            "times": 1,
            "match": {"method": "POST", "path": f"/v1/tasks/{TASK}/start"},
        }
    ]
    with Emulator(scenario(faults=faults)) as emu:
        provider = provider_for(mft_env(emu, tmp_path, timeout=0.5))
        with pytest.raises(AmbiguousStartError) as caught:
            kit.start(provider, "start_task", {"task_id": TASK}, Ctx())
        text = str(caught.value)
        assert "may have started" in text and "did not send it again" in text
        starts = [r for r in emu.journal.requests if r.path == f"/v1/tasks/{TASK}/start"]
        assert len(starts) == 1
        if kind == "drop_response":
            assert emu.journal.starts(TASK) == 1 and len(emu.journal.runs) == 1


def test_token_revoked_while_20_threads_poll_costs_one_new_token(tmp_path):
    faults = [{"kind": "revoke_tokens", "at": "150s"}]  # 3 s of real time at speed 50
    data = {
        "speed": 50,
        "automate_mft": {"tasks": [{"id": TASK, "queue": "1s", "duration": "300s"}]},
        "faults": faults,
    }
    with Emulator(Scenario.from_dict(data)) as emu:
        provider = provider_for(mft_env(emu, tmp_path), max_parallel=20)
        runs = [kit.start(provider, "start_task", {"task_id": TASK}, Ctx()) for _ in range(20)]
        assert emu.journal.tokens_issued("automate-mft") == 1
        results: list = [None] * 20

        def watch(i: int) -> None:
            handle, first = runs[i]
            try:
                results[i] = run_to_end(provider, handle, first, limit=30)
            except Exception as exc:  # noqa: BLE001
                results[i] = exc

        threads = [threading.Thread(target=watch, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [getattr(r, "state", r) for r in results] == ["success"] * 20
        assert emu.journal.tokens_issued("automate-mft") == 2
        assert provider.stats()["token_requests"] == 2
        refused = [r for r in emu.journal.requests if r.status in (401, 403)]
        # The revocation really bit (how many pollers it catches before the renewal depends on
        # thread timing) and only the revoked token was ever refused: the renewed one worked.
        assert refused and {r.token for r in refused} == {"automate-mft#1"}


def test_5xx_after_retries_is_a_remote_error_naming_the_tries(tmp_path):
    faults = [
        {"kind": "error", "status": 503, "match": {"method": "GET", "path": "/v1/licenses/current"}}
    ]
    with Emulator(scenario(faults=faults)) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        with pytest.raises(RemoteError) as caught:
            provider.check()
        assert "answered 503 after 4 tries" in str(caught.value)
        assert len([r for r in emu.journal.requests if r.path == "/v1/licenses/current"]) == 4


def test_a_short_outage_while_polling_is_tolerated_a_few_times(tmp_path):
    # Each poll tries 3 times (POLL policy); 6 failures = two whole polls fail, the third recovers.
    faults = [
        {
            "kind": "error",
            "status": 502,
            "times": 6,
            "match": {"method": "GET", "path": "/v1/task-runs/*"},
        }
    ]
    with Emulator(scenario(faults=faults)) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        handle, _first = kit.start(provider, "start_task", {"task_id": TASK}, Ctx())
        obs = provider.poll(handle, Ctx())
        assert (
            obs.state == "running"
            and obs.retry_after == 5.0
            and "1 of 3 tolerated" in obs.remote_status
        )
        obs = provider.poll(handle, Ctx())
        assert obs.retry_after == 10.0 and "502" in obs.remote_status
        obs = run_to_end(provider, handle, provider.poll(handle, Ctx()))
        assert obs.state == "success"


def test_a_long_outage_while_polling_ends_in_a_remote_error(tmp_path):
    faults = [
        {"kind": "error", "status": 503, "match": {"method": "GET", "path": "/v1/task-runs/*"}}
    ]
    with Emulator(scenario(faults=faults)) as emu:
        provider = provider_for(mft_env(emu, tmp_path))
        handle, _first = kit.start(provider, "start_task", {"task_id": TASK}, Ctx())
        for _ in range(3):
            assert provider.poll(handle, Ctx()).state == "running"
        with pytest.raises(RemoteError, match="answered 503 after 3 tries"):
            provider.poll(handle, Ctx())


def test_apply_reports_a_lost_start_as_error_saying_the_task_may_have_started(tmp_path, capsys):
    """End to end through the executor: the step ends `error`, exit 3, the start sent once."""
    import json

    from mftrun.cli import main

    (tmp_path / "pipeline.yaml").write_text(f"""\
version: 1
name: lost-start
environments:
  mft:
    provider: automate-mft
    region: us
    timeout: 0.5s
    credentials:
      tenant_id: t
      key_id: k
      private_key: {{file: /nonexistent/replaced-by-emulate.pem}}
steps:
  - id: pull
    environment: mft
    start_task: {TASK}
""")
    (tmp_path / "scenario.yaml").write_text(f"""\
faults:
  - kind: hang
    hang_for: 2
    match: {{method: POST, path: /v1/tasks/{TASK}/start}}
""")
    code = main(
        [
            "apply",
            str(tmp_path / "pipeline.yaml"),
            "--emulate",
            "--scenario",
            str(tmp_path / "scenario.yaml"),
            "--report-dir",
            str(tmp_path / "report"),
            "--report",
            "json",
            "-q",
        ]
    )
    capsys.readouterr()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    step = report["steps"][0]
    assert code == 3 and step["status"] == "error"
    assert "may have started" in step["error"] and "did not send it again" in step["error"]
