"""The state store, one suite for both backends (SQLite file, real PostgreSQL server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mftrun.errors import EXIT_LOCKED, EXIT_PLATFORM, LockHeld, StateError
from mftrun.model import Action, CredentialRef, Environment, Pipeline, Poll, Step
from mftrun.state import history
from mftrun.state.store import SCHEMA_VERSION, RunInfo
from mftrun.state.url import open_store, shown

HOLDER = {"host": "box", "pid": 4242, "ci": "github org/repo#7", "since": "2026-12-02T10:00:00"}


def info(run_id: str, pipeline: str = "nightly", started: str = "2026-12-02T10:00:00") -> RunInfo:
    return RunInfo(run_id, pipeline, pipeline, "p.yaml", "ab" * 32, started, meta={"pid": 1})


def test_runs_and_steps_round_trip(store_url: str) -> None:
    store = open_store(store_url, None)
    store.begin_run(info("r1", started="2026-12-01T10:00:00"))
    store.begin_run(info("r2"))
    store.begin_run(info("x1", pipeline="other"))
    store.put_step("r2", "b", 1, {"id": "b", "status": "running"}, "t1")
    store.put_step("r2", "a", 0, {"id": "a", "status": "success", "outputs": {"n": "é"}}, "t1")
    store.put_step("r2", "b", 1, {"id": "b", "status": "failed"}, "t2")  # upsert, not a copy
    store.finish_run("r2", ended_at="2026-12-02T10:05:00", verdict="failed", exit_code=1)
    assert [r.id for r in store.runs("nightly")] == ["r2", "r1"]
    assert len(store.runs()) == 3 and store.runs("nightly", limit=1)[0].id == "r2"
    r2 = store.run("r2")
    assert r2 is not None and (r2.verdict, r2.exit_code, r2.meta) == ("failed", 1, {"pid": 1})
    assert store.steps("r2") == [
        {"id": "a", "status": "success", "outputs": {"n": "é"}},
        {"id": "b", "status": "failed"},
    ]
    assert store.run("nope") is None and store.steps("nope") == []
    assert store.step_counts(["r2"]) == {"r2": {"success": 1, "failed": 1}}
    store.close()
    again = open_store(store_url, None)  # reopening migrates nothing and keeps everything
    assert [r.id for r in again.runs("nightly")] == ["r2", "r1"]
    again.close()


def test_a_store_written_by_a_newer_mftrun_is_refused(store_url: str) -> None:
    store = open_store(store_url, None)
    with store._cursor("test") as cur:
        cur.execute(store._sql("INSERT INTO mftrun_schema (version) VALUES (?)"), (99,))
    store.close()
    with pytest.raises(StateError) as caught:
        open_store(store_url, None)
    assert (
        "newer mftrun" in caught.value.message and f"up to {SCHEMA_VERSION}" in caught.value.message
    )
    assert caught.value.exit_code == EXIT_PLATFORM


HOLD = textwrap.dedent(
    """
    import sys, time
    from mftrun.state.url import open_store
    store = open_store(sys.argv[1], None)
    with store.lock("nightly", {"host": "holder-box", "pid": 99, "since": "then"}, None):
        print("held", flush=True)
        time.sleep(60)
    """
)


def hold_lock(url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_is_exclusive_across_processes_and_dies_with_its_holder(store_url: str) -> None:
    holder = hold_lock(store_url)
    try:
        store = open_store(store_url, None)
        with pytest.raises(LockHeld) as caught, store.lock("nightly", HOLDER, None):
            pass
        message = str(caught.value)
        assert caught.value.exit_code == EXIT_LOCKED == 4
        assert "holder-box" in message and "pid 99" in message and "since then" in message
        with store.lock("another-key", HOLDER, None):
            pass  # other keys are free
        start = time.monotonic()
        with pytest.raises(LockHeld, match="waited 0.5s"), store.lock("nightly", HOLDER, 0.5):
            pass
        assert time.monotonic() - start >= 0.5
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up code of the holder runs
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # PostgreSQL notices the closed connection within moments
        try:
            with store.lock("nightly", HOLDER, None):
                break
        except LockHeld:
            assert time.monotonic() < deadline, "a killed holder left a stale lock"
            time.sleep(0.1)
    store.close()


def test_unlock_says_what_it_removes(store_url: str) -> None:
    holder = hold_lock(store_url)
    try:
        store = open_store(store_url, None)
        said = store.unlock("nightly")
        assert "nightly" in said and ("removed" in said or "ended" in said)
        assert "holder-box" in said
    finally:
        holder.kill()
        holder.wait()
    store.close()


WRITE = textwrap.dedent(
    """
    import sys
    from mftrun.state.store import RunInfo
    from mftrun.state.url import open_store
    store = open_store(sys.argv[1], None)
    run = sys.argv[2]
    store.begin_run(RunInfo(run, "p", "p", "f", "s", "2026-12-02T10:00:00"))
    for i in range(150):
        store.put_step(run, f"s{i % 30}", i % 30, {"id": f"s{i % 30}", "n": i}, "t")
    store.finish_run(run, ended_at="t", verdict="success", exit_code=0)
    """
)


def test_concurrent_writers_never_corrupt_the_store(store_url: str) -> None:
    open_store(store_url, None).close()  # created once, then raced
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITE, store_url, f"w{i}"], stderr=subprocess.PIPE)
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = open_store(store_url, None)
    assert sorted(r.id for r in store.runs()) == ["w0", "w1", "w2", "w3"]
    for run in ("w0", "w3"):
        steps = store.steps(run)
        assert len(steps) == 30 and steps[0] == {"id": "s0", "n": 120}
    store.close()


def test_a_corrupt_sqlite_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as caught:
        open_store(str(path), None)
    assert str(path) in caught.value.message and caught.value.exit_code == EXIT_PLATFORM


def test_an_unreachable_or_refusing_postgres_never_shows_its_password(
    postgres_server: str, tmp_path: Path
) -> None:
    from postgres_server import PASSWORD_USER

    host = postgres_server.split("host=")[1]
    wrong = f"postgresql://{PASSWORD_USER}:hunter2-wrong@/postgres?host={host}"
    with pytest.raises(StateError) as caught:
        open_store(wrong, None)
    assert "hunter2" not in str(caught.value) and "unreachable" in caught.value.message
    assert "***" in caught.value.message and caught.value.exit_code == EXIT_PLATFORM
    down = f"postgresql://u:hunter2@/postgres?host={tmp_path}"  # no server on that socket
    with pytest.raises(StateError) as caught:
        open_store(down, None)
    assert "hunter2" not in str(caught.value)
    assert shown("postgresql://u:pw@db.example:5433/x") == "postgresql://u:***@db.example:5433/x"


def test_the_right_password_works(postgres_server: str) -> None:
    from postgres_server import PASSWORD, PASSWORD_USER, fresh_database

    url = fresh_database(postgres_server).replace(
        f"postgresql://{postgres_server.split('//')[1].split('@')[0]}@",
        f"postgresql://{PASSWORD_USER}:{PASSWORD}@",
    )
    store = open_store(url, None)
    store.begin_run(info("r1"))
    assert store.run("r1") is not None and PASSWORD not in store.name
    store.close()


def test_unknown_store_kinds_and_the_default_place(tmp_path: Path) -> None:
    from mftrun.errors import UsageError
    from mftrun.state.url import default_path

    with pytest.raises(UsageError, match="unknown kind of store 'redis'"):
        open_store("redis://x", None)
    pipeline = tmp_path / "jobs" / "p.yaml"
    assert default_path(str(pipeline)) == (tmp_path / "jobs" / ".mftrun" / "state.db").resolve()
    os.makedirs(pipeline.parent)
    store = open_store(None, str(pipeline))
    assert (tmp_path / "jobs" / ".mftrun" / "state.db").exists()
    store.close()


def test_a_store_failing_mid_run_is_said_once_and_never_stops_the_run(tmp_path: Path) -> None:
    from mftrun.credentials import Redactor
    from mftrun.results import StepResult
    from mftrun.state.sqlite import SqliteStore
    from mftrun.state.store_recorder import StoreRecorder

    store = SqliteStore(tmp_path / "state.db")
    store.begin_run(info("r1"))
    said: list[str] = []
    recorder = StoreRecorder(store, "r1", {"a": 0}, Redactor(), on_failure=said.append)
    recorder.step_started("a", 1, "h")
    store.close()  # the store goes away under the run
    recorder.start_intent("a", 1)
    recorder.remote_run("a", 1, {"run_id": "R"})
    recorder.step_finished(StepResult(id="a", environment="mft", action="start_task"))
    assert len(said) == 1 and "the run goes on" in said[0] and str(tmp_path) in said[0]
    assert recorder.failed == said[0]


def test_apply_with_an_unreachable_store_starts_nothing_and_exits_3(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [
            sys.executable, "-m", "mftrun", "apply", str(root / "examples" / "quickstart.yaml"),
            "--emulate", "--report-dir", str(tmp_path / "r"),
            "--state", f"postgresql://ops:hunter2@/mftrun?host={tmp_path}",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "unreachable" in proc.stderr and "hunter2" not in proc.stderr + proc.stdout
    assert not (tmp_path / "r").exists()  # refused before anything: no report folder either


# -- history (issue 13): durations per environment identity + task ---------------------------


def mft_step(step_id: str, task: str, env: str = "mft") -> Step:
    return Step(step_id, Action("start_task", {"task_id": task}), env, 0)


def mft(name: str = "mft", url: str = "https://mft.example", tenant: str = "T1") -> Environment:
    creds = {
        "tenant_id": CredentialRef("env", "MFT_TENANT_ID"),
        "private_key": CredentialRef("file", "/keys/k.pem"),
    }
    return Environment(name, "automate-mft", url, creds)


def test_history_keeps_the_last_n_durations_per_key_newest_first(store_url: str) -> None:
    store = open_store(store_url, None)
    for n in range(5):
        history.record(
            store,
            "k1",
            run_id=f"r{n}",
            step_id="pull",
            attempt=1,
            ended_at=f"2026-12-0{n + 1}T03:00:00",
            seconds=600.0 + n,
            earliest=590.0 + n,
        )
    history.record(
        store, "k2", run_id="r0", step_id="push", attempt=1,
        ended_at="2026-12-01T03:00:00", seconds=42.0, earliest=40.0,
    )  # fmt: skip
    # the same attempt recorded again replaces itself (a resumed run's record is not a copy)
    history.record(
        store, "k1", run_id="r4", step_id="pull", attempt=1,
        ended_at="2026-12-05T03:00:00", seconds=700.0, earliest=690.0,
    )  # fmt: skip
    got = history.samples(store, ["k1", "k2", "k3"], limit=3)
    sample = history.Sample
    assert got == {
        "k1": [sample(700.0, 690.0), sample(603.0, 593.0), sample(602.0, 592.0)],
        "k2": [sample(42.0, 40.0)],
    }
    assert history.samples(store, ["k1"], limit=0) == {}
    many = [f"x{i}" for i in range(900)] + ["k2"]  # more keys than one IN list holds
    assert list(history.samples(store, many, limit=5)) == ["k2"]
    store.close()


def test_no_history_leaks_across_environments_or_tenants(store_url: str) -> None:
    environ = {"MFT_TENANT_ID": "T1"}
    pull = mft_step("pull", "task-a")
    base = history.history_key(pull, mft(), environ)
    assert base == history.history_key(pull, mft(), dict(environ))  # stable from run to run
    others = {
        history.history_key(pull, mft(name="staging"), environ),
        history.history_key(pull, mft(url="https://other.example"), environ),
        history.history_key(pull, mft(), {"MFT_TENANT_ID": "T2"}),  # same URL, other tenant
        history.history_key(mft_step("pull", "task-b"), mft(), environ),
    }
    assert base not in others and len(others) == 4
    assert history.history_key(mft_step("renamed", "task-a"), mft(), environ) == base
    short = Step("pull", Action("start_task", "task-a"), "mft", 0)  # `start_task: task-a`
    assert history.history_key(short, mft(), environ) == base
    written = {"task_id": "task-a", "parameters": {"N": 1}}
    with_params = Step("pull", Action("start_task", written), "mft", 0)
    assert history.history_key(with_params, mft(), environ) == base  # the task, not its inputs
    assert "T1" not in base and "example" not in base  # a hash: no URL or tenant in clear

    store = open_store(store_url, None)
    envs = {"prod": mft("prod"), "staging": mft("staging")}
    steps = (mft_step("p", "task-a", "prod"), mft_step("s", "task-a", "staging"))
    pipeline = Pipeline("n", "n.yaml", "0" * 64, envs, steps)
    keys = history.keys_of(pipeline, environ)
    history.record(
        store, keys["p"], run_id="r1", step_id="p", attempt=1,
        ended_at="2026-12-01T03:00:00", seconds=600.0, earliest=598.0,
    )  # fmt: skip
    book = history.read_book(store, pipeline, environ)
    assert book.expect("s") is None  # staging learns nothing from production
    expected = book.expect("p")
    assert expected is not None and (expected.runs, expected.p50, expected.earliest) == (
        1,
        600.0,
        598.0,  # the recorded bracket (598, 600] opens the window
    )
    other_tenant = history.read_book(store, pipeline, {"MFT_TENANT_ID": "T9"})
    assert other_tenant.expected == {}
    store.close()


def test_a_step_that_opts_out_has_no_history_and_learns_nothing(store_url: str) -> None:
    store = open_store(store_url, None)
    opted = replace(mft_step("p", "task-a", "prod"), poll=Poll(history=0))
    pipeline = Pipeline("n", "n.yaml", "0" * 64, {"prod": mft("prod")}, (opted,))
    book = history.read_book(store, pipeline, {}, run_id="r1")
    book.learned("p", 1, 10.0, 9.0, "2026-12-01T03:00:00")
    book.flush()
    assert book.keys == {} and history.samples(store, [], limit=5) == {}
    with store._cursor("count") as cur:
        cur.execute("SELECT COUNT(*) FROM mftrun_durations")
        assert cur.fetchone()[0] == 0
    store.close()


def test_a_run_writes_what_it_learned_in_one_go_when_it_ends(store_url: str) -> None:
    store = open_store(store_url, None)
    steps = (mft_step("a", "task-a"), mft_step("b", "task-b"))
    pipeline = Pipeline("n", "n.yaml", "0" * 64, {"mft": mft()}, steps)
    book = history.read_book(store, pipeline, {}, run_id="r1")
    assert book.expected == {} and set(book.keys) == {"a", "b"}
    book.learned("a", 1, 12.0, 13.0, "2026-12-01T03:00:00")  # a lower bound past the end: capped
    book.learned("b", 2, 30.0, 29.0, "2026-12-01T03:00:01")
    assert history.samples(store, book.keys.values(), limit=5) == {}  # nothing until the end
    book.flush()
    book.flush()  # twice: nothing written twice
    again = history.read_book(store, pipeline, {}, run_id="r2")
    a, b = again.expect("a"), again.expect("b")
    assert a is not None and (a.runs, a.p50, a.earliest) == (1, 12.0, 12.0)
    assert b is not None and (b.runs, b.latest, b.earliest) == (1, 30.0, 29.0)
    assert again.expected_total({"a": (), "b": ("a",)}) == 42.0  # the live line's expectation
    store.close()
