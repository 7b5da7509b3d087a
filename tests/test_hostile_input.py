"""Hostile input from a pipeline file or a scenario (issue 15 items 3, 4, 6, 9, 10, 11, 12).

Threat model: the file comes from an unreviewed pull request and `validate`/`plan`
run on it. Each test feeds the hostile input the review found, then widens it to the
class of bug: every template trick that made Python do unbounded work, every header
that changes routing or framing, every identifier pattern, every loader entry point.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mftrun import templating
from mftrun.emulator import load_scenario
from mftrun.errors import TemplateError, ValidationFailed
from mftrun.json_patterns import python_pattern
from mftrun.validation import check_paths

ROOT = Path(__file__).resolve().parent.parent

HEADER = """version: 1
name: hostile
environments:
  mft:
    provider: automate-mft
    region: us
    credentials:
      tenant_id: {env: MFT_TENANT_ID}
      key_id: {env: MFT_KEY_ID}
      private_key: {file: KEYFILE}
steps:
"""


def pipeline(
    tmp_path: Path, steps: str, name: str = "p.yaml", key: str = "k.pem", offline: bool = False
) -> Path:
    """A pipeline file; `offline` points the environment at a closed loopback port (a
    refused connection at once, never a wait on this machine's network)."""
    header = HEADER.replace("KEYFILE", str(tmp_path / key))
    if offline:
        header = header.replace("region: us", "base_url: http://127.0.0.1:9")
    path = tmp_path / name
    steps = steps.replace("TASK", "02115928-16fe-4493-949b-d77d302a88ee")  # task ids are UUIDs
    path.write_text(header + steps, encoding="utf-8")
    return path


def mftrun(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    memory_mb: int | None = None,
) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # an address-space cap: a memory blow-up fails instead of swapping
        if memory_mb:
            size = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return subprocess.run(
        [sys.executable, "-m", "mftrun", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        preexec_fn=limit,
    )


# -- item 3: templates bounded in size, operations and time -------------------------------

HOSTILE_TEMPLATES = [
    "{{ 9**(9**9) > 1 }}",  # folded at compile time by plain Jinja: 11 minutes
    "{{ 2**(10**9) }}",
    "{{ 'a' * 10**9 }}",  # 1 GB
    "{{ [0] * 10**9 }}",
    "{{ (range(100000)|list) * 100 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
    "{% endfor %}{{ ns.n }}",
    "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(60) }}",
    "{{ ('a' * 999999).replace('', 'bb') }}",
    "{{ ('\\t' * 99999).expandtabs(99999) }}",
    "{{ 'abc'.translate({97: 'x' * 999999}) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:>{w}}'.format(1, w=999999999) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ 'x'.zfill(999999999) }}",
    "{{ ('\\n' * 99999)|indent(99999) }}",
    "{{ '%999999999s'|format(1) }}",
    "{{ [1]|batch(10**8, 0)|list }}",
    "{{ range(100000)|map('center', 99999)|join }}",
    "{{ lipsum(100000, max=100000) }}",
    "{{ ('x' * 999999)|wordwrap(1) }}",  # one slow Python call: refused by its input size
    "{{ ('x ' * 400000)|urlize }}",
]


@pytest.mark.parametrize("text", HOSTILE_TEMPLATES)
def test_a_hostile_template_is_stopped_quickly_when_rendered(text: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        templating.render(text, {})
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert any(
        word in message
        for word in ("too much work", "undefined", "not available", "is not defined", "ERR")
    ), message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ 1 + 2 }}", 3),
        ("{{ 2**64 }}", 2**64),
        ("{{ 'a b'.split() }}", ["a", "b"]),
        ("{% for x in [1, 2, 3] %}{{ x }}{% endfor %}", "123"),
        ("{{ vars.a ~ '-' ~ vars.b }}", "A-B"),
        ("{{ '%05d' % 42 }}", "00042"),
        ("{{ '%s bytes' % 5000000000 }}", "5000000000 bytes"),
        ("{{ '{} of {}'.format(150000, 200000) }}", "150000 of 200000"),
        ("{{ 'x'|center(9) }}", "    x    "),
        ("{{ 'ab'.upper().center(6, '*') }}", "**AB**"),
        ("{{ range(1000)|sum }}", 499500),
        ("{{ 5000000000|filesizeformat }}", "5.0 GB"),
        ("{{ ['a', 'b']|join(', ') }}", "a, b"),
        ("{{ 'x' * 1000 }}", "x" * 1000),
        ("{{ {'k': 1}|tojson }}", '{"k": 1}'),
    ],
)
def test_ordinary_templates_are_not_affected(text: str, expected: object) -> None:
    assert templating.render(text, {"vars": {"a": "A", "b": "B"}}) == expected


def test_validate_of_hostile_templates_is_bounded_in_time_and_memory(tmp_path: Path) -> None:
    """Every hostile template in one file: `validate` (which compiles, and so folds
    constants) finishes fast under a 1 GB address-space cap, listing each one."""
    steps = "".join(
        f"  - id: s{i}\n    start_task: {{task_id: TASK, parameters: {{p: {json.dumps(t)}}}}}\n"
        for i, t in enumerate(HOSTILE_TEMPLATES)
    )
    path = pipeline(tmp_path, steps.replace("start_task", "environment: mft\n    start_task"))
    started = time.monotonic()
    result = mftrun("validate", str(path), timeout=60, memory_mb=1024)
    elapsed = time.monotonic() - started
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 2), result.stdout + result.stderr
    assert elapsed < 30
    # constant parts are not folded past the limits (a fold that would is left to run
    # time, where the render test above shows it stopped); lipsum is not offered at all
    assert "unknown name 'lipsum'" in result.stdout
    plan = mftrun("plan", str(path), timeout=60, memory_mb=1024)
    assert "Traceback" not in plan.stderr and plan.returncode in (0, 2)


def test_a_heavy_template_at_run_time_ends_the_step_and_the_run_promptly(tmp_path: Path) -> None:
    """The review: nested range() loops in a parameter, a 3 s step timeout, 'success' after
    9.5 minutes. Now the step ends `error` (the template's fault) within seconds."""
    heavy = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"
    steps = (
        "  - id: heavy\n    environment: mft\n    timeout: 3s\n"
        f"    start_task: {{task_id: '6b1f0c2e-2d7a-4c1e-9b8e-3f4a5c6d7e8f', parameters: "
        f"{{p: {json.dumps(heavy)}}}}}\n"
    )
    path = pipeline(tmp_path, steps)
    started = time.monotonic()
    result = mftrun("apply", str(path), "--emulate", "--report-dir", str(tmp_path / "r"))
    assert time.monotonic() - started < 60
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    (step,) = report["steps"]
    assert step["status"] == "error"
    assert "too much work" in step["error"]


def test_sigterm_acts_while_a_hostile_template_renders(tmp_path: Path) -> None:
    slow = (
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(60) }}"
    )
    steps = "".join(
        f"  - id: s{i}\n    environment: mft\n"
        f"    start_task: {{task_id: TASK, parameters: {{p: {json.dumps(slow)}}}}}\n"
        for i in range(30)
    )
    path = pipeline(tmp_path, steps)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mftrun",
            "apply",
            str(path),
            "--emulate",
            "--max-parallel",
            "1",
            "--report-dir",
            str(tmp_path / "r"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    time.sleep(4)  # inside one of the 2 s renders, whichever
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 143, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["interrupted"] is True
    # 30 steps of up to 2 s each were not all rendered: the signal stopped the run
    assert sum(s["status"] == "error" for s in report["steps"]) < 30


# -- item 4: alias bombs, in pipelines and scenarios alike ----------------------------------

BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


def test_an_alias_bomb_in_a_scenario_is_refused_fast_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(ValidationFailed) as info:
        load_scenario(path)
    assert "too many values" in str(info.value)
    started = time.monotonic()
    result = mftrun("emulate", "--scenario", str(path), timeout=60, memory_mb=1024)
    assert time.monotonic() - started < 20
    assert result.returncode == 2, result.stderr
    assert re.search(r"bomb\.yaml:\d+:\d+: the document expands to too many values", result.stderr)
    for command in (["validate"], ["plan"]):  # the same bomb as a pipeline file
        refused = mftrun(*command, str(path), timeout=60, memory_mb=1024)
        assert refused.returncode == 2 and "too many values" in refused.stdout + refused.stderr


def test_scenarios_and_pipelines_share_the_loaders_limits(tmp_path: Path) -> None:
    """Duplicate keys, depth and tags: a scenario is read by the pipeline's loader."""
    dup = tmp_path / "dup.yaml"
    dup.write_text("speed: 2\nspeed: 3\n")
    with pytest.raises(ValidationFailed, match="duplicate key 'speed'"):
        load_scenario(dup)
    deep = tmp_path / "deep.yaml"
    deep.write_text("seed: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ValidationFailed, match="nests deeper|YAML"):
        load_scenario(deep)
    tagged = tmp_path / "tag.yaml"
    tagged.write_text("seed: !!python/object:os.system x\n")
    with pytest.raises(ValidationFailed, match="unsupported YAML tag"):
        load_scenario(tagged)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing: the defaults\n")
    assert load_scenario(empty).speed == 1


# -- item 11: integers over 4,300 digits -------------------------------------------------------


@pytest.mark.parametrize("digits", [4301, 5000, 100_000])
def test_a_huge_integer_is_a_positioned_refusal_everywhere(tmp_path: Path, digits: int) -> None:
    number = "1" * digits
    path = pipeline(
        tmp_path, f"  - id: a\n    environment: mft\n    start_task: TASK\n    timeout: {number}\n"
    )
    for command in ("validate", "plan"):
        result = mftrun(command, str(path))
        assert result.returncode == 2, result.stderr
        out = result.stdout + result.stderr
        assert re.search(r"p\.yaml:15:14: the number 1{20}\.\.\. cannot be read", out), out
        assert "internal error" not in out and "Traceback" not in out
        assert "set_int_max_str_digits" not in out  # Python's advice is not the user's
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"seed: {number}\n")
    result = mftrun("emulate", "--scenario", str(scenario))
    assert result.returncode == 2
    assert re.search(r"s\.yaml:1:7: the number", result.stderr), result.stderr
    graph = mftrun("graph", str(path), "--format", "dot")
    assert graph.returncode == 2 and "internal error" not in graph.stderr


def test_long_numbers_that_python_reads_stay_numbers_or_strings(tmp_path: Path) -> None:
    path = pipeline(
        tmp_path,
        "  - id: a\n    environment: mft\n    start_task: {task_id: TASK, parameters: "
        f"{{big: '{'9' * 5000}', hex: 0x{'f' * 2000}}}}}\n",
    )
    result = mftrun("validate", str(path))
    assert result.returncode == 0, result.stdout


# -- item 12: patterns that guard identifiers match whole strings ------------------------------


@pytest.mark.parametrize(
    ("where", "yaml_text"),
    [
        ("step id", '  - id: "pull\\n"\n    environment: mft\n    start_task: TASK\n'),
        (
            "needs",
            "  - id: a\n    environment: mft\n    start_task: TASK\n"
            '  - id: b\n    environment: mft\n    start_task: TASK\n    needs: ["a\\n"]\n',
        ),
        (
            "output name",
            "  - id: a\n    environment: mft\n    start_task: TASK\n"
            '    outputs: {"x\\n": "{{ result.run_id }}"}\n',
        ),
    ],
)
def test_a_trailing_newline_does_not_pass_an_identifier_pattern(
    tmp_path: Path, where: str, yaml_text: str
) -> None:
    path = pipeline(tmp_path, yaml_text)
    _, problems = check_paths([str(path)])
    assert problems, where
    assert all(p.line > 0 for p in problems)


def _patterns(node: object) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found.append(value)
            elif key == "patternProperties" and isinstance(value, dict):
                found.extend(value)
            found.extend(_patterns(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_patterns(item))
    return found


SHIPPED_PATTERNS = sorted(
    {
        p
        for name in ("pipeline", "scenario")
        for p in _patterns(
            json.loads((ROOT / "mftrun" / "schemas" / f"{name}.schema.json").read_text())
        )
    }
)


@pytest.mark.parametrize("pattern", SHIPPED_PATTERNS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_shipped_pattern_has_ecma_end_semantics(pattern: str, data: st.DataObject) -> None:
    """As in an editor's (ECMA-262) engine: `$` is the end of the string, so a value that
    matches does not still match with a newline appended, unless the pattern itself
    allows trailing white space (durations: `\\s*$`)."""
    compiled = re.compile(python_pattern(pattern))
    value = data.draw(st.from_regex(compiled, fullmatch=True))
    assert compiled.search(value)
    if pattern.endswith("$") and not pattern.endswith(r"\s*$"):
        assert not compiled.search(value + "\n"), (pattern, value)


# -- item 6: headers that change routing or framing -------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "host",
        "HOST",
        "Connection",
        "Content-Length",
        "content-length",
        "Transfer-Encoding",
        "TRANSFER-encoding",
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "X-Trail ",
        " X-Lead",
        "X Space",
        "X:Colon",
        "X-Tab\t",
        "X-Nl\n",
        "",
    ],
)
def test_http_step_headers_that_are_refused_at_validate(tmp_path: Path, name: str) -> None:
    steps = (
        "  - id: a\n    environment: mft\n    http:\n      path: /v1/licenses/current\n"
        f"      headers: {{{json.dumps(name)}: v}}\n"
    )
    _, problems = check_paths([str(pipeline(tmp_path, steps))])
    assert len(problems) == 1, [p.message for p in problems]
    problem = problems[0]
    assert (problem.line, problem.column) == (16, 17)
    assert "header" in problem.message


@pytest.mark.parametrize(
    "value", ["a\nb", "a\rb", "a\x00b", " lead", "trail ", "a\u2028b", "a\u0085b", "\u0100"]
)
def test_header_values_with_line_breaks_are_refused(tmp_path: Path, value: str) -> None:
    steps = (
        "  - id: a\n    environment: mft\n    http:\n      path: /v1/licenses/current\n"
        f"      headers: {{X-Ok: {json.dumps(value)}}}\n"
    )
    _, problems = check_paths([str(pipeline(tmp_path, steps))])
    assert [p.message for p in problems] == [
        "header 'X-Ok': the value holds a line break, a control character, a character "
        "beyond Latin-1 or edge whitespace"
    ]


def test_ordinary_headers_pass_and_a_rendered_bad_value_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    steps = (
        "  - id: a\n    environment: mft\n    http:\n      path: /v1/licenses/current\n"
        "      headers: {Accept: application/json, X-Request-Id: abc-1, If-None-Match: '\"x\"',"
        " X-Var: '{{ vars.v }}'}\n"
    )
    path = pipeline(tmp_path, steps)
    assert check_paths([str(path)])[1] == []
    result = mftrun(
        "apply",
        str(path),
        "--emulate",
        "--var",
        "v=line\nbreak",
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert "line break" in report["steps"][0]["error"]
    ok = mftrun(
        "apply", str(path), "--emulate", "--var", "v=fine", "--report-dir", str(tmp_path / "r2")
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


# -- item 9: the private key file's permissions ------------------------------------------------


def _key(tmp_path: Path, mode: int) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("mode", "who"),
    [
        (0o644, "group and others"),
        (0o640, "group"),
        (0o666, "group and others"),
        (0o604, "others"),
        (0o602, "others"),
        (0o620, "group"),
    ],
)
def test_a_key_file_others_can_reach_is_named_with_who_and_the_mode(
    tmp_path: Path, mode: int, who: str
) -> None:
    from mftrun.credentials import key_file_warning
    from mftrun.model import CredentialRef, Position

    key = _key(tmp_path, mode)
    warning = key_file_warning("private_key", CredentialRef("file", str(key), Position("", 0, 0)))
    assert warning is not None
    assert f"private key file {key} is accessible by {who} (mode {mode:04o})" in warning
    assert warning.endswith(f"hint: chmod 600 {key}")
    for private in (0o600, 0o400):
        key.chmod(private)
        assert (
            key_file_warning("private_key", CredentialRef("file", str(key), Position("", 0, 0)))
            is None
        )


def test_check_warns_about_an_open_key_file_with_the_fix(tmp_path: Path) -> None:
    key = _key(tmp_path, 0o644)
    path = pipeline(
        tmp_path, "  - id: a\n    environment: mft\n    start_task: TASK\n", offline=True
    )
    env = {"MFT_TENANT_ID": "tenant-0001", "MFT_KEY_ID": "key-00000001"}
    result = mftrun("check", str(path), env=env, timeout=60)
    assert f"private key file {key} is accessible by group and others (mode 0644)" in result.stderr
    assert f"chmod 600 {key}" in result.stderr
    key.chmod(0o600)
    quiet = mftrun("check", str(path), env=env, timeout=60)
    assert "accessible by" not in quiet.stderr + quiet.stdout


def test_apply_warns_about_an_open_key_file_and_still_runs(tmp_path: Path) -> None:
    from mftrun.credentials import key_file_warning
    from mftrun.model import CredentialRef, Position

    key = _key(tmp_path, 0o644)
    ref = CredentialRef("file", str(key), Position("p.yaml", 9, 20))
    warning = key_file_warning("private_key", ref)
    assert warning is not None and "declared at p.yaml:9:20" in warning
    assert key_file_warning("tenant_id", ref) is None  # only private keys
    key.chmod(0o600)
    assert key_file_warning("private_key", ref) is None
    key.chmod(0o644)
    path = pipeline(
        tmp_path, "  - id: a\n    environment: mft\n    start_task: TASK\n", offline=True
    )
    env = {"MFT_TENANT_ID": "tenant-0001", "MFT_KEY_ID": "key-00000001"}
    result = mftrun("apply", str(path), "--no-report", env=env, timeout=60)
    # the key is not registered on any platform: the run fails, but the warning came first
    assert "is accessible by group and others" in result.stdout + result.stderr


# -- item 10: emulate --credentials-dir never follows a planted link ---------------------------


def _emulate_credentials(folder: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mftrun", "emulate", "--credentials-dir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines) + out, err)


def test_planted_links_are_replaced_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "creds"
    folder.mkdir(mode=0o700)
    victim_key = tmp_path / "victim-key"
    victim_env = tmp_path / "victim-env"
    for victim in (victim_key, victim_env):
        victim.write_text("precious\n")
        victim.chmod(0o644)
    (folder / "mft-private-key.pem").symlink_to(victim_key)
    (folder / "env.sh").symlink_to(victim_env)
    result = _emulate_credentials(folder)
    assert result.returncode == 0, result.stderr
    for victim in (victim_key, victim_env):
        assert victim.read_text() == "precious\n"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    for name in ("mft-private-key.pem", "env.sh"):
        written = folder / name
        assert not written.is_symlink()
        assert stat.S_IMODE(written.lstat().st_mode) == 0o600
    assert "MFT_PRIVATE_KEY_FILE" in (folder / "env.sh").read_text()
    # a second run over its own files works too
    assert _emulate_credentials(folder).returncode == 0


def test_files_have_their_final_mode_from_creation_whatever_the_umask(tmp_path: Path) -> None:
    from mftrun.private_files import write_private

    old = os.umask(0)
    try:
        written = write_private(tmp_path, "env.sh", "export X=1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    with pytest.raises(ValueError):
        write_private(tmp_path, "../escape", "x")


def test_a_folder_others_can_write_to_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    result = _emulate_credentials(folder)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "others can write to it" in result.stderr
    assert not (folder / "env.sh").exists()


def test_every_quick_look_at_a_file_goes_through_the_one_loader(tmp_path: Path) -> None:
    """Recognising scenarios in `validate dir/` and step ids for shell completion read files
    too: a bomb or a huge number there is refused the same way, never expanded or crashed."""
    folder = tmp_path / "repo" / "scenarios"
    folder.mkdir(parents=True)
    (folder / "bomb.yaml").write_text(BOMB)
    (folder / "huge.yaml").write_text(f"seed: {'1' * 5000}\n")
    (tmp_path / "repo" / "night.yaml").write_text(f"version: 1\nname: {'9' * 5000}\nsteps: []\n")
    started = time.monotonic()
    result = mftrun("validate", str(tmp_path / "repo"), timeout=60, memory_mb=1024)
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stdout + result.stderr
    assert "internal error" not in result.stdout + result.stderr
    assert "too many values" in result.stdout and "cannot be read" in result.stdout
    from mftrun.commands.completion import step_ids

    assert step_ids([str(folder / "bomb.yaml")]) == []
    assert step_ids([str(tmp_path / "repo" / "night.yaml")]) == []


def test_all_templates_of_a_run_share_one_time_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each template stops at 2 s, but 16 of them would add up: one run's templates have
    RUN_SECONDS in all (3 s here), after which the rest are refused without rendering."""
    from mftrun import template_limits
    from mftrun.cli import main

    monkeypatch.setattr(template_limits, "RUN_SECONDS", 3.0)
    slow = '{% set s = "x" * 999999 %}{% for i in range(99999) %}{{ s.count("y") }}{% endfor %}'
    steps = "".join(
        f"  - id: s{i}\n    environment: mft\n    http: {{path: /v1/licenses/current}}\n"
        f"    outputs: {{a: {json.dumps(slow)}}}\n"
        for i in range(16)
    )
    path = pipeline(tmp_path, steps)
    started = time.monotonic()
    code = main(["apply", str(path), "--emulate", "--report-dir", str(tmp_path / "r")])
    elapsed = time.monotonic() - started
    capsys.readouterr()
    assert code == 2
    assert elapsed < 20  # 16 x 2 s without the shared budget
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    errors = [s["error"] for s in report["steps"]]
    assert all("too much work" in e or "used their 3 s in all" in e for e in errors), errors
    assert sum("used their 3 s" in e for e in errors) >= 10


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("timeout", "defaults: {timeout: 0x" + "f" * 4000 + "}\n"),
        ("vars", "vars: {big: 0x" + "f" * 4000 + "}\n"),
        ("vars", "vars: {big: 0b" + "1" * 20000 + "}\n"),
        ("vars", "vars: {big: 0" + "7" * 5000 + "}\n"),  # YAML 1.1 octal
    ],
)
def test_a_huge_integer_in_any_base_is_a_positioned_refusal(
    tmp_path: Path, where: str, text: str
) -> None:
    path = pipeline(tmp_path, "  - id: a\n    environment: mft\n    start_task: TASK\n")
    path.write_text(path.read_text().replace("steps:\n", text + "steps:\n"))
    result = mftrun("validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(r"p\.yaml:\d+:\d+: the number 0\S+ cannot be read", result.stdout), (
        where,
        result.stdout,
    )
    scenario = tmp_path / "s.yaml"
    scenario.write_text("speed: 0x" + "f" * 5000 + "\n")
    refused = mftrun("emulate", "--scenario", str(scenario))
    assert refused.returncode == 2 and "s.yaml:1:8: the number" in refused.stderr


@pytest.mark.parametrize("duration", ["1" + "0" * 400, "'1" + "0" * 400 + "s'", "1e400"])
def test_an_absurd_duration_is_a_positioned_refusal(tmp_path: Path, duration: str) -> None:
    path = pipeline(
        tmp_path,
        f"  - id: a\n    environment: mft\n    start_task: TASK\n    timeout: {duration}\n",
    )
    result = mftrun("validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(r"p\.yaml:15:14: .*(366d|duration)", result.stdout), result.stdout


def test_a_sticky_shared_folder_is_refused_too(tmp_path: Path) -> None:
    folder = tmp_path / "tmpish"
    folder.mkdir()
    folder.chmod(0o1777)
    result = _emulate_credentials(folder)
    assert result.returncode == 2 and "others can write to it" in result.stderr


def test_var_names_are_identifiers_in_the_file_and_on_the_command_line(tmp_path: Path) -> None:
    path = pipeline(tmp_path, "  - id: a\n    environment: mft\n    start_task: TASK\n")
    path.write_text(path.read_text().replace("steps:\n", 'vars: {"big\\n": 5}\nsteps:\n'))
    assert "is not a var name" in mftrun("validate", str(path)).stdout
    clean = pipeline(tmp_path, "  - id: a\n    environment: mft\n    start_task: TASK\n", "c.yaml")
    for bad in ("big\n", "b-ig", "1x", "vars.x"):
        result = mftrun("apply", str(clean), "--emulate", "--no-report", "--var", f"{bad}=1")
        assert result.returncode == 2, (bad, result.stderr)
        assert "is a letter or _ and then letters, digits or _" in result.stderr
        assert "\n::" not in result.stderr


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{{ ('x' * 999999)|wordwrap(1) }}", "wordwrap of 999,999 characters"),
        ("{{ ('x ' * 400000)|urlize }}", "urlize of 800,000 characters"),
    ],
)
def test_slow_text_filters_are_refused_by_their_input_before_they_run(
    text: str, named: str
) -> None:
    """wordwrap is a pass_environment filter: its text is the second argument. The size check
    must find it there, or the one slow call runs (18 s on a loaded machine) and only its
    result is refused."""
    with pytest.raises(TemplateError, match=named):
        templating.render(text, {})
