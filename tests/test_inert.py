"""Issue 15, items 1 and 2: text mftrun did not write is printed as one inert line.

Hostile text (workflow commands after a newline, terminal escapes, C1 controls,
bidi overrides, lone surrogates) goes in through every door: a real hostile
platform over HTTP, the pipeline file, file names, a report read back. What comes
out is checked where people and runners read it: no printed line begins with `::`
unless mftrun wrote that annotation, no control character reaches the terminal,
and the reports are always written and valid against their schema.
"""

from __future__ import annotations

import io
import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_server import CLIENT_ID, CLIENT_SECRET, PIPELINE, Hostility, hostile_server
from mftrun.cli import main
from mftrun.inert import GuardedStream, encodable, inert, inert_json, inert_lines

ROOT = Path(__file__).resolve().parent.parent

# Every character that must never reach a terminal raw: C0 but newline, DEL, C1, line and
# paragraph separators, bidi controls, lone surrogates.
CONTROL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# An annotation mftrun wrote: its kind, position properties, an mftrun title, a message.
OURS = re.compile(
    r"::(error|warning) file=[^\s:,]*(,line=\d+)?(,col=\d+)?"
    r",title=mftrun(%3A| validate)[^\n]*::[^\n]*"
    r"|::warning::mftrun could not write the job summary[^\n]*"
)
HOSTILE = [
    "boom\n::add-mask::hunter2",
    "x\r\n::stop-commands::pwned",
    "  ::error file=a,line=1::injected",
    "\x1b]0;owned title\x07",
    "\x1b]52;c;ZXZpbA==\x07",  # OSC 52: write the clipboard
    "\x1b[2J\x1b[H",  # clear the screen
    "\x9b31m",  # C1 CSI
    "\u202eevil\u202c",
    "lone \ud800 surrogate \udfff",
    "##[set-output name=x]y",
    "\u00ad::warning::soft hyphen first",
    "\u2028::notice::line separator",
    "![img](http://evil.example/x.png) [link](http://evil.example) # heading <b>x</b>",
]


def assert_inert_output(text: str, *, annotations: bool = False) -> None:
    """The properties every line mftrun prints must have."""
    for line in text.split("\n"):
        assert not CONTROL.search(line), f"control character in {line!r}"
        bare = line.lstrip()
        if bare.startswith("::"):
            assert annotations and OURS.fullmatch(bare), f"injected workflow command: {line!r}"
        assert "##[" not in line, f"legacy workflow command in {line!r}"


# --------------------------------------------------------------------------- the function


@pytest.mark.parametrize("text", HOSTILE)
def test_inert_makes_one_line_that_cannot_act(text: str) -> None:
    out = inert(text)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out
    assert_inert_output(out)
    assert inert(out) == out  # idempotent: inert twice is inert once
    out.encode("utf-8")  # a lone surrogate no longer fails the encoder


def test_inert_shows_what_was_sent() -> None:
    assert inert("a\nb\r\x1b[2J\x00\ud800") == "a\\nb\\r\\x1b[2J\\x00\\ud800"
    assert inert(" ::add-mask::x") == " \\x3a:add-mask::x"
    assert (
        inert("plain text, ünïcödé, emoji 🚀 and a::b") == "plain text, ünïcödé, emoji 🚀 and a::b"
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_inert_property_any_text(text: str) -> None:
    out = inert(text)
    assert_inert_output(out)
    out.encode("utf-8")
    assert inert(out) == out
    for line in inert_lines(text).split("\n"):
        assert_inert_output(line)


def test_inert_json_keeps_json_valid_and_terminal_safe() -> None:
    data = {"m": "\x9b2J \u2028 \ud800 \x7f ok"}
    text = inert_json(json.dumps(data, ensure_ascii=False, indent=2))
    assert not CONTROL.search(text)
    assert json.loads(text)["m"] == data["m"]


def test_guarded_stream_defuses_a_wrapped_line() -> None:
    sink = io.StringIO()
    stream = GuardedStream(sink)
    stream.write("table cell text\n    ::add")
    stream.write("-mask::x\nend")
    stream.flush()
    assert sink.getvalue() == "table cell text\n    \\x3a:add-mask::x\nend"


def test_encodable_only_replaces_lone_surrogates() -> None:
    assert encodable("line\nnext \ud800") == "line\nnext \\ud800"


# --------------------------------------------------------------------------- the pipeline file

HOSTILE_PIPELINE = """\
version: 1
name: "nightly\\n::warning::INJECTED\\u001b]0;t\\u0007"
environments:
  mft:
    provider: automate-mft
    region: us
    credentials:
      tenant_id: {env: MFT_TENANT_ID}
      key_id: {env: MFT_KEY_ID}
      private_key: {file: ~/k.pem}
defaults: {environment: mft}
steps:
  - id: pull
    start_task: {name: "name\\n::error::FROM_TASK\\u009b2J"}
  - id: alert
    needs: [pull]
    run_if: "{{ 'x\\n::warning::RUN_IF' == 'y' }}"
    start_task: 0f1e2d3c-4b5a-4697-8887-a6b5c4d3e2f1
"""


@pytest.mark.parametrize(
    "argv",
    [["plan"], ["plan", "--format", "json"], ["graph", "--format", "dot"], ["graph"]],
    ids=["plan", "plan-json", "graph-dot", "graph-mermaid"],
)
def test_pipeline_text_is_inert_in_plan_and_graph(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(HOSTILE_PIPELINE)
    code = main([argv[0], str(file), *argv[1:]])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_inert_output(out)
    assert "RUN_IF" in out  # shown, escaped, not dropped
    if argv == ["plan"]:
        assert "nightly\\n::warning::INJECTED\\x1b]0;t\\x07" in out
        assert "FROM_TASK" in out


def test_hostile_file_name_and_problem_are_inert_in_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    bad = folder / "x\n::warning::FROM_FILENAME\x1b[2J.yaml"
    bad.write_text("version: 1\nname: n\nsteps: [{id: 'a\\n::error::IN_ID'}]\n")
    for fmt in ("text", "github", "json"):
        code = main(["validate", str(folder), "--format", fmt])
        out, err = capsys.readouterr()
        assert code == 2
        assert_inert_output(out, annotations=fmt == "github")
        assert_inert_output(err)
        assert "FROM_FILENAME" in out


def test_hostile_pipeline_error_on_stderr_is_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "y\n::add-mask::FROM_NAME.yaml"
    bad.write_text("version: 1\nname: n\nsteps: []\n")
    assert main(["plan", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert_inert_output(out + err)
    assert "FROM_NAME" in err


# --------------------------------------------------------------------------- a hostile platform


def run_apply(
    hostility: Hostility,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str, Path, Path]:
    """`mftrun apply` in this process against the hostile platform, as in GitHub Actions."""
    summary = tmp_path / "summary.md"
    summary.write_text("")
    monkeypatch.setenv("HOSTILE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("HOSTILE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    reports = tmp_path / "reports"
    with hostile_server(hostility) as url:
        file = tmp_path / "hostile.yaml"
        file.write_text(PIPELINE.format(url=url))
        code = main(["apply", str(file), "--no-state", "--report-dir", str(reports)])
    out, err = capsys.readouterr()
    return code, out, err, reports, summary


class _Html(HTMLParser):
    pass


def assert_reports_valid(reports: Path) -> dict:
    schema = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
    data = json.loads((reports / "report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)
    ET.parse(reports / "junit.xml")
    _Html().feed((reports / "report.html").read_text(encoding="utf-8"))
    return data


def assert_summary_is_text(summary: Path) -> None:
    from markdown_it import MarkdownIt

    raw = summary.read_text(encoding="utf-8")
    rendered = MarkdownIt("commonmark").enable("table").render(raw)
    # GitHub also links bare URLs and www. names (GFM autolinks): never left intact.
    assert not re.search(r"https?://|www\.", raw)
    for tag in ("<img", "<a ", "<h1", "<h2", "<h4", "<b>", "<script", "<em", "<strong"):
        assert tag not in rendered, f"{tag} rendered from platform text"


def test_hostile_platform_text_is_inert_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hostility = Hostility(
        task_id="7\n::add-mask::TASKID",
        state="started\n::stop-commands::STATE\x1b]0;t\x07",
        type="backup\r\n::error::TYPE\x9b2J",
        policy="![x](http://evil.example/p.png)\n# HEADING",
        code="error\n::warning::CODE",
        reason="disk \ud800 full\n::add-mask::REASON\x1b]52;c;ZXZpbA==\x07 [a](http://x.example)",
        http_body=b"\x1b[2J\n::stop-commands::BODY\n<script>alert(1)</script>\xff",
        http_type="text/plain",
    )
    code, out, err, reports, summary = run_apply(hostility, tmp_path, monkeypatch, capsys)
    assert code == 1, err
    assert_inert_output(out, annotations=True)
    assert_inert_output(err)
    for word in ("REASON", "TYPE", "BODY"):
        assert word in out  # the platform's words are shown, escaped
    data = assert_reports_valid(reports)
    assert [s["status"] for s in data["steps"]] == ["failed", "failed"]
    assert_summary_is_text(summary)


PLATFORM_TEXT = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(HOSTILE),
        st.text(
            alphabet=st.sampled_from(list("\x00\x07\x1b\x9b\r\n\u2028\u202e\ud800:#[]%<>!")),
            max_size=10,
        ),
    ),
    max_size=4,
).map("".join)


@settings(
    max_examples=int(os.environ.get("MFTRUN_HOSTILE_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    task_id=PLATFORM_TEXT.filter(bool),
    state=PLATFORM_TEXT,
    type_=PLATFORM_TEXT,
    code=PLATFORM_TEXT,
    reason=PLATFORM_TEXT,
    body=st.binary(max_size=200),
    body_json=PLATFORM_TEXT,
)
def test_property_random_platform_text_through_every_output(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    task_id: str,
    state: str,
    type_: str,
    code: str,
    reason: str,
    body: bytes,
    body_json: str,
) -> None:
    """Random text and bytes as every field a platform fills, over real HTTP: the console
    (plain), the annotations and summary, and all three reports."""
    hostility = Hostility(
        task_id=task_id,
        state=state if state not in ("completed",) else state + "x",
        type=type_,
        code=code,
        reason=reason,
        http_body=body if len(body) % 2 else json.dumps({"error": body_json}).encode(),
        http_type="text/plain" if len(body) % 2 else "application/json",
    )
    tmp = tmp_path_factory.mktemp("hostile")
    exit_code, out, err, reports, summary = run_apply(hostility, tmp, monkeypatch, capsys)
    assert exit_code in (0, 1, 3), err
    assert_inert_output(out, annotations=True)
    assert_inert_output(err)
    assert_reports_valid(reports)
    assert_summary_is_text(summary)
    assert main(["report", "show", str(reports)]) == 0
    shown, _ = capsys.readouterr()
    assert_inert_output(shown)


# --------------------------------------------------------------------------- the terminal


def _hostile_run() -> tuple[object, list[object]]:
    from mftrun.events import StepEvent
    from mftrun.results import Attempt, RunResult, Status, StepResult

    now = datetime.now(timezone.utc)
    steps = []
    for n, text in enumerate(HOSTILE):
        step = StepResult(id=f"s{n}", environment="mft", action="start_task")
        step.outcome = step.conclusion = Status.FAILED
        step.started_at, step.ended_at = now, now + timedelta(seconds=1)
        step.error = text
        step.attempts = [
            Attempt(1, now, now, run_id=text, remote_status=text, status=Status.FAILED)
        ]
        step.remote_may_continue = [text]
        steps.append(step)
    result = RunResult("p\n::warning::NAME", "f.yaml", "0" * 64, now, now, steps, exit_code=1)
    result.message = HOSTILE[0]
    return result, [StepEvent(s, s.error or "") for s in steps]


def test_tty_console_and_summary_let_no_control_character_through() -> None:
    from rich.console import Console

    from mftrun.console import LiveConsole
    from mftrun.credentials import Redactor
    from mftrun.reports import build_report
    from mftrun.reports.summary import print_summary

    assert isinstance(LiveConsole(redactor=Redactor()).console.file, GuardedStream)
    result, events = _hostile_run()
    sink = io.StringIO()
    # A terminal without colours: any ESC in the output came from the platform's text.
    terminal = Console(file=GuardedStream(sink), force_terminal=True, color_system=None, width=100)
    live = LiveConsole(redactor=Redactor(), console=terminal)
    live._steps = result.steps  # type: ignore[attr-defined]
    for event in events:
        live.step_changed(event)  # type: ignore[arg-type]
    terminal.print(live._table())
    for text in HOSTILE:
        live.note(text)
    print_summary(build_report(result), console=terminal)  # type: ignore[arg-type]
    text = sink.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert_inert_output(text)


def test_plain_console_prints_one_inert_line_per_change() -> None:
    from mftrun.console import PlainConsole

    result, events = _hostile_run()
    sink = io.StringIO()
    console = PlainConsole(sink)
    console.run_started(result)  # type: ignore[arg-type]
    for event in events:
        console.step_changed(event)  # type: ignore[arg-type]
    lines = sink.getvalue().splitlines()
    # the progress lines (done / total, at most one per tenth of the steps) are inert too
    changes = [line for line in lines if " progress: " not in line]
    assert len(changes) == 1 + len(events)
    assert len(lines) - len(changes) <= 10
    assert_inert_output(sink.getvalue())


def test_annotations_and_summary_of_hostile_run(tmp_path: Path) -> None:
    from mftrun.reports.github import annotate

    result, _ = _hostile_run()
    summary = tmp_path / "s.md"
    out = io.StringIO()
    annotate(
        result,  # type: ignore[arg-type]
        environ={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
        stream=out,
    )
    assert out.getvalue().count("\n") == 2 * len(HOSTILE)  # one error + one warning each
    assert_inert_output(out.getvalue(), annotations=True)
    assert_summary_is_text(summary)


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(PLATFORM_TEXT, min_size=6, max_size=6),
    status=st.sampled_from(["failed", "error", "timed_out", "success", "running"]),
)
def test_property_random_text_through_consoles_reports_and_github(
    texts: list[str], status: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same property without the network, at many more examples: random text as a
    step's error, remote status, run id, attempt message, outputs and the run's name,
    through the TTY and plain consoles, all three reports and the GitHub outputs."""
    from rich.console import Console

    from mftrun.console import LiveConsole, PlainConsole
    from mftrun.credentials import Redactor
    from mftrun.events import StepEvent
    from mftrun.reports import build_report, load_report, write_reports
    from mftrun.reports.github import annotate
    from mftrun.reports.summary import print_summary
    from mftrun.results import Attempt, RunResult, Status, StepResult

    error, remote, run_id, message, output, name = texts
    now = datetime.now(timezone.utc)
    step = StepResult(id="s", environment="mft", action="start_task")
    step.outcome = step.conclusion = Status(status)
    step.started_at, step.ended_at = now, now + timedelta(seconds=2)
    step.error = error or None
    step.attempts = [Attempt(1, now, now, run_id=run_id, remote_status=remote, message=message)]
    step.outputs = {"x": output, output: [output]}
    step.remote_may_continue = [run_id] if run_id else []
    result = RunResult(name or "p", "p.yaml", "0" * 64, now, now, [step], exit_code=1)
    result.message = message or None
    event = StepEvent(step, error)

    plain = io.StringIO()
    PlainConsole(plain).step_changed(event)
    assert_inert_output(plain.getvalue())

    sink = io.StringIO()
    # As LiveConsole's own default console: a guarded stream, here without colours, so
    # any ESC in the output came from the platform's text.
    terminal = Console(file=GuardedStream(sink), force_terminal=True, color_system=None, width=60)
    live = LiveConsole(redactor=Redactor(), console=terminal)
    live._steps = result.steps
    live.step_changed(event)
    terminal.print(live._table())
    live.note(message)
    print_summary(
        build_report(result),
        console=Console(file=GuardedStream(sink), width=60, force_terminal=True, color_system=None),
    )
    assert "\x1b" not in sink.getvalue()
    assert_inert_output(sink.getvalue())

    folder = tmp_path_factory.mktemp("r")
    write_reports(result, report_dir=folder)
    load_report(folder / "report.json")  # valid against the packaged schema
    assert_reports_valid(folder)  # and the one in schemas/
    gh_out = io.StringIO()
    summary = folder / "summary.md"
    annotate(
        result,
        environ={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
        stream=gh_out,
    )
    assert_inert_output(gh_out.getvalue(), annotations=True)
    assert_summary_is_text(summary)


def test_check_prints_a_hostile_token_error_inert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check`: the token endpoint's error_description tries commands and escapes."""
    description = "bad client\n::add-mask::CHECKED\r\n::stop-commands::x\x1b]0;t\x07\x9b2J"
    hostility = Hostility(
        token_status=401,
        token_body=json.dumps(
            {"error": "invalid_client", "error_description": description}
        ).encode(),
    )
    monkeypatch.setenv("HOSTILE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("HOSTILE_CLIENT_SECRET", CLIENT_SECRET)
    with hostile_server(hostility) as url:
        file = tmp_path / "hostile.yaml"
        file.write_text(PIPELINE.format(url=url))
        code = main(["check", str(file)])
    out, err = capsys.readouterr()
    assert code == 3
    assert "CHECKED" in out  # shown, escaped
    assert_inert_output(out + err)
