"""`http`: one call on the environment's authenticated session, optionally polled `until`.

Written as `http: {method, path, query, json, headers, expect, until}`. `path` is below the
environment's base_url (only a webhook environment, whose URL is called as it is, may
leave it out); the token is never sent to another host. A GET/HEAD/OPTIONS call starts
nothing; any other method may, so it is treated like a start (never re-sent on a guess).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mftrun.actions.base import BASE_NAMES, EmulatorSeeds, Path, Problems, Where, unknown

NAME = "http"
DEFAULT_EXPECT = (200, 201, 202, 204)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # an http step with these starts nothing
UNTIL_NAMES = BASE_NAMES | {"response"}  # `until` reads the latest answer


@dataclass(frozen=True, slots=True)
class HttpSpec:
    method: str
    path: str  # "/..." below base_url; "" only on a webhook environment
    query: tuple[tuple[str, str], ...] = ()  # a list value is repeated parameters
    headers: tuple[tuple[str, str], ...] = ()
    expect: frozenset[int] = frozenset(DEFAULT_EXPECT)
    until: str | None = None  # a template expression, evaluated after each answer
    json: Any = None  # the JSON body as rendered (JSON boundary: any JSON value)
    has_json: bool = False  # `json: null` sends null; no `json` sends no body


class Http:
    name = NAME
    summary = "one HTTP call on the environment's session, optionally polled until a condition"
    late_keys = frozenset({"until"})
    outputs = frozenset({"status_code", "json", "text", "headers"})  # of the last answer
    retry_can_help = True

    def parse(self, raw: Any, path: Path, problems: Problems, where: Where) -> HttpSpec | None:
        if not isinstance(raw, Mapping):
            if problems.rendered:
                problems.problem(path, "http must be a mapping: {method, path, ...}")
            return None
        written_path = raw.get("path", "")
        if not isinstance(written_path, str):
            if problems.rendered:
                problems.problem(
                    path + ("path",),
                    "http step: 'path' must be a string, e.g. /v1/licenses/current",
                )
            return None
        method = raw.get("method", "GET")
        method = method.upper() if isinstance(method, str) else "GET"
        spec = HttpSpec(
            method=method,
            path=_path(written_path, path, problems, where),
            query=_query(raw.get("query"), path + ("query",), problems),
            headers=_headers(raw.get("headers"), path + ("headers",), problems),
            expect=_expect(raw.get("expect"), path + ("expect",), problems),
            until=_until(raw.get("until"), path + ("until",), problems),
            json=raw.get("json"),
            has_json="json" in raw,
        )
        problems.templates_in({k: v for k, v in raw.items() if k != "until"}, path)
        return spec

    def starts_remote_work(self, spec: HttpSpec) -> bool:
        return spec.method not in SAFE_METHODS

    def target(self, spec: HttpSpec) -> str:
        return f"{spec.method} {spec.path or '(the URL)'}"

    def plan_target(self, spec: HttpSpec) -> str:
        return f"{spec.method} {spec.path or '(the webhook URL)'}"

    def parameters(self, spec: HttpSpec) -> Mapping[str, Any]:
        return {}

    def seed_emulator(self, spec: HttpSpec, emulator: EmulatorSeeds) -> None:
        return None  # the emulator answers its documented endpoints as they are


ACTION = Http()


def _path(text: str, path: Path, problems: Problems, where: Where) -> str:
    if not text:
        if where.provider != "webhook":
            problems.problem(
                path + ("path",) if problems.rendered else path,
                f"step {where.step_id!r}: http needs path",
                "the path below the environment's base_url, e.g. /v1/licenses/current; "
                "only a webhook environment may leave it out",
            )
        return ""
    if not unknown(text, problems) and (
        text.startswith(("http://", "https://")) or urlsplit(text).netloc
    ):
        problems.problem(
            path + ("path",),
            f"http step: path {text!r} must be relative to the environment's base_url",
            "the session's token is only sent to the environment's own host",
        )
    return "/" + text.lstrip("/")


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query(value: Any, path: Path, problems: Problems) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        problems.problem(path, "http step: 'query' must be a mapping of names to values or lists")
        return ()
    return tuple(
        (str(k), _param(v))
        for k, item in value.items()
        for v in (item if isinstance(item, (list, tuple)) else [item])
    )


def _headers(value: Any, path: Path, problems: Problems) -> tuple[tuple[str, str], ...]:
    from mftrun.http import headers as http_headers

    if value is None:
        return ()
    if not isinstance(value, Mapping):
        problems.problem(path, "http step: 'headers' must be a mapping")
        return ()
    out = []
    for name, item in value.items():
        where, text = path + (name,), str(item)
        if (why := http_headers.name_problem(str(name))) is not None:
            hint = (
                "remove it; set the environment's credentials instead (a webhook "
                "environment: headers: {Authorization: {env: NAME}})"
                if "authenticates" in why
                else "remove it; mftrun sets it from base_url and the request body"
                if str(name).strip().lower() in http_headers.REFUSED
                else "write the header name without spaces or other separators"
            )
            problems.problem(where, why if not problems.rendered else f"http step: {why}", hint,
                             key=True)  # fmt: skip
            continue
        if not unknown(text, problems) and (bad := http_headers.value_problem(text)) is not None:
            # a rendered template can still produce a bad value: refused before sending
            problems.problem(where, f"header {str(name)!r}: {bad}", "write the value on one line")
            continue
        out.append((str(name), text))
    return tuple(out)


def _expect(value: Any, path: Path, problems: Problems) -> frozenset[int]:
    if value is None or value == []:
        return frozenset(DEFAULT_EXPECT)
    values = value if isinstance(value, (list, tuple)) else [value]
    codes = set()
    for item in values:
        if unknown(item, problems):
            continue
        try:
            codes.add(int(item))
        except (TypeError, ValueError):
            problems.problem(
                path, f"http step: 'expect' must be a list of status codes, not {value!r}"
            )
            return frozenset(DEFAULT_EXPECT)
    return frozenset(codes) or frozenset(DEFAULT_EXPECT)


def _until(value: Any, path: Path, problems: Problems) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.problem(
            path,
            "http step: 'until' must be a template string such as "
            "\"{{ response.json.state == 'done' }}\"",
        )
        return None
    problems.template(path, value, expression=True, names=UNTIL_NAMES)
    return value
