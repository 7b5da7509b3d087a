"""(b) Our real client (`mftrun apply` / `mftrun check`) against strict_platform.py, a
server written from api-contracts.md alone (README.md here)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest


from strict_platform import StrictPlatform
from contract_fixture import (  # noqa: E402
    POLICY,
    RES_1,
    T_FAIL,
    T_ODD,
    T_OK,
)


@pytest.fixture
def platform():
    server = StrictPlatform()
    yield server
    server.close()


def write_pipeline(tmp_path: Path, platform: StrictPlatform, steps: str, monkeypatch) -> Path:
    key = tmp_path / "mft.pem"
    key.write_text(platform.private_pem())
    key.chmod(0o600)
    monkeypatch.setenv("T_TENANT", platform.TENANT)
    monkeypatch.setenv("T_KID", platform.KID)
    monkeypatch.setenv("T_CLIENT", platform.CLIENT_ID)
    monkeypatch.setenv("T_SECRET", platform.CLIENT_SECRET)
    text = f"""version: 1
name: contract
environments:
  mft:
    provider: automate-mft
    base_url: {platform.url}
    credentials:
      tenant_id: {{env: T_TENANT}}
      key_id: {{env: T_KID}}
      private_key: {{file: {key}}}
  acr:
    provider: acronis
    base_url: {platform.url}
    credentials:
      client_id: {{env: T_CLIENT}}
      client_secret: {{env: T_SECRET}}
defaults:
  environment: mft
  timeout: 20s
  poll: {{interval: 50ms, max_interval: 100ms}}
steps:
{steps}"""
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def apply(path: Path) -> int:
    from mftrun.cli import main

    return main(["apply", str(path), "--no-report"])


def test_real_client_start_by_id_and_name_and_http_step_against_strict_server(
    platform, tmp_path, monkeypatch, capsys
):
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task:
      task_id: {T_OK}
      parameters: {{FileMask: "*.csv", Retries: 3}}
  - id: by-name
    start_task: {{name: Pull partner orders}}
  - id: odd-name
    start_task: {{name: "Orders & invoices + 50% #1/2?"}}
  - id: licence
    http: {{method: GET, path: /v1/licenses/current, expect: [200]}}
    outputs: {{tier: "{{{{ response.json.tier }}}}"}}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    starts = platform.calls("POST", "/v1/tasks/")
    assert len(starts) == 3
    assert {run["task"] for run in platform.runs.values()} == {T_OK, T_ODD}
    by_id = next(s for s in starts if s["path"] == f"/v1/tasks/{T_OK}/start")
    assert json.loads(by_id["body"]) == {"FileMask": "*.csv", "Retries": 3}
    by_name = next(s for s in starts if s["query"] == "name=Pull%20partner%20orders")
    assert json.loads(by_name["body"]) == {}
    # One shared token for the environment, asked for with a JSON body like the vendor sample;
    # every call carries it as a bearer token.
    token_calls = platform.calls("POST", "/v1/oauth/token")
    assert len(token_calls) == 1
    assert token_calls[0]["headers"]["Content-Type"].startswith("application/json")
    for call in platform.log:
        if call["path"].startswith("/v1/") and call["path"] != "/v1/oauth/token":
            scheme = call["headers"]["Authorization"].split(" ")[0]
            assert scheme.lower() == "bearer"
    # Polled to the terminal status and not beyond.
    for run_id, run in platform.runs.items():
        assert run["polls"] == 3, (run_id, run)
    # The assertion as issue 4 pins it inside the documented limits: exp 4 minutes ahead at most,
    # iat = nbf = now.
    (claims,) = platform.assertions
    assert claims["_header"]["alg"] == "ES256" and claims["_header"]["kid"] == platform.KID
    assert claims["iat"] == claims["nbf"] and 0 < claims["exp"] - claims["iat"] <= 240
    assert abs(claims["iat"] - time.time()) < 30


def test_real_client_http_step_on_acronis_sends_repeated_query_parameters(
    platform, tmp_path, monkeypatch, capsys
):
    platform.add_acronis_task(state="completed", code="ok")
    platform.add_acronis_task(state="started")
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: list
    environment: acr
    http:
      path: /api/task_manager/v2/tasks
      query: {state: [completed, paused], limit: 1}
      expect: [200]
    outputs:
      first: "{{ response.json['items'][0]['idString'] }}"
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    # apply's login check lists one task with no filter first; the step's call is the other
    calls = [c for c in platform.log if c["path"] == "/api/task_manager/v2/tasks"]
    assert [c["query"] for c in calls[:1]] == ["limit=1"]
    (call,) = calls[1:]
    assert parse_qs(call["query"]) == {"state": ["completed", "paused"], "limit": ["1"]}
    assert call["headers"]["Authorization"].startswith("Bearer ")


def test_real_client_failed_run_exits_1(platform, tmp_path, monkeypatch, capsys):
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: broken
    start_task: {T_FAIL}
""",
        monkeypatch,
    )
    code = apply(path)
    capsys.readouterr()
    assert platform.violations == []
    assert code == 1
    assert len(platform.calls("POST", f"/v1/tasks/{T_FAIL}/start")) == 1


@pytest.mark.parametrize("mode", ["revoked-401", "expired-early-403", "no-expires_in-403"])
def test_real_client_renews_once_and_replays(platform, tmp_path, monkeypatch, capsys, mode):
    status = 401 if mode == "revoked-401" else 403
    # the login check's call, the start and the first poll pass
    platform.kill_first_token["mft"] = (3, status)
    if mode == "no-expires_in-403":
        platform.expires_in = None  # [assumed] absent: the client assumes 5 minutes
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/v1/oauth/token")) == 2
    assert len(platform.calls("POST", "/v1/tasks/")) == 1  # the start is never replayed blindly
    assert [c.get("status") for c in platform.log].count(status) == 1


def test_real_client_renews_before_a_short_token_expires(platform, tmp_path, monkeypatch, capsys):
    platform.expires_in = (
        1  # announced; the grace keeps a busy machine from turning this into a 403 race
    )
    platform.expiry_grace = 1.0
    platform.phases = ("queued", "running", "running")  # the run outlives the renewal point (0.8 s)
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
    poll: {{interval: 300ms, max_interval: 300ms}}
""",
        monkeypatch,
    )
    code = apply(path)
    capsys.readouterr()
    assert platform.violations == [] and code == 0
    assert len(platform.calls("POST", "/v1/oauth/token")) >= 2
    assert 403 not in [c.get("status") for c in platform.log]  # renewed ahead, not after the fact


def test_real_client_acronis_401_renews_once(platform, tmp_path, monkeypatch, capsys):
    platform.kill_first_token["acronis"] = (2, 401)  # after the login check and one listing
    for i in range(2):
        platform.add_acronis_task(state="started", complete_after=0.2 + 0.1 * i)
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/api/2/idp/token")) == 2


def test_real_check_second_403_is_forbidden_with_allow_list_hint(
    platform, tmp_path, monkeypatch, capsys
):
    from mftrun.cli import main

    platform.forbid = {"mft", "acronis"}
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
  - id: backups
    environment: acr
    wait_tasks: {{state: started}}
""",
        monkeypatch,
    )
    code = main(["check", str(path)])
    out = capsys.readouterr()
    text = (out.out + out.err).lower()
    assert code == 3
    assert "allow-list" in text or "allow list" in text
    assert "task_manager" in text
    assert len(platform.calls("POST", "/v1/oauth/token")) == 2  # one renewal, then the verdict
    assert len(platform.calls("POST", "/api/2/idp/token")) == 2  # one renewal, then "missing scope"


def wait_pipeline(platform: StrictPlatform, tmp_path: Path, monkeypatch) -> Path:
    return write_pipeline(
        tmp_path,
        platform,
        """
  - id: backups
    environment: acr
    wait_tasks:
      state: [enqueued, started]
      type: backup
      limit: 2
""",
        monkeypatch,
    )


def test_real_client_wait_tasks_with_paging_against_strict_server(
    platform, tmp_path, monkeypatch, capsys
):
    seen = [
        # Long enough that every task is still running at the wait's first listing even on a
        # loaded machine (at 0.1 s one could end before it and never be seen, nor looked up).
        platform.add_acronis_task(state="started", complete_after=1.5 + 0.05 * i)
        for i in range(5)
    ]
    platform.add_acronis_task(state="started", type_="replication")  # never matches: other type
    platform.acronis[2]["result"] = "warning"
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    lists = [
        c
        for c in platform.calls("GET", "/api/task_manager/v2/tasks")
        if c["path"] == "/api/task_manager/v2/tasks"
    ]
    # apply's login check lists one task with no filter: not the wait's listing
    first = [c for c in lists if "after=" not in c["query"] and c["query"] != "limit=1"]
    assert first and all(parse_qs(c["query"])["state"] == ["enqueued", "started"] for c in first)
    assert any(
        "after=" in c["query"] for c in lists
    )  # five tasks, two a page: cursors were followed
    # Results were looked up by the exact 64-bit ids (a float would have lost the last digit).
    looked_up = {
        c["path"].rsplit("/", 1)[1]
        for c in platform.log
        if c["path"].startswith("/api/task_manager/v2/tasks/")
    }
    looked_up |= {v for c in lists for v in parse_qs(c["query"]).get("id", [])}
    assert {str(i) for i in seen} <= looked_up
    assert len(platform.calls("POST", "/api/2/idp/token")) == 1


def test_real_client_wait_tasks_fails_and_names_the_task(platform, tmp_path, monkeypatch, capsys):
    for i in range(3):
        platform.add_acronis_task(state="started", complete_after=0.2 + 0.1 * i)
    bad = platform.acronis[1]
    bad["result"] = "error"
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 1
    assert bad["item"]["idString"] in out.out + out.err


def test_real_check_against_strict_server(platform, tmp_path, monkeypatch, capsys):
    from mftrun.cli import main

    platform.add_acronis_task(state="completed", code="ok")
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
  - id: backups
    environment: acr
    wait_tasks: {{state: started}}
""",
        monkeypatch,
    )
    code = main(["check", str(path)])
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("GET", "/v1/licenses/current")) == 1
    query = parse_qs(platform.calls("GET", "/api/task_manager/v2/tasks")[0]["query"])
    assert query.get("limit") == ["1"]
    assert platform.calls("POST", "/v1/tasks/") == []  # check starts nothing


def test_real_check_reports_rejected_credentials_exit_3(platform, tmp_path, monkeypatch, capsys):
    from mftrun.cli import main

    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    monkeypatch.setenv("T_KID", "some-other-key")
    code = main(["check", str(path)])
    out = capsys.readouterr()
    assert code == 3
    assert "kid" in (out.out + out.err).lower()


def test_real_client_base_url_with_trailing_slash_keeps_the_exact_audience(
    platform, tmp_path, monkeypatch, capsys
):
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    path.write_text(
        path.read_text().replace(f"base_url: {platform.url}\n", f"base_url: {platform.url}/\n")
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert all("//" not in c["path"] for c in platform.log)


def test_real_client_wait_tasks_lod_goes_on_follow_up_pages(
    platform, tmp_path, monkeypatch, capsys
):
    for _i in range(3):
        platform.add_acronis_task(state="started", complete_after=0.2)
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: backups
    environment: acr
    wait_tasks: {state: [enqueued, started], limit: 1, lod: short}
""",
        monkeypatch,
    )
    code = apply(path)
    capsys.readouterr()
    assert platform.violations == [] and code == 0
    follow = [
        parse_qs(c["query"])
        for c in platform.log
        if c["path"] == "/api/task_manager/v2/tasks" and "after=" in c["query"]
    ]
    assert follow and all(
        set(q) == {"limit", "after", "lod"} and q["lod"] == ["short"] for q in follow
    )


def test_real_client_unknown_run_status_keeps_polling_until_the_step_timeout(
    platform, tmp_path, monkeypatch, capsys
):
    platform.tasks[T_OK] = ("Pull partner orders", ["paused"])
    platform.phases = ()  # "paused" from the first poll on
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
    timeout: 500ms
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert platform.violations == []
    assert code == 1, text
    assert "paused" in text
    run = next(iter(platform.runs.values()))
    assert run["polls"] >= 2  # it kept asking after the unknown status
    assert "may still" in text.lower()  # no public cancel: the remote run may go on


def test_real_client_refuses_comma_joined_ids_instead_of_passing_at_once(
    platform, tmp_path, monkeypatch, capsys
):
    """The API takes repeated parameters; "P1,P2" would match nothing and the wait pass at once."""
    platform.add_acronis_task(state="started")
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: backups
    environment: acr
    wait_tasks: {{state: started, policyId: "{POLICY},{RES_1}"}}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0
    assert f"policyId: [{POLICY}, {RES_1}]" in text
    listings = [c for c in platform.log if c["path"] == "/api/task_manager/v2/tasks"]
    assert listings == []  # refused by validate, with its position: nothing was sent at all


@pytest.mark.parametrize("status", [500, 400])
def test_real_client_shows_an_error_body_truncated_and_escaped(
    platform, tmp_path, monkeypatch, capsys, status
):
    """Error body format is unknown: show whatever text it carries, truncated and escaped."""
    platform.raw_start_answer = (
        status,
        "text/html",
        "<html><body>\x1b[31mProxy\rError\x07 " + "A" * 5000 + "</body></html>",
    )
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0
    assert "Proxy" in text
    assert "\x1b[31m" not in text and "\x07" not in text and "\rError" not in text
    assert "A" * 600 not in text
    assert len(platform.calls("POST", "/v1/tasks/")) == 1  # never re-sent: it may have started


def test_real_client_audience_is_canonical_whatever_case_and_default_port(
    platform, tmp_path, monkeypatch, capsys
):
    """`aud` must equal the token endpoint URL exactly.

    A base_url typed as HTTP://LocalHost:80/ would not.
    """
    port = platform.server.server_address[1]
    platform.url = f"http://localhost:{port}"  # what the server expects in `aud`
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    path.write_text(
        path.read_text().replace(
            f"base_url: http://localhost:{port}\n", f"base_url: HTTP://LocalHost:{port}/\n"
        )
    )
    assert f"HTTP://LocalHost:{port}/" in path.read_text()
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert platform.assertions[0]["aud"] == f"http://localhost:{port}/v1/oauth/token"


@pytest.mark.parametrize("status", [401, 403])
def test_real_client_start_refused_for_its_token_is_replayed_once_with_a_new_one(
    platform, tmp_path, monkeypatch, capsys, status
):
    """A start refused with 401/403 was not processed: one renewal, one replay, one run."""
    platform.kill_first_token["mft"] = (1, status)  # the login check's call passes
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: by-id
    start_task: {T_OK}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/v1/oauth/token")) == 2
    assert len(platform.calls("POST", f"/v1/tasks/{T_OK}/start")) == 2
    assert len(platform.runs) == 1


def test_real_client_acronis_403_renews_once_for_a_role_granted_since(
    platform, tmp_path, monkeypatch, capsys
):
    """Section 3: the token is renewed once on 401/403; a role granted later is in the new token."""
    platform.kill_first_token["acronis"] = (1, 403)  # the login check's call passes
    platform.add_acronis_task(state="started", complete_after=0.1)
    code = apply(wait_pipeline(platform, tmp_path, monkeypatch))
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    assert len(platform.calls("POST", "/api/2/idp/token")) == 2


def test_real_client_form_token_body_override_is_a_standard_oauth_post(
    platform, tmp_path, monkeypatch, capsys
):
    """MFTRUN_MFT_TOKEN_BODY=form: the docs' "standard OAuth-style POST", form-encoded."""
    monkeypatch.setenv("MFTRUN_MFT_TOKEN_BODY", "form")
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: licence
    http: {path: /v1/licenses/current}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    (call,) = platform.calls("POST", "/v1/oauth/token")
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert set(parse_qs(call["body"].decode())) == {
        "grant_type",
        "client_assertion_type",
        "client_assertion",
    }


def test_real_client_token_body_form_from_the_pipeline_file(
    platform, tmp_path, monkeypatch, capsys
):
    """The same override written where the contract asks for it: in the pipeline file."""
    monkeypatch.delenv("MFTRUN_MFT_TOKEN_BODY", raising=False)
    path = write_pipeline(
        tmp_path,
        platform,
        """
  - id: licence
    http: {path: /v1/licenses/current}
""",
        monkeypatch,
    )
    path.write_text(
        path.read_text().replace(
            "    provider: automate-mft\n", "    provider: automate-mft\n    token_body: form\n", 1
        )
    )
    code = apply(path)
    out = capsys.readouterr()
    assert platform.violations == [], platform.violations
    assert code == 0, out.out + out.err
    (call,) = platform.calls("POST", "/v1/oauth/token")
    assert call["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize("answer", ["ok", "drop", "503"])
def test_real_client_http_put_that_starts_a_plan_is_never_resent(
    platform, tmp_path, monkeypatch, capsys, answer
):
    """Acronis starts a protection plan with a PUT.

    A start is never replayed after an ambiguous failure.
    """
    platform.policy_run_answer = answer
    path = write_pipeline(
        tmp_path,
        platform,
        f"""
  - id: run-plan
    environment: acr
    http:
      method: PUT
      path: /api/policy_management/v4/applications/run
      json: {{state: running, policy_id: "{POLICY}", context_ids: ["{RES_1}"]}}
""",
        monkeypatch,
    )
    code = apply(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert platform.violations == [], platform.violations
    assert len(platform.policy_runs) == 1, (
        platform.policy_runs
    )  # processed once, whatever came back
    assert platform.policy_runs[0] == {
        "state": "running",
        "policy_id": POLICY,
        "context_ids": [RES_1],
    }
    if answer == "ok":
        assert code == 0, text
    else:
        assert code != 0
        if answer == "drop":
            assert "may have" in text
