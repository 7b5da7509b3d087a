"""Validation end to end: every invalid fixture reports exactly its expected problems, at
their line and column; valid fixtures build the model the rest of mftrun relies on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mftrun.errors import InputError, ValidationFailed
from mftrun.providers.catalog import MFT_REGIONS
from mftrun.validation import check_paths, load_pipeline, validate_bytes

FIXTURES = Path(__file__).parent / "fixtures"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
EXAMPLE = Path(__file__).parent.parent / "examples" / "nightly-exchange.yaml"
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.*)$", re.M)


def expected(path: Path) -> list[tuple[int, int, str]]:
    return [(int(line), int(col), text) for line, col, text in EXPECT.findall(path.read_text())]


def test_there_is_a_fixture_per_error_class() -> None:
    names = {p.stem for p in INVALID}
    for required in (
        "yaml-syntax",
        "duplicate-key",
        "unknown-field",
        "wrong-type",
        "duplicate-step-id",
        "unknown-need",
        "self-need",
        "cycle",
        "unknown-environment",
        "missing-environment",
        "provider-action",
        "inline-secret",
        "bad-duration",
        "template-syntax",
        "template-unknown-step",
        "template-not-upstream",
        "no-action",
        "two-actions",
        "bad-region",
        "plain-http",
    ):
        assert required in names
    assert all(expected(p) for p in INVALID), "every invalid fixture states its expectation"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_reports_message_line_and_column(path: Path) -> None:
    _, problems = check_paths([str(path)])
    got = [(p.line, p.column, p.message) for p in problems]
    assert got == expected(path)
    assert all(p.file == str(path) for p in problems)
    with pytest.raises(ValidationFailed) as info:
        load_pipeline(path)
    assert [(p.line, p.column) for p in info.value.problems] == [e[:2] for e in expected(path)]
    assert info.value.exit_code == 2


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_fixture_builds(path: Path) -> None:
    pipeline = load_pipeline(path)
    assert pipeline.steps
    assert [s.index for s in pipeline.steps] == list(range(len(pipeline.steps)))


def test_example_model_is_filled_faithfully() -> None:
    p = load_pipeline(EXAMPLE)
    assert p.name == "nightly-exchange" and p.version == 1 and p.max_parallel == 8
    assert p.description.startswith("Wait for backups")
    import hashlib

    assert p.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    mft, backup = p.environments["mft"], p.environments["backup"]
    assert mft.base_url == MFT_REGIONS["us"] and mft.region == "us"
    assert backup.base_url == "https://eu2-cloud.acronis.com" and backup.region is None
    assert mft.credentials["private_key"].kind == "file"
    assert mft.credentials["private_key"].ref == "~/.config/mftrun/mft.pem"
    assert mft.credentials["tenant_id"].kind == "env"
    assert mft.credentials["tenant_id"].ref == "MFT_TENANT_ID"
    assert (mft.credentials["key_id"].position.line, mft.credentials["key_id"].position.column) == (
        12,
        15,
    )
    assert (mft.position.line, backup.position.line) == (7, 14)
    ids = [s.id for s in p.steps]
    assert ids == ["backups-settled", "pull-orders", "push-invoices", "archive", "notify-failure"]
    settled, pull, push, archive, notify = p.steps
    assert settled.environment == "backup" and settled.timeout == 7200
    assert settled.action.kind == "wait_tasks"
    assert settled.action.spec.filters == (("state", "started"), ("state", "paused"))
    assert settled.action.spec.accept_results == ("ok", "warning")
    assert pull.action.kind == "start_task"
    assert pull.action.spec.task_id == "02115928-16fe-4493-949b-d77d302a88ee"
    assert (pull.action.position.line, pull.action.position.column) == (34, 5)
    assert (pull.position.line, pull.position.column) == (33, 5)
    assert pull.environment == "mft" and pull.timeout == 1800  # defaults merged
    assert pull.poll.interval == 2 and pull.poll.max_interval == 30 and pull.poll.factor == 1.1
    assert pull.retries.attempts == 2 and pull.retries.delay == 60
    assert push.timeout == 900 and push.needs == ("pull-orders",)
    assert archive.continue_on_error and not push.continue_on_error
    assert notify.run_if.kind == "failure" and notify.needs == ("push-invoices", "archive")
    assert [s.index for s in p.steps] == [0, 1, 2, 3, 4]


def test_defaults_merge_field_by_field_and_action_defaults() -> None:
    p = load_pipeline(Path(__file__).parent.parent / "examples" / "retries-and-polling.yaml")
    quick, big, no_retry = p.steps
    assert quick.poll.interval == 0.5 and quick.poll.max_interval == 60 and quick.poll.factor == 1.5
    assert big.retries.attempts == 3 and big.retries.delay == 30 and big.retries.backoff == 2
    assert big.timeout == 7200  # from a YAML merge key
    assert no_retry.retries.attempts == 0 and no_retry.timeout == 900
    http = load_pipeline(FIXTURES / "valid" / "loopback-http.yaml")
    run, poll, after, lookup = http.steps
    assert run.action.spec.method == "PUT"
    assert run.action.spec.json["policy_id"] == "{{ vars.policy }}"
    assert poll.action.spec.method == "GET"
    assert sorted(poll.action.spec.expect) == [200, 201, 202, 204]
    assert poll.action.spec.until.startswith("response.json")
    assert after.action.spec.name == "Tidy up" and after.action.spec.task_id is None
    assert after.action.spec.success_statuses == ("success",)
    assert after.action.spec.failure_statuses == ("failed",)
    assert after.run_if.kind == "expression" and "steps['run-plan']" in after.run_if.expression
    assert lookup.action.spec.filters == (("resultCode", "error"),)  # one value
    envs = http.environments
    assert envs["local"].base_url == "http://127.0.0.1:8080"
    assert envs["local"].http_timeout == 10 and envs["local"].ca_bundle.endswith(".crt")
    assert envs["local6"].base_url == "http://[::1]:9000"
    assert envs["local6"].credentials["client_id"].kind == "value"
    assert dict(http.vars)["nested"] == {"list": [1, 2, 3]}
    assert run.outputs == {"code": "{{ response.status_code }}"}


def test_all_problems_of_all_files_in_one_run(tmp_path: Path) -> None:
    bad = sorted((FIXTURES / "invalid").glob("*.yaml"))[:5]
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    for path in bad:
        (nested / path.name).write_bytes(path.read_bytes())
    (tmp_path / "ok.yml").write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "notes.txt").write_text("not yaml")
    files, problems = check_paths([str(tmp_path)])
    assert len(files) == 6
    assert {Path(p.file).name for p in problems} == {p.name for p in bad}
    assert len(problems) == sum(len(expected(p)) for p in bad)


def test_many_errors_in_one_file_are_all_reported(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    text = text.replace("region: us", "region: mars").replace("timeout: 2h", "timeout: 2 hours")
    text = text.replace(
        "needs: [pull-orders]\n    timeout: 15m", "needs: [pull-order]\n    timeout: 15m"
    )
    text = text.replace("run_if: failure", "run_if: failed")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    _, problems = check_paths([str(path)])
    messages = " | ".join(p.message for p in problems)
    assert len(problems) == 4, messages
    for part in ("region 'mars'", "not a duration", "unknown step 'pull-order'", "run_if 'failed'"):
        assert part in messages


def test_unreadable_inputs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_pipeline(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="is a folder"):
        load_pipeline(tmp_path)
    files, problems = check_paths([str(tmp_path / "missing.yaml"), str(tmp_path)])
    assert files == [] and len(problems) == 2


def test_not_utf8_is_a_positioned_problem() -> None:
    _, problems = validate_bytes(b"version: 1\nname: caf\xe9\n", "x.yaml")
    assert [(p.line, p.column, p.message) for p in problems] == [
        (2, 10, "the file is not UTF-8 text")
    ]


def test_schema_invalid_document_still_gets_semantic_checks(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("max_interval: 30s}", "max_interval: 30s, bogus: 1}")
    text = text.replace("needs: [push-invoices, archive]", "needs: [push-invoices, archive, nope]")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    _, problems = check_paths([str(path)])
    messages = [p.message for p in problems]
    assert any("unknown field 'bogus'" in m for m in messages)
    assert any("unknown step 'nope'" in m for m in messages)


def test_hyphenated_step_reference_gets_a_helpful_hint(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace(
        "    needs: [push-invoices, archive]\n",
        '    needs: [push-invoices, archive]\n    outputs: {x: "{{ steps.push-invoices.status '
        '}}"}\n',
    )
    path = tmp_path / "p.yaml"
    path.write_text(text)
    _, problems = check_paths([str(path)])
    assert len(problems) == 1
    assert problems[0].message == "template refers to unknown step 'push'"
    assert problems[0].hint == "a step id with '-' is written steps['push-invoices']"


def test_hints_for_a_misspelled_template_name_and_an_unquoted_64_bit_id() -> None:
    from mftrun.validation import check_paths

    _, problems = check_paths(
        [
            str(FIXTURES / "invalid" / "template-unknown-name.yaml"),
            str(FIXTURES / "invalid" / "wait-tasks-numeric-id.yaml"),
        ]
    )
    hints = {p.message: p.hint for p in problems}
    assert hints["template uses unknown name 'reslt'"] == "did you mean 'result'?"
    assert hints["template uses unknown name 'env'"].startswith(
        "names available here: steps, vars;"
    )
    assert (
        hints["step 'one-backup' wait_tasks.id must be a string or a list, not a whole number"]
        == "quote it: '4557086697777291245'"
    )


def test_a_file_named_twice_is_checked_once() -> None:
    from mftrun.validation import pipeline_files

    folder = FIXTURES / "valid"
    one = sorted(folder.glob("*.yaml"))[0]
    files, problems = pipeline_files([str(folder), str(one), str(one)])
    assert problems == []
    assert (
        len(files)
        == len({f.resolve() for f in files})
        == len(list(pipeline_files([str(folder)])[0]))
    )
