"""Provider pieces that need no server: spec checking, ids, nanosecond timestamps."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mftrun.credentials import Redactor
from mftrun.errors import InputError
from mftrun.model import Environment
from mftrun.actions import Where, parse_rendered
from mftrun.providers.acronis.provider import TaskWait
from mftrun.providers.acronis.tasks import parse_timestamp, task_key
from mftrun.providers.automate_mft.provider import _run_from_spec as _mft_run
from mftrun.providers.registry import create_provider
from mftrun.providers.session import http_handle as _http_handle


def _wait_from_spec(raw: dict) -> TaskWait:
    """The run-time path: the rendered mapping parsed by the action, then the provider's handle."""
    return TaskWait.of(parse_rendered("wait_tasks", {"state": "started", **raw}, Where("w")))


def _run_from_spec(raw: dict):
    return _mft_run(parse_rendered("start_task", raw, Where("s", "automate-mft")))


def http_handle(raw: dict):
    return _http_handle(parse_rendered("http", raw, Where("h", "acronis")))


def test_nanosecond_timestamps_are_parsed_exactly():
    when, nanos = parse_timestamp("2020-04-22T11:34:03.290396913Z")
    assert when == datetime(2020, 4, 22, 11, 34, 3, 290396, tzinfo=timezone.utc)
    assert nanos == 290396913
    when, nanos = parse_timestamp("2020-04-22T13:34:03.5+02:00")
    assert (
        when == datetime(2020, 4, 22, 11, 34, 3, 500000, tzinfo=timezone.utc)
        and nanos == 500_000_000
    )
    assert parse_timestamp("2020-04-22T11:34:03Z")[1] == 0
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


def test_task_ids_above_two_to_the_53_keep_every_digit():
    assert (
        task_key({"id": 944455285181775873, "idString": "944455285181775873"})
        == "944455285181775873"
    )
    assert task_key({"id": 944455285181775873}) == "944455285181775873"
    assert float(944455285181775873) != 944455285181775873  # why it matters
    assert task_key({}) is None


def test_wait_tasks_filters_become_repeated_parameters():
    wait = _wait_from_spec(
        {
            "type": "backup",
            "limit": 50,
            "accept_results": ["ok"],
            "completedAt": "gt(2020-04-22T11:00:00Z)",
        }
    )
    assert wait.params == [
        ("state", "started"),
        ("type", "backup"),
        ("completedAt", "gt(2020-04-22T11:00:00Z)"),
    ]
    assert wait.limit == 50 and wait.accept == frozenset({"ok"})
    assert _wait_from_spec({}).accept == frozenset({"ok", "warning"})
    with pytest.raises(InputError, match="limit"):
        _wait_from_spec({"limit": 0})
    with pytest.raises(InputError, match="accept_results"):
        _wait_from_spec({"accept_results": []})


def test_start_task_needs_exactly_one_of_id_and_name():
    run = _run_from_spec({"task_id": "abc"})
    assert (
        run.ident == {"task_id": "abc"} and run.success == {"success"} and run.failure == {"failed"}
    )
    run = _run_from_spec({"name": "Pull", "success_statuses": ["Success", "done"]})
    assert run.ident == {"name": "Pull"} and run.success == {"success", "done"}
    for bad in ({}, {"task_id": "a", "name": "b"}, {"task_id": ""}):
        with pytest.raises(InputError, match="task_id or name"):
            _run_from_spec(bad)


def test_http_spec_defaults_and_refusals():
    handle = http_handle({"path": "v1/licenses/current"})
    assert handle.method == "GET" and handle.path == "/v1/licenses/current"
    assert handle.expect == frozenset({200, 201, 202, 204}) and handle.until is None
    handle = http_handle(
        {
            "method": "put",
            "path": "/x",
            "query": {"a": [1, 2], "b": True},
            "headers": {"X-Y": 1},
            "expect": 202,
        }
    )
    assert handle.method == "PUT" and handle.query == [("a", "1"), ("a", "2"), ("b", "true")]
    assert handle.headers == {"X-Y": "1"} and handle.expect == frozenset({202})
    # refused, not silently dropped: validate refuses it too, so this is a bug if reached
    for name in ("Authorization", "host", "Content-Length"):
        with pytest.raises(InputError, match=f"header '{name}' is not allowed"):
            http_handle({"path": "/x", "headers": {name: "v"}})
    with pytest.raises(InputError, match="relative to the environment's base_url"):
        http_handle({"path": "https://evil.example/steal"})
    with pytest.raises(InputError, match="path"):
        http_handle({})


def test_nothing_is_read_or_sent_until_first_use():
    env = Environment("mft", "automate-mft", "https://api.us.mft.progress.com", {})
    provider = create_provider(env, redactor=Redactor())
    assert provider.stats() == {"token_requests": 0, "http_requests": 0}
    assert provider.http_calls(None) == 0 and provider.cancel(None) is False
    with pytest.raises(InputError, match="unknown provider"):
        create_provider(Environment("x", "ftp", "https://x", {}), redactor=Redactor())


def test_each_action_declares_the_outputs_its_platform_gives(tmp_path) -> None:
    """An action's module says what `steps.<id>.outputs` holds; a real run against the
    emulator gives exactly those names (plus the step's own `outputs:`)."""
    import json
    import subprocess
    import sys

    from mftrun.actions import REGISTRY

    pipeline = tmp_path / "outputs.yaml"
    pipeline.write_text(
        """version: 1
environments:
  mft:
    provider: automate-mft
    region: us
    credentials: {tenant_id: t, key_id: k, private_key: {env: K}}
  backup:
    provider: acronis
    base_url: https://eu2-cloud.acronis.com
    credentials: {client_id: c, client_secret: {env: S}}
steps:
  - {id: start, environment: mft, start_task: {name: Pull orders}}
  - {id: wait, environment: backup, wait_tasks: {state: [started]}}
  - {id: call, environment: mft, http: {path: /v1/licenses/current}}
""",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mftrun", "apply", str(pipeline), "--emulate", "-q", "--no-state",
         "--report-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    for step in report["steps"]:
        declared = REGISTRY[step["action"]].outputs
        given = set(step["outputs"])
        assert given <= declared, (step["id"], given - declared)
        # start_task has one of task_id/name; everything else is always there
        assert len(declared - given) <= (1 if step["action"] == "start_task" else 0)
