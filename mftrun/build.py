"""A loaded (ideally schema-valid) document -> the frozen `mftrun.model.Pipeline`.

This is also where the semantic checks live that JSON Schema cannot express:
provider-specific fields, URLs, durations, one action per step, environment
references, the dependency graph and templates. Every check appends a
positioned `Problem` and carries on, so one run reports everything.

Why defensive: we also run on documents the schema rejected (so a user sees a
cycle and a typo in one go). Anything of the wrong shape was already reported
by the schema; here it is skipped, never trusted.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from collections.abc import Mapping

from mftrun import templating
from mftrun.durations import parse_duration
from mftrun.errors import Problem
from mftrun.http.session import is_loopback
from mftrun.loader import Document
from mftrun.model import (
    ACTIONS,
    MFT_REGIONS,
    PROVIDER_ACTIONS,
    PROVIDERS,
    SECRET_FIELDS,
    Action,
    Condition,
    CredentialRef,
    Environment,
    Pipeline,
    Poll,
    Position,
    Retry,
    Step,
)

CREDENTIAL_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "automate-mft": ("tenant_id", "key_id", "private_key"),
        "acronis": ("client_id", "client_secret"),
        "webhook": (),
    }
)
# Header names whose value is a secret however it is spelled: never inline in a webhook env.
_SECRET_HEADER = re.compile(r"authorization|token|secret|key|signature|password|auth", re.I)
# Documented task manager v2 filters (see ../shared/docs/api-contracts.md, section 2).
MULTI_FILTERS = (
    "id",
    "uuid",
    "type",
    "queue",
    "priority",
    "startedBy",
    "policyId",
    "policyName",
    "policyType",
    "resourceId",
    "resourceName",
    "resourceType",
    "workflowId",
    "tag",
    "state",
    "resultCode",
    "executorId",
)
TIME_FILTERS = ("enqueuedAt", "assignedAt", "startedAt", "updatedAt", "completedAt")
FILTER_ENUMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "state": ("enqueued", "assigned", "started", "paused", "completed"),
        "resultCode": ("ok", "error", "warning", "cancelled", "abandoned", "timedout"),
        "priority": ("low", "belowNormal", "normal", "aboveNormal", "high"),
    }
)
DEFAULT_EXPECT = (200, 201, 202, 204)
CONDITIONS = ("success", "failure", "always")
# Top-level template names the executor provides (executor._context and its callers).
BASE_NAMES = frozenset({"vars", "steps"})
OUTPUT_NAMES = BASE_NAMES | {"result", "response"}  # a step's own outputs: what it returned
UNTIL_NAMES = BASE_NAMES | {"response"}  # http until: the latest answer
_TIME_FILTER = re.compile(r"(gt|lt|ge|le|eq)\((.+)\)")
_DUNDER = re.compile(r"""(\.\s*|\[\s*['"])__\w+__""")
TASK_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)  # a UUID

Path = tuple


def build_pipeline(doc: Document) -> tuple[Pipeline | None, list[Problem]]:
    """Build the model; return (pipeline, []) or (None, problems)."""
    builder = _Builder(doc)
    pipeline = builder.build()
    return (pipeline if not builder.problems else None), builder.problems


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def _suggest(word: str, choices: Any) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self.templates: list[tuple[str, Path, frozenset[str]]] = []  # (step, path, refs)

    # -- helpers ---------------------------------------------------------------
    def problem(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        self.problems.append(self.doc.problem(path, message, hint, key=key))

    def pos(self, path: Path, *, key: bool = False) -> Position:
        return self.doc.position(path, key=key)

    def duration(self, value: Any, path: Path) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return None

    def template(
        self,
        step_id: str,
        path: Path,
        text: str,
        *,
        expression: bool = False,
        names: frozenset[str] = BASE_NAMES,
    ) -> None:
        """Check a template's syntax and the names it reads now; remember its step
        references for the graph check. `names` are the top-level names the executor
        provides where this template is evaluated: any other name would only fail at
        run time, after earlier steps have already run."""
        if not expression and not templating.is_template(text):
            return
        error, refs, used = _analyse_expression(text) if expression else _analyse(text)
        if error:
            self.problem(
                path,
                f"template syntax error: {error}",
                "templates are Jinja2: {{ expression }}; check brackets and quotes",
            )
            return
        if _DUNDER.search(text):
            self.problem(
                path,
                "templates may not read Python internals (names like __class__): "
                "the sandbox refuses them at run time",
                "read data only: vars, steps.<id>.outputs, result",
            )
            return
        # `steps.push-invoices` reads as steps.push minus `invoices`: the step
        # reference check below explains that better than "unknown name 'invoices'".
        unknown = sorted(
            name
            for name in used - names - _jinja_globals()
            if not re.search(rf"\w-{re.escape(name)}\b", text)
        )
        if unknown:
            hint = _suggest(unknown[0], names) or (
                f"names available here: {', '.join(sorted(names))}; "
                "values from outside the file go in vars: or --var"
            )
            self.problem(path, f"template uses unknown name {unknown[0]!r}", hint)
            return
        if refs:
            self.templates.append((step_id, path, refs))

    def templates_in(self, step_id: str, value: Any, path: Path) -> None:
        """Check every template string inside JSON-like data (iterative: any depth)."""
        stack = [(value, path)]
        while stack:
            value, path = stack.pop()
            if isinstance(value, str):
                self.template(step_id, path, value)
            elif isinstance(value, dict):
                stack.extend((item, path + (key,)) for key, item in value.items())
            elif isinstance(value, list):
                stack.extend((item, path + (i,)) for i, item in enumerate(value))

    # -- the document ----------------------------------------------------------
    def build(self) -> Pipeline | None:
        data = self.doc.data
        if not isinstance(data, dict):
            return None  # the schema said it must be a mapping
        raw_envs = data.get("environments")
        raw_envs = raw_envs if isinstance(raw_envs, dict) else {}
        environments = {}
        for name, raw in raw_envs.items():
            env = self.environment(str(name), raw, ("environments", name))
            if env is not None:
                environments[name] = env
        defaults = self.defaults(data.get("defaults"), raw_envs)
        raw_steps = data.get("steps")
        raw_steps = raw_steps if isinstance(raw_steps, list) else []
        steps = []
        for index, raw in enumerate(raw_steps):
            step = self.step(index, raw, ("steps", index), defaults, raw_envs)
            if step is not None:
                steps.append(step)
        self.graph(raw_steps)
        timeout = self.duration(data.get("timeout"), ("timeout",))
        if self.problems:
            return None
        name = data.get("name")
        if not isinstance(name, str) or not name:
            stem = self.doc.file.replace("\\", "/").rsplit("/", 1)[-1]
            name = stem.rsplit(".", 1)[0] or stem
        raw_vars = data.get("vars")
        return Pipeline(
            name=name,
            path=self.doc.file,
            sha256=self.doc.sha256,
            environments=MappingProxyType(environments),
            steps=tuple(steps),
            version=data.get("version", 1),
            description=data.get("description") or "",
            max_parallel=data.get("max_parallel", 8),
            timeout=timeout,
            lock=data.get("lock") if isinstance(data.get("lock"), str) else None,
            vars=_freeze(raw_vars if isinstance(raw_vars, dict) else {}),
            position=self.pos(()),
        )

    # -- environments ----------------------------------------------------------
    def environment(self, name: str, raw: Any, path: Path) -> Environment | None:
        if not isinstance(raw, dict) or raw.get("provider") not in PROVIDERS:
            return None
        provider = raw["provider"]
        if provider == "webhook":
            return self.webhook(name, raw, path)
        region, base_url = raw.get("region"), raw.get("base_url")
        resolved: str | None = None
        if "headers" in raw:
            self.problem(
                path + ("headers",),
                "headers are for webhook environments only",
                "put per-call headers on the http step instead",
                key=True,
            )
        base_url_env = region_env = None
        if isinstance(base_url, dict):
            if set(base_url) == {"env"} and isinstance(base_url["env"], str):
                base_url_env = base_url["env"]
            else:
                self.problem(
                    path + ("base_url",),
                    f"{provider} base_url is a URL or {{env: NAME}}",
                    "only a webhook environment reads its URL from {file: PATH}",
                )
            base_url = None
        if isinstance(region, dict):
            if set(region) == {"env"} and isinstance(region["env"], str):
                region_env = region["env"]
            else:
                self.problem(path + ("region",), "region is us, eu, staging or {env: NAME}")
            region = None
        given_url = base_url is not None or base_url_env is not None
        given_region = region is not None or region_env is not None
        if provider == "automate-mft":
            if given_region and given_url:
                self.problem(
                    path + ("base_url",),
                    f"environment {name!r} sets both region and base_url",
                    "keep one: region picks the vendor's URL",
                    key=True,
                )
            elif isinstance(region, str):
                resolved = MFT_REGIONS.get(region)
                if resolved is None:
                    self.problem(
                        path + ("region",),
                        f"unknown automate-mft region {region!r}: use us, eu or staging",
                        "or give base_url: https://... for another host",
                    )
            elif not given_region and not given_url:
                self.problem(
                    path,
                    f"environment {name!r} needs region (us, eu or staging) or base_url",
                    "e.g. region: us",
                )
        else:
            if given_region:
                self.problem(
                    path + ("region",),
                    "region is for automate-mft environments only",
                    "acronis environments give their data-centre URL as base_url, "
                    "e.g. https://eu2-cloud.acronis.com",
                    key=True,
                )
            if not given_url:
                self.problem(
                    path,
                    f"environment {name!r} (acronis) needs base_url",
                    "the data-centre URL, e.g. https://eu2-cloud.acronis.com",
                )
        if isinstance(base_url, str):
            resolved = self.url(base_url, path + ("base_url",))
        credentials = self.credentials(provider, raw.get("credentials"), path + ("credentials",))
        timeout = self.duration(raw.get("timeout"), path + ("timeout",))
        if timeout is not None and timeout <= 0:
            self.problem(path + ("timeout",), "the HTTP timeout must be more than 0")
        ca_bundle = raw.get("ca_bundle")
        token_body = raw.get("token_body")
        if token_body is not None and provider != "automate-mft":
            self.problem(
                path + ("token_body",),
                "token_body is for automate-mft environments only",
                "remove it: the Acronis token request is always form-encoded",
                key=True,
            )
        return Environment(
            name=name,
            provider=provider,
            base_url=resolved or "",
            credentials=MappingProxyType(credentials),
            region=region if isinstance(region, str) else None,
            ca_bundle=ca_bundle if isinstance(ca_bundle, str) else None,
            http_timeout=timeout if timeout else 30.0,
            token_body=token_body if token_body in ("json", "form") else "json",
            base_url_env=base_url_env,
            region_env=region_env,
            position=self.pos(path, key=True),
        )

    def webhook(self, name: str, raw: dict[str, Any], path: Path) -> Environment | None:
        """An incoming webhook: a URL (a secret one through env:/file:) and optional headers,
        no credentials and no token. Only the http action runs on it."""
        for key, why in (
            ("credentials", "a webhook has no platform token; put a secret in headers"),
            ("region", "give the webhook's URL as base_url"),
            ("token_body", "a webhook has no token request"),
        ):
            if key in raw:
                self.problem(
                    path + (key,), f"{key} is not used by webhook environments", why, key=True
                )
        base_url = raw.get("base_url")
        resolved, url_ref = "", None
        if base_url is None:
            self.problem(
                path,
                f"environment {name!r} (webhook) needs base_url",
                "the incoming webhook's URL, e.g. base_url: {env: SLACK_WEBHOOK_URL}",
            )
        elif isinstance(base_url, str):
            resolved = self.url(base_url, path + ("base_url",), query=True) or ""
            if resolved and (leak := _secret_in_url(resolved)):
                self.problem(
                    path + ("base_url",),
                    f"this webhook URL {leak}: pipeline files live in Git, and a secret "
                    "there is a leaked secret",
                    "use base_url: {env: NAME} or base_url: {file: PATH}",
                )
        elif isinstance(base_url, dict) and len(base_url) == 1:
            kind, ref = next(iter(base_url.items()))
            if kind in ("env", "file") and isinstance(ref, str) and ref:
                url_ref = CredentialRef(kind, ref, self.pos(path + ("base_url",)))
        headers: dict[str, CredentialRef] = {}
        raw_headers = raw.get("headers")
        for header, value in (raw_headers if isinstance(raw_headers, dict) else {}).items():
            hpath = path + ("headers", header)
            if isinstance(value, str):
                if _SECRET_HEADER.search(str(header)):
                    self.problem(
                        hpath,
                        f"header {header} must not be written inline: pipeline files live in "
                        "Git, and a secret there is a leaked secret",
                        f"use {header}: {{env: NAME}} or {header}: {{file: PATH}}",
                    )
                    continue
                headers[str(header)] = CredentialRef("value", value, self.pos(hpath))
            elif isinstance(value, dict) and len(value) == 1:
                kind, ref = next(iter(value.items()))
                if kind in ("env", "file") and isinstance(ref, str) and ref:
                    headers[str(header)] = CredentialRef(kind, ref, self.pos(hpath))
        timeout = self.duration(raw.get("timeout"), path + ("timeout",))
        if timeout is not None and timeout <= 0:
            self.problem(path + ("timeout",), "the HTTP timeout must be more than 0")
        ca_bundle = raw.get("ca_bundle")
        return Environment(
            name=name,
            provider="webhook",
            base_url=resolved,
            credentials=MappingProxyType({}),
            ca_bundle=ca_bundle if isinstance(ca_bundle, str) else None,
            http_timeout=timeout if timeout else 30.0,
            headers=MappingProxyType(headers),
            url_ref=url_ref,
            position=self.pos(path, key=True),
        )

    def url(self, text: str, path: Path, *, query: bool = False) -> str | None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(text.strip())
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            self.problem(path, f"base_url {text!r} is not a valid URL: {exc}")
            return None
        if parts.scheme not in ("https", "http") or not host:
            self.problem(
                path,
                f"base_url {text!r} is not an https:// URL",
                "write e.g. https://eu2-cloud.acronis.com",
            )
            return None
        if parts.scheme == "http" and not is_loopback(host):
            self.problem(
                path,
                f"base_url {text!r} uses plain http: tokens and credentials "
                "would cross the network unencrypted",
                "use https://; http:// is allowed only for loopback hosts "
                "(127.0.0.1, ::1, localhost), e.g. the emulator",
            )
            return None
        if parts.fragment or (parts.query and not query):
            self.problem(path, f"base_url {text!r} must not have a query or fragment")
            return None
        return text.strip().rstrip("/")

    def credentials(self, provider: str, raw: Any, path: Path) -> dict[str, CredentialRef]:
        out: dict[str, CredentialRef] = {}
        if not isinstance(raw, dict):
            return out
        wanted = CREDENTIAL_FIELDS[provider]
        for field, value in raw.items():
            fpath = path + (field,)
            if field not in wanted:
                if field in CREDENTIAL_FIELDS["automate-mft"] + CREDENTIAL_FIELDS["acronis"]:
                    self.problem(
                        fpath,
                        f"{provider} environments do not use credentials.{field}",
                        f"{provider} needs: {', '.join(wanted)}",
                        key=True,
                    )
                continue  # unknown names: the schema reported them
            position = self.pos(fpath)
            if isinstance(value, str):
                if field in SECRET_FIELDS:
                    # The schema says this too; the semantic check keeps the message
                    # even for documents validated without it.
                    self.problem(
                        fpath,
                        f"{field} must not be written inline: pipeline files "
                        "live in Git, and a secret there is a leaked secret",
                        f"use {field}: {{env: NAME}} or {field}: {{file: PATH}}",
                    )
                    continue
                out[field] = CredentialRef("value", value, position)
            elif isinstance(value, dict) and len(value) == 1:
                kind, ref = next(iter(value.items()))
                if kind in ("env", "file") and isinstance(ref, str) and ref:
                    out[field] = CredentialRef(kind, ref, position)
                elif kind == "file" and isinstance(ref, dict) and isinstance(ref.get("env"), str):
                    out[field] = CredentialRef("file_env", ref["env"], position)
        return out

    # -- defaults and steps ----------------------------------------------------
    def defaults(self, raw: Any, raw_envs: Mapping[str, Any]) -> dict[str, Any]:
        """Parse defaults once (not per step); report their problems once."""
        raw = raw if isinstance(raw, dict) else {}
        out: dict[str, Any] = {
            "environment": raw.get("environment")
            if isinstance(raw.get("environment"), str)
            else None,
            "timeout": self.duration(raw.get("timeout"), ("defaults", "timeout")),
            "poll": self.poll_fields(raw.get("poll"), ("defaults", "poll")),
            "retries": self.retry_fields(raw.get("retries"), ("defaults", "retries")),
            "continue_on_error": raw.get("continue_on_error") is True,
            "environment_ok": True,
        }
        env = out["environment"]
        if env is not None and env not in raw_envs:
            out["environment_ok"] = False
            self.problem(
                ("defaults", "environment"),
                f"unknown environment {env!r}",
                _suggest(env, raw_envs) or _defined(raw_envs),
            )
        return out

    def poll_fields(self, raw: Any, path: Path) -> dict[str, float]:
        out: dict[str, float] = {}
        if not isinstance(raw, dict):
            return out
        for name in ("interval", "max_interval"):
            value = self.duration(raw.get(name), path + (name,))
            if value is not None:
                if value <= 0:
                    self.problem(path + (name,), f"poll.{name} must be more than 0")
                out[name] = value
        factor = raw.get("factor")
        if isinstance(factor, (int, float)) and not isinstance(factor, bool):
            if not 1 <= factor <= 10:  # also refuses NaN and inf
                self.problem(
                    path + ("factor",),
                    f"poll.factor {factor} must be between 1 and 10",
                    "1 polls at a steady interval; "
                    "1.5 (the default) grows the gap by half each time",
                )
            else:
                out["factor"] = float(factor)
        history = raw.get("history")
        if isinstance(history, bool):  # true: the default number of runs; false: off
            if not history:
                out["history"] = 0
        elif isinstance(history, int) and history > 0:
            out["history"] = history
        return out

    def retry_fields(self, raw: Any, path: Path) -> dict[str, float]:
        out: dict[str, Any] = {}
        if not isinstance(raw, dict):
            return out
        attempts = raw.get("attempts")
        if isinstance(attempts, int) and not isinstance(attempts, bool):
            out["attempts"] = attempts
        delay = self.duration(raw.get("delay"), path + ("delay",))
        if delay is not None:
            out["delay"] = delay
        backoff = raw.get("backoff")
        if isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
            if not 1 <= backoff <= 10:  # also refuses NaN and inf
                self.problem(
                    path + ("backoff",),
                    f"retries.backoff {backoff} must be between 1 and 10",
                    "1 waits the same delay before every retry; 2 doubles it each time",
                )
            else:
                out["backoff"] = float(backoff)
        return out

    def step(
        self,
        index: int,
        raw: Any,
        path: Path,
        defaults: dict[str, Any],
        raw_envs: Mapping[str, Any],
    ) -> Step | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            return None
        sid = raw["id"]
        kinds = [kind for kind in ACTIONS if kind in raw]
        kind = kinds[0] if kinds else None
        if not kinds:
            self.problem(
                path,
                f"step {sid!r} has no action",
                "give it exactly one of start_task, wait_tasks or http",
            )
        elif len(kinds) > 1:
            self.problem(
                path + (kinds[1],),
                f"step {sid!r} has {len(kinds)} actions "
                f"({', '.join(kinds)}); a step does exactly one thing",
                "split it into separate steps joined by needs",
                key=True,
            )
        environment = self.step_environment(sid, raw, path, defaults, raw_envs, kind)
        action = self.action(sid, kind, raw.get(kind), path + (kind,)) if kind else None
        needs = raw.get("needs")
        needs_t = tuple(n for n in needs if isinstance(n, str)) if isinstance(needs, list) else ()
        run_if = self.condition(sid, raw.get("run_if"), path + ("run_if",))
        timeout = self.duration(raw.get("timeout"), path + ("timeout",))
        if timeout is None:
            timeout = defaults["timeout"]
        if timeout is not None and timeout <= 0:
            self.problem(path + ("timeout",), "timeout must be more than 0")
        poll_values = {**defaults["poll"], **self.poll_fields(raw.get("poll"), path + ("poll",))}
        poll = Poll(**poll_values)
        if poll.max_interval < poll.interval:
            self.problem(
                path + ("poll",) if "poll" in raw else ("defaults", "poll"),
                f"poll.max_interval ({poll.max_interval:g}s) is smaller than "
                f"poll.interval ({poll.interval:g}s)",
                "raise max_interval",
            )
        retries = Retry(
            **{**defaults["retries"], **self.retry_fields(raw.get("retries"), path + ("retries",))}
        )
        outputs = self.outputs(sid, raw.get("outputs"), path + ("outputs",))
        coe = raw.get("continue_on_error")
        if action is not None and environment is not None and kind == "http":
            env = raw_envs.get(environment)
            webhook = isinstance(env, dict) and env.get("provider") == "webhook"
            if not action.spec["path"] and not webhook:
                self.problem(
                    path + ("http",),
                    f"step {sid!r}: http needs path",
                    "the path below the environment's base_url, e.g. /v1/licenses/current; "
                    "only a webhook environment may leave it out",
                )
        if action is None or environment is None:
            return None
        return Step(
            id=sid,
            action=action,
            environment=environment,
            index=index,
            needs=needs_t,
            run_if=run_if,
            timeout=timeout,
            poll=poll,
            retries=retries,
            continue_on_error=coe if isinstance(coe, bool) else defaults["continue_on_error"],
            outputs=outputs,
            position=self.pos(path),
        )

    def step_environment(
        self,
        sid: str,
        raw: dict[str, Any],
        path: Path,
        defaults: dict[str, Any],
        raw_envs: Mapping[str, Any],
        kind: str | None,
    ) -> str | None:
        name = raw.get("environment")
        epath = path + ("environment",)
        if name is None:
            name = defaults["environment"]
            epath = ("defaults", "environment")
            if name is None:
                self.problem(
                    path,
                    f"step {sid!r} has no environment",
                    "set environment: on the step, or defaults.environment",
                )
                return None
            if not defaults["environment_ok"]:
                return None  # reported once, at defaults.environment
        if not isinstance(name, str):
            return None
        if name not in raw_envs:
            self.problem(
                epath,
                f"step {sid!r} uses unknown environment {name!r}",
                _suggest(name, raw_envs) or _defined(raw_envs),
            )
            return None
        env = raw_envs[name]
        provider = env.get("provider") if isinstance(env, dict) else None
        if (
            kind
            and isinstance(provider, str)
            and provider in PROVIDER_ACTIONS
            and kind not in PROVIDER_ACTIONS[provider]
        ):
            offers = [k for k, v in PROVIDER_ACTIONS.items() if kind in v]
            self.problem(
                path + (kind,),
                f"step {sid!r}: {kind} is not offered by {provider} (environment {name!r})",
                f"{provider} offers {', '.join(PROVIDER_ACTIONS[provider])}; {kind} "
                f"needs an environment with provider {' or '.join(offers)}",
                key=True,
            )
        return name

    # -- actions ---------------------------------------------------------------
    def action(self, sid: str, kind: str, raw: Any, path: Path) -> Action | None:
        builder = {"start_task": self.start_task, "wait_tasks": self.wait_tasks, "http": self.http}[
            kind
        ]
        spec = builder(sid, raw, path)
        if spec is None:
            return None
        return Action(kind, MappingProxyType(spec), self.pos(path, key=True))

    def task_id_problem(self, value: Any, path: Path, *, short: bool) -> None:
        """A task id is a UUID (api-contracts: "Task ids are UUIDs"). Anything else, typically
        a task's name in the short form, would be sent as an id and answered 404 at run time,
        possibly hours in: say so now, with the form that takes a name."""
        if not isinstance(value, str) or templating.is_template(value) or TASK_ID.match(value):
            return
        written = "start_task" if short else "start_task.task_id"
        self.problem(
            path,
            f"{written} {value!r} is not a task id: Automate MFT task ids are UUIDs "
            "such as 02115928-16fe-4493-949b-d77d302a88ee",
            f"to start the task by its name, write start_task: {{name: {value}}}",
        )

    def start_task(self, sid: str, raw: Any, path: Path) -> dict[str, Any] | None:
        if isinstance(raw, str):
            if not raw.strip():
                return None
            self.template(sid, path, raw)
            self.task_id_problem(raw, path, short=True)
            return {
                "task_id": raw,
                "parameters": {},
                "success_statuses": ["success"],
                "failure_statuses": ["failed"],
            }
        if not isinstance(raw, dict):
            return None
        has_id, has_name = "task_id" in raw, "name" in raw
        if has_id and has_name:
            self.problem(
                path + ("name",),
                "start_task takes task_id or name, not both",
                "keep task_id (stable) or name",
                key=True,
            )
            return None
        if not has_id and not has_name:
            self.problem(
                path,
                "start_task needs task_id or name",
                "e.g. start_task: {task_id: 02115928-16fe-4493-949b-d77d302a88ee}",
            )
            return None
        spec: dict[str, Any] = {}
        which = "task_id" if has_id else "name"
        spec[which] = raw[which]
        if has_id:
            self.task_id_problem(raw["task_id"], path + ("task_id",), short=False)
        params = raw.get("parameters")
        spec["parameters"] = params if isinstance(params, dict) else {}
        spec["success_statuses"] = raw.get("success_statuses") or ["success"]
        spec["failure_statuses"] = raw.get("failure_statuses") or ["failed"]
        both = set(map(str, spec["success_statuses"])) & set(map(str, spec["failure_statuses"]))
        if both:
            self.problem(
                path + ("failure_statuses",),
                f"status {sorted(both)[0]!r} is listed as both success and failure",
                "list each status once",
            )
        self.templates_in(sid, raw, path)
        return spec

    def wait_tasks(self, sid: str, raw: Any, path: Path) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            return None
        spec: dict[str, Any] = {}
        for key, value in raw.items():
            vpath = path + (key,)
            if key in MULTI_FILTERS:
                values = [value] if isinstance(value, str) else value
                if not isinstance(values, list):
                    continue
                allowed = FILTER_ENUMS.get(key)
                for i, item in enumerate(values):
                    ipath = vpath if isinstance(value, str) else vpath + (i,)
                    if (
                        allowed
                        and isinstance(item, str)
                        and item not in allowed
                        and not templating.is_template(item)
                    ):
                        self.problem(
                            ipath,
                            f"wait_tasks.{key}: {item!r} is not one of {', '.join(allowed)}",
                            _suggest(item, allowed),
                        )
                spec[key] = list(values)
            elif key in TIME_FILTERS:
                if (
                    isinstance(value, str)
                    and not templating.is_template(value)
                    and not _TIME_FILTER.fullmatch(value.strip())
                ):
                    self.problem(
                        vpath,
                        f"wait_tasks.{key} {value!r} is not a time filter",
                        f"write e.g. {key}: gt(2020-04-22T11:00:00Z) (gt, lt, ge, le or eq)",
                    )
                spec[key] = value
            elif key == "settle":
                spec[key] = self.duration(value, vpath) or 0.0
            else:
                spec[key] = value
        if not any(
            k in raw for k in MULTI_FILTERS + TIME_FILTERS
        ):  # a wrong type is reported alone
            self.problem(
                path,
                "wait_tasks needs at least one filter",
                "without a filter it would wait for every task of the tenant; "
                "e.g. state: [started, paused] or policyId: ...",
            )
        spec.setdefault("accept_results", ["ok", "warning"])
        self.templates_in(sid, raw, path)
        return spec

    def http(self, sid: str, raw: Any, path: Path) -> dict[str, Any] | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("path", ""), str):
            return None
        method = raw.get("method", "GET")
        spec: dict[str, Any] = {
            "method": method.upper() if isinstance(method, str) else "GET",
            "path": raw.get("path", ""),  # "" only on a webhook: its URL as it is (step())
            "query": raw.get("query") if isinstance(raw.get("query"), dict) else {},
            "headers": raw.get("headers") if isinstance(raw.get("headers"), dict) else {},
            "expect": raw.get("expect") or list(DEFAULT_EXPECT),
        }
        if "json" in raw:
            spec["json"] = raw["json"]
        from mftrun.http import headers as http_headers

        for name, value in spec["headers"].items():
            where = path + ("headers", name)
            if (why := http_headers.name_problem(str(name))) is not None:
                hint = (
                    "remove it; set the environment's credentials instead (a webhook "
                    "environment: headers: {Authorization: {env: NAME}})"
                    if "authenticates" in why
                    else "remove it; mftrun sets it from base_url and the request body"
                    if str(name).strip().lower() in http_headers.REFUSED
                    else "write the header name without spaces or other separators"
                )
                self.problem(where, why, hint, key=True)
            elif (
                isinstance(value, str)
                and not templating.is_template(value)
                and (bad := http_headers.value_problem(value)) is not None
            ):
                self.problem(where, f"header {name!r}: {bad}", "write the value on one line")
        until = raw.get("until")
        if isinstance(until, str):
            spec["until"] = until
            self.template(sid, path + ("until",), until, expression=True, names=UNTIL_NAMES)
        self.templates_in(sid, {k: v for k, v in raw.items() if k != "until"}, path)
        return spec

    # -- conditions and outputs ------------------------------------------------
    def condition(self, sid: str, raw: Any, path: Path) -> Condition:
        if not isinstance(raw, str):
            return Condition()
        text = raw.strip()
        if text in CONDITIONS:
            return Condition(text)  # type: ignore[arg-type]
        if "{{" in text:
            self.template(sid, path, text, expression=True)
            return Condition("expression", text)
        self.problem(
            path,
            f"run_if {raw!r} must be success, failure, always or a {{{{ expression }}}}",
            _suggest(text, CONDITIONS) or 'e.g. run_if: "{{ steps.pull.outputs.count > 0 }}"',
        )
        return Condition()

    def outputs(self, sid: str, raw: Any, path: Path) -> Mapping[str, str]:
        if not isinstance(raw, dict):
            return MappingProxyType({})
        out = {}
        for name, text in raw.items():
            if isinstance(text, str):
                self.template(sid, path + (name,), text, names=OUTPUT_NAMES)
                out[name] = text
        return MappingProxyType(out)

    # -- the graph -------------------------------------------------------------
    def graph(self, raw_steps: list[Any]) -> None:
        """Duplicate ids, unknown needs, self-needs, cycles, template step references."""
        from mftrun.plan import find_cycles

        first: dict[str, int] = {}
        needs: dict[str, list[str]] = {}
        need_paths: dict[tuple[str, str], Path] = {}
        for index, raw in enumerate(raw_steps):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            sid = raw["id"]
            if sid in first:
                line = self.pos(("steps", first[sid], "id")).line
                self.problem(
                    ("steps", index, "id"),
                    f"duplicate step id {sid!r} (first at line {line})",
                    "step ids must be unique; rename one",
                )
                continue
            first[sid] = index
        for sid, index in first.items():
            raw_needs = raw_steps[index].get("needs")
            needs[sid] = []
            if not isinstance(raw_needs, list):
                continue
            for j, need in enumerate(raw_needs):
                if not isinstance(need, str):
                    continue
                npath = ("steps", index, "needs", j)
                if need == sid:
                    self.problem(npath, f"step {sid!r} needs itself", "remove it from needs")
                elif need not in first:
                    self.problem(
                        npath,
                        f"step {sid!r} needs unknown step {need!r}",
                        _suggest(need, first) or "needs lists ids of other steps",
                    )
                else:
                    needs[sid].append(need)
                    need_paths.setdefault((sid, need), npath)
        for cycle in find_cycles(needs):
            closer, closed, ring = self.closing_need(cycle, first, need_paths)
            self.problem(
                need_paths[(closer, closed)],
                f"dependency cycle: {' -> '.join(ring)}",
                "each step in the cycle needs the one before it; this need of "
                f"{closer!r} on {closed!r} closes it: remove it, or another need of the cycle",
            )
        self.template_references(first, needs)

    def closing_need(
        self,
        cycle: list[str],
        first: Mapping[str, int],
        need_paths: Mapping[tuple[str, str], Path],
    ) -> tuple[str, str, list[str]]:
        """The needs entry that closes a cycle, and the cycle written to end with it.

        A pipeline written top-down needs only steps above; the entry that needs a step
        further down the file is the one that closes the loop (of several, the last in the
        file). The cycle is reported once, at that entry, and written starting from the step
        that has it, so its last arrow is that need."""
        nodes = cycle[:-1]  # cycle[k] is needed by cycle[k + 1]; it ends where it began
        edges = [(nodes[(k + 1) % len(nodes)], nodes[k]) for k in range(len(nodes))]
        forward = [(s, t) for s, t in edges if first[t] > first[s]] or edges

        def where(edge: tuple[str, str]) -> tuple[int, int]:
            position = self.pos(need_paths[edge])
            return position.line, position.column

        closer, closed = max(forward, key=where)
        start = nodes.index(closer)
        ring = nodes[start:] + nodes[:start] + [closer]
        return closer, closed, ring

    def template_references(self, ids: Mapping[str, int], needs: Mapping[str, list[str]]) -> None:
        upstream: dict[str, frozenset[str]] = {}
        for sid, path, refs in self.templates:
            for ref in sorted(refs):
                if ref not in ids:
                    hyphenated = [i for i in ids if i.startswith(ref + "-")]
                    hint = (
                        f"a step id with '-' is written steps['{hyphenated[0]}']"
                        if hyphenated
                        else _suggest(ref, ids) or "steps.<id> must name a step of this file"
                    )
                    self.problem(path, f"template refers to unknown step {ref!r}", hint)
                    continue
                if ref in needs.get(sid, ()):
                    continue
                if sid not in upstream:
                    upstream[sid] = _ancestors(sid, needs)
                if ref not in upstream[sid]:
                    what = "itself" if ref == sid else f"step {ref!r}"
                    self.problem(
                        path,
                        f"step {sid!r} reads steps.{ref} but does not depend on {what}",
                        "a step's own result is `result`/`response`"
                        if ref == sid
                        else f"add {ref!r} to the needs of {sid!r}",
                    )


# `{{ name.attr['key'].attr }}` with plain text around: by far the most common
# template. Checked without Jinja's lexer and parser, which cost ~0.2 ms each.
_SIMPLE_EXPR = re.compile(
    r"\{\{\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[\s*'[^'\\{}]*'\s*\]|\[\s*\d+\s*\])*)\s*\}\}"
)
_SEGMENT = re.compile(r"\.([A-Za-z_]\w*)|\[\s*'([^']*)'\s*\]|\[\s*\d+\s*\]")
_JINJA_WORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "is",
        "if",
        "else",
        "elif",
        "endif",
        "for",
        "endfor",
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
        "block",
        "endblock",
        "set",
        "with",
        "recursive",
        "import",
        "from",
        "as",
    }
)


@lru_cache(maxsize=8192)
def _analyse(text: str) -> tuple[str | None, frozenset[str], frozenset[str]]:
    """(syntax error or None, step ids read through steps.<id>, top-level names) of one template."""
    refs: set[str] = set()
    used: set[str] = set()
    rest = []
    last = 0
    simple = True
    for match in _SIMPLE_EXPR.finditer(text):
        rest.append(text[last : match.start()])
        last = match.end()
        segments = _SEGMENT.findall(match.group(2))
        if match.group(1) in _JINJA_WORDS or any(s[0] in _JINJA_WORDS for s in segments):
            simple = False
            break
        used.add(match.group(1))
        if match.group(1) == "steps" and segments and (segments[0][0] or segments[0][1]):
            refs.add(segments[0][0] or segments[0][1])
    rest.append(text[last:])
    literal = "".join(rest)
    if simple and last and not any(m in literal for m in ("{{", "{%", "{#")):
        return None, frozenset(refs), frozenset(used)
    error = templating.syntax_error(text)
    if error:
        return error, frozenset(), frozenset()
    return (
        None,
        frozenset(templating.referenced_steps(text)),
        frozenset(templating.top_level_names(text)),
    )


@lru_cache(maxsize=1024)
def _analyse_expression(text: str) -> tuple[str | None, frozenset[str], frozenset[str]]:
    """Like `_analyse`, for fields evaluated as one expression (run_if, until).

    The executor evaluates these with `templating.evaluate`: the text inside one
    `{{ }}` (or the bare text) must be a single Jinja expression, so
    `{% if %}` blocks or two `{{ }}` parts are errors here, not at run time.
    """
    expr = templating.strip_braces(text)
    if "{{" in expr or "}}" in expr or "{%" in expr:
        return (
            (
                "write one expression, e.g. \"{{ steps.a.outcome == 'success' }}\"; "
                "blocks and several {{ }} parts are not allowed here"
            ),
            frozenset(),
            frozenset(),
        )
    error = templating.expression_error(expr)
    if error is not None:
        return error, frozenset(), frozenset()
    return (
        None,
        frozenset(templating.referenced_steps(expr)),
        frozenset(templating.top_level_names(expr)),
    )


@lru_cache(maxsize=1)
def _jinja_globals() -> frozenset[str]:
    """range, dict, namespace...: names Jinja itself provides in every template."""
    return frozenset(templating.environment().globals)


def _ancestors(sid: str, needs: Mapping[str, list[str]]) -> frozenset[str]:
    from mftrun.plan import ancestors_of

    return ancestors_of(sid, needs)


# Incoming-webhook URLs that are their own secret: Slack's /services/T/B/secret, Discord's
# /api/webhooks/<id>/<token>, Teams and Power Automate's signed `sig=` query, a token in the
# query. Written inline they would be committed; `{env: ...}` keeps them out of Git.
_SECRET_URL_PATH = re.compile(r"/services/[^/]+/[^/]+/[^/]+|/api/webhooks/\d+/[^/]+", re.I)
_SECRET_URL_QUERY = re.compile(r"(^|&)(sig|signature|token|key|code|secret)=", re.I)


def _secret_in_url(url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if _SECRET_URL_QUERY.search(parts.query):
        return "carries a secret in its query"
    if _SECRET_URL_PATH.search(parts.path):
        return "carries its secret in the path"
    return None


def _defined(raw_envs: Mapping[str, Any]) -> str:
    if not raw_envs:
        return "define it under environments:"
    return f"defined environments: {', '.join(map(str, raw_envs))}"
