"""Acronis provider against the emulator: wait_tasks over pages, results, tokens, errors."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

import pytest

from mftrun.credentials import Redactor
from mftrun.emulator import Emulator, Scenario
from mftrun.errors import AuthError, CredentialError, RemoteError
from mftrun.model import Environment
from mftrun.providers.registry import create_provider

import kit  # noqa: E402
from kit import FAST_ACRONIS, Ctx, acronis_env, run_to_end  # noqa: E402

TASKS = "/api/task_manager/v2/tasks"
FAST = FAST_ACRONIS


def provider_for(emu: Emulator, env: Environment | None = None, **kw):
    environ = kw.pop("environ", {"ACRONIS_SECRET": emu.credentials.client_secret})
    return create_provider(
        env or acronis_env(emu),
        redactor=kw.pop("redactor", Redactor()),
        environ=environ,
        policies=kw.pop("policies", FAST),
        **kw,
    )


def one_by_one(bad_result: str = "error") -> Scenario:
    """Five backups finishing one by one (every 25 simulated seconds, i.e. 0.5 s at speed 50)."""
    tasks = [
        {
            "id": 944455285181775870 + i,
            "type": "backup",
            "started": 0,
            "completed": f"{25 * (i + 1)}s",
            "result": bad_result if i == 2 else "ok",
            "policy": {"id": f"p{i}", "name": f"Nightly {i}", "type": "backup"},
            "resource": {"id": f"r{i}", "name": f"db0{i}", "type": "machine"},
            "message": "the backup destination is full",
        }
        for i in range(5)
    ]
    tasks.append(
        {"id": 944455285181775999, "type": "replication", "started": 0, "completed": "400s"}
    )
    return Scenario.from_dict({"speed": 50, "acronis": {"tasks": tasks}})


def test_wait_tasks_names_the_task_that_ended_with_error(tmp_path):
    with Emulator(one_by_one()) as emu:
        provider = provider_for(emu)
        handle, first = kit.start(
            provider,
            "wait_tasks",
            {"type": "backup", "state": ["started", "enqueued"], "limit": 2},
            Ctx(),
        )
        assert first.state == "running" and "matching" in first.remote_status
        obs = run_to_end(provider, handle, first)
        assert obs.state == "failed"
        assert "944455285181775872" in obs.message and "result error" in obs.message
        assert "Nightly 2" in obs.message and "db02" in obs.message
        assert "the backup destination is full" in obs.message
        assert "944455285181775871" not in obs.message
        assert obs.outputs["count"] == 5
        assert obs.outputs["result_codes"]["944455285181775872"] == "error"
        assert obs.outputs["result_codes"]["944455285181775874"] == "ok"
        ids = {t["id"] for t in obs.outputs["tasks"]}
        assert ids == {str(944455285181775870 + i) for i in range(5)}  # exact 64-bit ids
        lookups = [r.path for r in emu.journal.requests if r.path.startswith(TASKS + "/")]
        assert sorted(set(lookups)) == sorted(f"{TASKS}/{i}" for i in ids)


def test_pages_are_followed_with_only_limit_and_after_and_filters_are_repeated(tmp_path):
    with Emulator(one_by_one()) as emu:
        provider = provider_for(emu)
        kit.start(
            provider,
            "wait_tasks",
            {"type": "backup", "state": ["started", "enqueued"], "limit": 2},
            Ctx(),
        )
        lists = [parse_qsl(r.query) for r in emu.journal.requests if r.path == TASKS]
        assert lists[0] == [
            ("type", "backup"),
            ("state", "started"),
            ("state", "enqueued"),
            ("limit", "2"),
        ]
        assert len(lists) == 3  # 5 tasks, 2 per page
        for follow_up in lists[1:]:
            assert [k for k, _ in follow_up] == ["limit", "after"]


def test_warning_is_accepted_by_default_and_accept_results_is_configurable(tmp_path):
    with Emulator(one_by_one(bad_result="warning")) as emu:
        provider = provider_for(emu)
        handle, first = kit.start(
            provider, "wait_tasks", {"type": "backup", "state": "started"}, Ctx()
        )
        strict, strict_first = kit.start(
            provider,
            "wait_tasks",
            {"type": "backup", "state": "started", "accept_results": ["ok"]},
            Ctx(),
        )
        obs = run_to_end(provider, handle, first)
        assert obs.state == "success" and obs.outputs["count"] == 5
        obs = run_to_end(provider, strict, strict_first)
        assert obs.state == "failed" and "944455285181775872" in obs.message
        assert "result warning" in obs.message and "(ok)" in obs.message


def test_nothing_matching_succeeds_at_once_with_zero_tasks(tmp_path):
    with Emulator(one_by_one()) as emu:
        provider = provider_for(emu)
        _handle, obs = kit.start(provider, "wait_tasks", {"type": "no-such-type"}, Ctx())
        assert obs.state == "success" and obs.outputs == {
            "tasks": [],
            "result_codes": {},
            "count": 0,
        }


def test_check_and_a_single_token_for_many_calls(tmp_path):
    with Emulator(one_by_one()) as emu:
        provider = provider_for(emu)
        assert provider.check().startswith("authenticated")
        handle, first = kit.start(
            provider, "wait_tasks", {"type": "backup", "state": "started"}, Ctx()
        )
        run_to_end(provider, handle, first)
        assert emu.journal.tokens_issued("acronis") == 1
        lists = [parse_qsl(r.query) for r in emu.journal.requests if r.path == TASKS]
        assert lists[0] == [("limit", "1")]


def test_a_short_lived_token_is_renewed_and_the_wait_goes_on(tmp_path):
    scenario = Scenario.from_dict(
        {
            "speed": 50,
            "acronis": {
                "token_lifetime": "60s",
                "tasks": [{"type": "backup", "started": 0, "completed": "150s"}],
            },
        }
    )
    with Emulator(scenario) as emu:
        provider = provider_for(emu)
        handle, first = kit.start(provider, "wait_tasks", {"state": "started"}, Ctx())
        obs = run_to_end(provider, handle, first)
        assert obs.state == "success"
        assert emu.journal.tokens_issued("acronis") >= 2


def test_wrong_secret_is_credentials_rejected_and_missing_secret_is_named(tmp_path):
    with Emulator(one_by_one()) as emu:
        provider = provider_for(emu, environ={"ACRONIS_SECRET": "wrong-secret-value"})
        with pytest.raises(AuthError, match="credentials rejected"):
            provider.check()
        provider = provider_for(emu, environ={})
        with pytest.raises(CredentialError, match="ACRONIS_SECRET is not set"):
            provider.check()


def test_missing_scope_is_permission_denied(tmp_path):
    scenario = Scenario.from_dict({"acronis": {"clients": [{"scopes": []}]}})
    with Emulator(scenario) as emu:
        with pytest.raises(AuthError) as caught:
            provider_for(emu).check()
        assert "permission denied" in str(caught.value) and "task_manager" in str(caught.value)


def test_5xx_is_retried_twice_then_reported(tmp_path):
    faults = [{"kind": "error", "status": 502, "match": {"platform": "acronis", "path": TASKS}}]
    with Emulator(Scenario.from_dict({"faults": faults})) as emu:
        with pytest.raises(RemoteError, match="answered 502 after 3 tries"):
            provider_for(emu).check()
        assert len([r for r in emu.journal.requests if r.path == TASKS]) == 3


def test_429_while_polling_is_handed_back_as_retry_after(tmp_path):
    faults = [
        {
            "kind": "rate_limit",
            "retry_after": 7,
            "skip": 1,
            "times": 1,
            "match": {"platform": "acronis", "path": TASKS},
        }
    ]
    with Emulator(
        Scenario.from_dict(
            {
                "speed": 50,
                "faults": faults,
                "acronis": {"tasks": [{"type": "backup", "started": 0, "completed": "400s"}]},
            }
        )
    ) as emu:
        provider = provider_for(emu)
        handle, _first = kit.start(provider, "wait_tasks", {"state": "started"}, Ctx())
        began = time.monotonic()
        obs = provider.poll(handle, Ctx())
        assert obs.state == "running" and obs.retry_after == 7.0
        assert time.monotonic() - began < 1.0  # did not sleep inside poll
