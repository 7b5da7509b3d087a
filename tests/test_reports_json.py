"""report.json: schema, atomic writing, formats, and every key described by the schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from mftrun.errors import InputError, MftrunError, UsageError
from mftrun.reports import FILENAMES, build_report, load_report, report_schema, write_reports
from mftrun.results import Status

try:
    from test_reports_samples import ALL, failure_run, interrupt_run, success_run, timeout_run
except ImportError:  # tests/ made a package later
    from tests.test_reports_samples import ALL, failure_run, interrupt_run, success_run, timeout_run


@pytest.mark.parametrize("name", ["success", "failure", "timeout", "interrupt"])
def test_written_json_validates_and_matches_the_run(name: str, tmp_path: Path) -> None:
    result = ALL[name]()
    paths = write_reports(result, report_dir=tmp_path / "out" / "nested")
    assert set(paths) == {"json", "html", "junit"}
    data = json.loads(paths["json"].read_text("utf-8"))
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    assert data["report_version"] == 1
    assert data["pipeline"] == "nightly-transfers"
    assert data["sha256"] == "ab" * 32
    assert data["exit_code"] == result.exit_code
    assert [s["id"] for s in data["steps"]] == [s.id for s in result.steps]
    assert sum(data["totals"].values()) == len(result.steps)
    assert data == build_report(result)
    # one step per line: readable in a diff, and written with json's fast encoder
    lines = paths["json"].read_text("utf-8").splitlines()
    assert [
        json.loads(line.strip().rstrip(","))["id"]
        for line in lines
        if line.startswith('    {"id": ')
    ] == [s.id for s in result.steps]


def test_timeout_report_names_the_remote_run_left_going() -> None:
    data = build_report(timeout_run())
    step = next(s for s in data["steps"] if s["id"] == "big-transfer")
    assert step["status"] == "timed_out"
    assert step["remote_may_continue"] == ["7f3e0c2a-0000-4000-8000-000000000001"]
    assert step["attempts"][0]["remote_status"] == "running"
    assert data["totals"]["timed_out"] == 1 and data["totals"]["skipped"] == 1


def test_interrupt_report_keeps_unfinished_attempts_and_pending_steps() -> None:
    data = build_report(interrupt_run())
    assert data["interrupted"] is True and data["exit_code"] == 130
    assert data["steps"][0]["attempts"][0]["ended_at"] is None
    assert data["steps"][2]["status"] == "pending"


def test_failure_report_has_attempts_outcome_and_conclusion() -> None:
    data = build_report(failure_run())
    orders, invoices = data["steps"][0], data["steps"][1]
    assert [a["number"] for a in orders["attempts"]] == [1, 2, 3]
    assert orders["http_calls"] == 31 and orders["duration"] == 150.0
    assert (invoices["outcome"], invoices["conclusion"]) == ("failed", "success")


def test_schema_declares_every_key_the_report_has() -> None:
    """Unknown keys are allowed for readers, but ours must all be described."""
    schema = report_schema()
    data = build_report(failure_run())
    assert set(data) <= set(schema["properties"])
    assert set(data["steps"][0]) <= set(schema["$defs"]["step"]["properties"])
    assert set(data["steps"][0]["attempts"][0]) <= set(schema["$defs"]["attempt"]["properties"])
    assert set(data["totals"]) == {s.value for s in Status}


def test_schema_rejects_a_wrong_status() -> None:
    data = build_report(success_run())
    data["steps"][0]["status"] = "great"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(report_schema()).validate(data)


def test_outputs_that_are_not_json_become_text() -> None:
    result = success_run()
    result.steps[0].outputs = {"when": result.started_at, "path": Path("/a/b"), "ok": True}
    data = build_report(result)
    assert data["steps"][0]["outputs"] == {
        "when": "2026-11-23 09:00:00+00:00",
        "path": "/a/b",
        "ok": True,
    }


def test_only_the_chosen_formats_are_written(tmp_path: Path) -> None:
    paths = write_reports(success_run(), report_dir=tmp_path, formats=("junit",))
    assert paths == {"junit": tmp_path / "junit.xml"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml"]
    assert write_reports(success_run(), report_dir=tmp_path / "none", formats=()) == {}


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="pdf"):
        write_reports(success_run(), report_dir=tmp_path, formats=("json", "pdf"))


def test_rewrite_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    write_reports(failure_run(), report_dir=tmp_path)
    before = (tmp_path / "report.json").stat().st_ino
    write_reports(success_run(), report_dir=tmp_path)
    assert (tmp_path / "report.json").stat().st_ino != before  # a new file renamed over the old
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILENAMES.values())
    assert oct((tmp_path / "report.html").stat().st_mode & 0o777) == "0o644"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(MftrunError, match="cannot write .*report.json"):
            write_reports(success_run(), report_dir=locked)
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_report_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(MftrunError, match="cannot create report folder"):
        write_reports(success_run(), report_dir=tmp_path / "f")


def test_load_report_round_trip_and_errors(tmp_path: Path) -> None:
    paths = write_reports(timeout_run(), report_dir=tmp_path, formats=("json",))
    assert load_report(paths["json"])["pipeline"] == "nightly-transfers"
    with pytest.raises(InputError, match="no such file"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match=r"bad.json:1:2: not valid JSON"):
        load_report(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"report_version": 1}')
    with pytest.raises(InputError, match="not an mftrun report"):
        load_report(tmp_path / "other.json")
    with pytest.raises(InputError, match="is a folder"):
        load_report(tmp_path)
