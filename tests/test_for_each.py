"""for_each (issue 16): expansion and naming as units; static and dynamic groups end to end.

End to end means real HTTP to the emulator on 127.0.0.1 and the journal as ground truth:
every instance starts its task once, with its own item."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from mftrun import expand
from mftrun.cli import main
from mftrun.emulator import Emulator, Scenario
from mftrun.plan import build_plan
from mftrun.reports import report_schema
from mftrun.reports.github import annotation_lines
from mftrun.validation import load_pipeline, validate_bytes

TASK = "00000000-0000-4000-8000-000000000001"
FANIN = "00000000-0000-4000-8000-000000000002"
BAD = "00000000-0000-4000-8000-000000000003"

HEAD = """\
version: 1
environments:
  mft:
    provider: automate-mft
    region: us
    credentials: {tenant_id: t, key_id: k, private_key: {env: KEY}}
defaults: {environment: mft}
"""


def build(steps: str, top: str = "") -> tuple[object, list]:
    text = HEAD + top + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  ")
    return validate_bytes(text.encode(), "p.yaml")


def messages(steps: str, top: str = "") -> list[str]:
    pipeline, problems = build(steps, top)
    assert pipeline is None
    return [f"{p.line}:{p.column} {p.message}" for p in problems]


# -- naming and expansion (units) ---------------------------------------------------------------


def test_items_of_a_list_a_mapping_and_a_list_of_mappings() -> None:
    assert [i.key for i in expand.items_of(["acme", "globex", 7])] == ["acme", "globex", "7"]
    mapped = expand.items_of({"acme": {"host": "a"}, "globex": {"host": "g"}})
    assert [(i.key, i.value) for i in mapped] == [
        ("acme", {"key": "acme", "value": {"host": "a"}}),
        ("globex", {"key": "globex", "value": {"host": "g"}}),
    ]
    records = expand.items_of([{"id": "t-1", "x": 1}, {"name": "n2"}])
    assert [i.key for i in records] == ["t-1", "n2"]
    assert expand.items_of('["a", "b"]')[1].key == "b"  # --var values are text
    assert expand.instance_id("push", "acme") == "push[acme]"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["a", "a"], "items 0 and 1 are both named [a]"),
        (["a b"], "item 0 would be named ['a b']"),
        (["x]\x1b[31m"], "item 0 would be named"),
        ([{"host": "h"}], "item 0 is a mapping without an id or name"),
        ([None], "item 0 is nothing (null)"),
        ("acme", "for_each gave the text 'acme', not a list"),
        (5, "for_each gave the number 5, not a list or a mapping"),
        (list(range(expand.MAX_INSTANCES + 1)), "at most 10,000"),
    ],
)
def test_bad_item_lists_are_refused_with_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(expand.ExpandError, match=None) as caught:
        expand.items_of(value)
    assert message in str(caught.value)


def test_min_items() -> None:
    assert expand.items_of([], min_items=0) == ()
    with pytest.raises(expand.ExpandError, match="min_items is 1"):
        expand.items_of([], min_items=1)


def test_a_static_group_becomes_instances_and_needs_on_it_need_them_all() -> None:
    pipeline, problems = build(
        """\
        - id: first
          start_task: {name: first}
        - id: push
          needs: [first]
          for_each: [acme, globex]
          max_parallel: 1
          start_task: {name: "push-{{ item }}"}
        - id: report
          needs: [push]
          start_task: {name: "n{{ steps.push.outputs | length }}"}
        """
    )
    assert problems == []
    steps = {s.id: s for s in pipeline.steps}  # type: ignore[attr-defined]
    assert list(steps) == ["first", "push[acme]", "push[globex]", "report"]
    assert steps["push[acme]"].needs == ("first",)
    assert steps["push[acme]"].item == "acme" and steps["push[acme]"].group == "push"
    assert steps["report"].needs == ("push[acme]", "push[globex]")
    assert [s.index for s in pipeline.steps] == [0, 1, 2, 3]  # type: ignore[attr-defined]
    plan = build_plan(pipeline)  # type: ignore[arg-type]
    assert plan.levels == (("first",), ("push[acme]", "push[globex]"), ("report",))


def test_bad_input_is_a_positioned_error_at_validate_time() -> None:
    found = messages(
        """\
        - id: dup
          for_each: [acme, globex, acme]
          start_task: {name: "x{{ item }}"}
        - id: empty-needed
          for_each: []
          min_items: 1
          start_task: {name: x}
        - id: lone
          max_parallel: 2
          start_task: {name: "{{ item }}"}
        - id: text
          for_each: acme
          start_task: {name: x}
        - id: from-vars
          for_each: "{{ vars.partner }}"
          start_task: {name: x}
        """,
        top="vars: {partner: acme}\n",
    )
    assert found == [
        "11:30 step 'dup': items 0 and 2 are both named [acme]: items must differ",
        "14:15 step 'empty-needed': for_each gave 0 items; min_items is 1",
        "18:5 step 'lone': max_parallel is for for_each groups only",
        "19:24 template uses unknown name 'item'",
        "21:15 step 'text': for_each 'acme' is text, not a list",
        "24:15 step 'from-vars': for_each gave the text 'acme', not a list "
        "(with the vars written in this file)",
    ]


def test_an_item_of_a_mapping_is_key_and_value_in_templates() -> None:
    pipeline, problems = build(
        """\
        - id: push
          for_each: {acme: {host: a.example}, globex: {host: g.example}}
          start_task: {name: "push-{{ item.key }}", parameters: {host: "{{ item.value.host }}"}}
        """
    )
    assert problems == []
    assert [s.item["key"] for s in pipeline.steps] == ["acme", "globex"]  # type: ignore[attr-defined]


# -- end to end under the emulator --------------------------------------------------------------


@pytest.fixture
def platform():
    started: list[Emulator] = []

    def start(**scenario: object) -> Emulator:
        emu = Emulator(Scenario.from_dict({"seed": 3, "speed": 50, **scenario})).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


def apply(
    tmp_path: Path, emu: Emulator, steps: str, *, args: tuple[str, ...] = (), top: str = ""
) -> tuple[int, dict]:
    key = tmp_path / "mft.pem"
    key.write_text(emu.credentials.private_key_pem or "")
    key.chmod(0o600)
    secret = tmp_path / "acronis-secret"
    secret.write_text(emu.credentials.client_secret)
    text = textwrap.dedent(f"""\
        version: 1
        name: fan
        environments:
          mft:
            provider: automate-mft
            base_url: {emu.url}
            credentials:
              tenant_id: {emu.credentials.tenant_id}
              key_id: {emu.credentials.key_id}
              private_key: {{file: {key}}}
          backup:
            provider: acronis
            base_url: {emu.url}
            credentials:
              client_id: {emu.credentials.client_id}
              client_secret: {{file: {secret}}}
        defaults:
          environment: mft
          poll: {{interval: 0.05, max_interval: 0.2}}
        """)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text + top + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  "))
    reports = tmp_path / "report"
    code = main(["apply", str(path), "--report-dir", str(reports), "-q", *args])
    return code, json.loads((reports / "report.json").read_text())


def mft_tasks(*ids: str, **behaviour: object) -> dict:
    return {"automate_mft": {"tasks": [{"id": i, "duration": 2, **behaviour} for i in ids]}}


def test_a_static_group_runs_each_item_once_and_the_fan_in_reads_every_output(
    platform, tmp_path
) -> None:
    emu = platform(**mft_tasks(TASK, FANIN))
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: push
          for_each: [acme, globex, initech]
          max_parallel: 2
          start_task: {{task_id: {TASK}, parameters: {{partner: "{{{{ item }}}}"}}}}
          outputs: {{partner: "{{{{ item }}}}", run: "{{{{ result.run_id }}}}"}}
        - id: report
          needs: [push]
          start_task:
            task_id: {FANIN}
            parameters:
              partners: "{{{{ steps.push.outputs.values() | map(attribute='partner')
                | join(',') }}}}"
              count: "{{{{ steps.push.count }}}}"
        """,
    )
    assert code == 0, report
    steps = {s["id"]: s for s in report["steps"]}
    assert list(steps) == ["push[acme]", "push[globex]", "push[initech]", "report"]
    assert {s["status"] for s in steps.values()} == {"success"}
    assert emu.journal.starts(TASK) == 3 and emu.journal.starts(FANIN) == 1
    assert [steps[f"push[{p}]"]["outputs"]["partner"] for p in ("acme", "globex", "initech")] == [
        "acme",
        "globex",
        "initech",
    ]
    assert steps["report"]["attempts"][0]["parameters"] == {
        "partners": "acme,globex,initech",
        "count": 3,
    }
    # max_parallel 2 on the group: the third starts only after one of the first two ended
    third = steps["push[initech]"]["started_at"]
    assert third >= min(steps["push[acme]"]["ended_at"], steps["push[globex]"]["ended_at"])


def test_a_failed_instance_fails_the_group_and_the_failure_branch_runs(platform, tmp_path) -> None:
    emu = platform(
        automate_mft={
            "tasks": [
                {"id": TASK, "duration": 1},
                {"id": BAD, "duration": 1, "outcome": "failed", "message": "disk full"},
                {"id": FANIN, "duration": 1},
            ]
        }
    )
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: push
          for_each: [{{id: good, task: {TASK}}}, {{id: bad, task: {BAD}}}]
          start_task: "{{{{ item.task }}}}"
        - id: after
          needs: [push]
          start_task: {FANIN}
        - id: alert
          needs: [push]
          run_if: failure
          start_task: {FANIN}
        """,
    )
    statuses = {s["id"]: s["status"] for s in report["steps"]}
    assert statuses == {
        "push[good]": "success",
        "push[bad]": "failed",
        "after": "skipped",
        "alert": "success",
    }
    assert code != 0
    assert emu.journal.starts(FANIN) == 1
    # instance ids in every report: the JSON report's schema takes them, JUnit names its
    # testcases by them, the annotation sits on the group's line and names the instance
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    junit = ET.parse(tmp_path / "report" / "junit.xml").getroot()
    names = [c.get("name") for c in junit.iter("testcase")]
    assert sorted(names) == sorted(statuses) and names[0] == "push[bad]"  # failures first
    (annotation,) = annotation_lines(report, {})
    assert (
        annotation.startswith("::error file=") and ",line=21,col=5," in annotation
    )  # `- id: push`
    assert "push[bad]" in annotation and "disk full" in annotation


def test_dynamic_fan_out_over_the_tasks_a_wait_returned(platform, tmp_path) -> None:
    backups = [
        {
            "type": "backup",
            "enqueued": "-10m",
            "started": "-5m",
            "completed": "1m",
            "result": "ok",
            "policy": {"id": "p-1", "name": "Nightly", "type": "policy.protection.total"},
            "resource": {"id": f"r-{n}", "name": f"host-{n}", "type": "machine"},
        }
        for n in range(3)
    ]
    emu = platform(acronis={"tasks": backups}, **mft_tasks(TASK, FANIN))
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: backups
          environment: backup
          wait_tasks: {{policyName: Nightly, state: [enqueued, assigned, started, paused]}}
        - id: verify
          needs: [backups]
          for_each: "{{{{ steps.backups.outputs.tasks }}}}"
          start_task: {{task_id: {TASK}, parameters: {{backup: "{{{{ item.id }}}}"}}}}
          outputs: {{checked: "{{{{ item.id }}}}"}}
        - id: summary
          needs: [verify]
          start_task:
            task_id: {FANIN}
            parameters: {{n: "{{{{ steps.verify.outputs | length }}}}"}}
        """,
    )
    assert code == 0, report
    ids = [s["id"] for s in report["steps"]]
    seen = [
        t["id"]
        for t in next(s for s in report["steps"] if s["id"] == "backups")["outputs"]["tasks"]
    ]
    assert len(seen) == 3
    # the group is reported as its instances, as a group written in the file
    assert ids == ["backups", *[f"verify[{t}]" for t in seen], "summary"]
    steps = {s["id"]: s for s in report["steps"]}
    assert [steps[f"verify[{t}]"]["attempts"][0]["parameters"] for t in seen] == [
        {"backup": t} for t in seen
    ]
    assert emu.journal.starts(TASK) == 3
    assert steps["summary"]["attempts"][0]["parameters"] == {"n": 3}


def test_a_dynamic_list_that_is_not_a_list_is_the_groups_error(platform, tmp_path) -> None:
    emu = platform(**mft_tasks(TASK))
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: first
          start_task: {TASK}
        - id: fan
          needs: [first]
          for_each: "{{{{ steps.first.outputs.status }}}}"
          start_task: {TASK}
        """,
    )
    fan = next(s for s in report["steps"] if s["id"] == "fan")
    assert fan["status"] == "error"
    assert "for_each '{{ steps.first.outputs.status }}'" in fan["error"]
    assert "not a list" in fan["error"]
    assert code == 2  # an error of the file's logic: EXIT_INVALID
    assert emu.journal.starts(TASK) == 1


def test_an_empty_dynamic_list_is_a_group_of_zero_that_succeeds_and_says_so(
    platform, tmp_path
) -> None:
    emu = platform(**mft_tasks(TASK))
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: fan
          for_each: "{{{{ vars.partners }}}}"
          start_task: {TASK}
        - id: after
          needs: [fan]
          start_task: {TASK}
        """,
        top="vars: {partners: [a]}\n",
        args=("--var", "partners=[]"),
    )
    assert code == 0, report
    steps = {s["id"]: s for s in report["steps"]}
    assert list(steps) == ["fan", "after"]
    assert steps["fan"]["status"] == "success"
    assert emu.journal.starts(TASK) == 1


def test_the_plan_shows_a_dynamic_group_as_one_node_decided_at_run_time(tmp_path, capsys) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        HEAD
        + textwrap.dedent("""\
        steps:
          - id: first
            start_task: {name: first}
          - id: fan
            needs: [first]
            for_each: "{{ steps.first.outputs.list }}"
            start_task: {name: "{{ item }}"}
        """)
    )
    pipeline = load_pipeline(path)
    assert [s.id for s in pipeline.steps] == ["first", "fan"]
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fan" in out and "x N, decided at run time" in out
    assert main(["graph", str(path)]) == 0
    assert "x N, decided at run time" in capsys.readouterr().out


def test_an_empty_list_in_the_file_is_a_group_of_zero_that_says_so(platform, tmp_path) -> None:
    emu = platform(**mft_tasks(TASK))
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: fan
          for_each: []
          start_task: {TASK}
        - id: after
          needs: [fan]
          start_task: {TASK}
        """,
    )
    assert code == 0, report
    steps = {s["id"]: s for s in report["steps"]}
    assert list(steps) == ["fan", "after"]
    assert steps["fan"]["status"] == "success" and steps["fan"]["attempts"] == []
    assert emu.journal.starts(TASK) == 1
    pipeline = load_pipeline(tmp_path / "pipeline.yaml")
    assert expand.describe(pipeline.steps[0]) == "for_each over an empty list: no instances"


def test_a_dynamic_group_holds_no_slot_and_run_if_is_per_instance(platform, tmp_path) -> None:
    """max_parallel 1: a group that held a slot would never let its instances start."""
    emu = platform(**mft_tasks(TASK))
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: fan
          for_each: "{{{{ vars.partners }}}}"
          run_if: "{{{{ item != 'skipme' }}}}"
          start_task: {{task_id: {TASK}, parameters: {{p: "{{{{ item }}}}"}}}}
        - id: fixed
          for_each: [one, skipme, two]
          run_if: "{{{{ item != 'skipme' }}}}"
          start_task: {{task_id: {TASK}, parameters: {{p: "{{{{ item }}}}"}}}}
        """,
        top="max_parallel: 1\nvars: {partners: [a, skipme, b]}\n",
    )
    assert code == 0, report
    statuses = {s["id"]: s["status"] for s in report["steps"]}
    assert statuses == {
        "fan[a]": "success",
        "fan[skipme]": "skipped",
        "fan[b]": "success",
        "fixed[one]": "success",
        "fixed[skipme]": "skipped",
        "fixed[two]": "success",
    }
    started = [
        (s["started_at"], s["ended_at"])
        for s in report["steps"]
        if s["attempts"] and "[" in s["id"]
    ]
    started.sort()
    assert all(b[0] >= a[1] for a, b in zip(started, started[1:], strict=False))  # one at a time
    assert emu.journal.starts(TASK) == 4


def test_a_dynamic_group_is_counted_and_reported_as_its_instances(
    platform, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """As a group written in the file: one failed instance is one failure (totals, JUnit, one
    annotation), an instance waited for what its group waited for, a step that needs the
    group waited for each instance, and the group's verdict is told after its last end."""
    emu = platform(
        automate_mft={
            "tasks": [
                {"id": TASK, "duration": 1},
                {"id": BAD, "duration": 2, "outcome": "failed", "message": "disk full"},
                {"id": FANIN, "duration": 1},
            ]
        }
    )
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: list
          start_task: {FANIN}
          outputs: {{jobs: "{{{{ ['{TASK}', '{BAD}'] }}}}"}}
        - id: push
          needs: [list]
          for_each: "{{{{ steps.list.outputs.jobs }}}}"
          start_task: "{{{{ item }}}}"
        - id: alert
          needs: [push]
          run_if: failure
          start_task: {FANIN}
        """,
    )
    assert code == 1
    rows = {s["id"]: s for s in report["steps"]}
    assert list(rows) == ["list", f"push[{TASK}]", f"push[{BAD}]", "alert"]  # no group row
    assert report["totals"]["failed"] == 1 and report["totals"]["success"] == 3
    assert rows[f"push[{BAD}]"]["needs"] == ["list"]
    assert rows["alert"]["needs"] == [f"push[{TASK}]", f"push[{BAD}]"]
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    junit = ET.parse(tmp_path / "report" / "junit.xml").getroot()
    assert junit.get("failures") == "1" and len(list(junit.iter("testcase"))) == 4
    assert len([a for a in annotation_lines(report, {}) if a.startswith("::error")]) == 1
    out = capsys.readouterr().out
    instance_end = out.index(f"push[{BAD}]")
    group_end = out.index("push                     failed")
    assert instance_end < group_end, out


def test_a_written_list_over_the_maximum_says_how_many_items_it_has() -> None:
    items = ", ".join(f"p{i}" for i in range(10_001))
    found = messages(f"  - id: push\n    for_each: [{items}]\n    start_task: {TASK}\n")
    assert found == ["10:15 step 'push' for_each has 10,001 items; at most 10,000"], found


def test_an_item_filtered_out_by_run_if_does_not_hold_the_fan_in_back(platform, tmp_path) -> None:
    """run_if on item as a filter: the group succeeds when the instances that ran succeeded,
    static and dynamic alike, and a step that needs it runs (it is skipped only when every
    instance was)."""
    emu = platform(**mft_tasks(TASK, FANIN))
    code, report = apply(
        tmp_path,
        emu,
        f"""\
        - id: fan
          for_each: "{{{{ vars.partners }}}}"
          run_if: "{{{{ item != 'skipme' }}}}"
          start_task: {{task_id: {TASK}, parameters: {{p: "{{{{ item }}}}"}}}}
        - id: fixed
          for_each: [one, skipme, two]
          run_if: "{{{{ item != 'skipme' }}}}"
          start_task: {{task_id: {TASK}, parameters: {{p: "{{{{ item }}}}"}}}}
        - id: none
          for_each: [skipme]
          run_if: "{{{{ item != 'skipme' }}}}"
          start_task: {TASK}
        - id: after
          needs: [fan, fixed]
          start_task:
            task_id: {FANIN}
            parameters: {{seen: "{{{{ steps.fixed.outcome }}}} {{{{ steps.fan.outcome }}}}"}}
        - id: after_none
          needs: [none]
          start_task: {FANIN}
        """,
        top="vars: {partners: [a, skipme]}\n",
    )
    assert code == 0, report
    steps = {s["id"]: s for s in report["steps"]}
    assert steps["after"]["status"] == "success"
    assert steps["after"]["attempts"][0]["parameters"] == {"seen": "success success"}
    assert steps["after_none"]["status"] == "skipped"  # every instance of `none` was skipped
    assert emu.journal.starts(TASK) == 3 and emu.journal.starts(FANIN) == 1


def test_every_bad_item_of_a_written_list_is_said_at_its_own_position() -> None:
    found = messages(
        "  - id: k\n"
        '    for_each: [" lead", "a[b", true, {id: {x: 1}}, ok, ok]\n'
        f"    start_task: {TASK}\n"
    )
    found.sort(key=lambda f: int(f.split(" ")[0].split(":")[1]))
    assert [f.split(" step ")[0] for f in found] == ["10:16", "10:25", "10:32", "10:38", "10:56"]
    assert "item 3's id is a mapping" in found[3] and "items 4 and 5" in found[4]
