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

from types import MappingProxyType
from typing import Any
from collections.abc import Mapping

from mftrun.build_environments import EnvironmentBuilder
from mftrun.build_graph import GraphChecks
from mftrun.build_templates import StepProblems, TemplateChecks
from mftrun.checks import Path, suggest
from mftrun.actions.base import BASE_NAMES
from mftrun.errors import Problem
from mftrun.loader import Document
from mftrun.providers.catalog import ACTIONS_OFFERED as PROVIDER_ACTIONS
from mftrun.model import (
    Action,
    Condition,
    Pipeline,
    Poll,
    Retry,
    Step,
)

CONDITIONS = ("success", "failure", "always")
OUTPUT_NAMES = BASE_NAMES | {"result", "response"}  # a step's own outputs: what it returned


def build_pipeline(doc: Document) -> tuple[Pipeline | None, list[Problem]]:
    """Build the model; return (pipeline, []) or (None, problems)."""
    builder = _Builder(doc)
    pipeline = builder.build()
    return (pipeline if not builder.problems else None), builder.problems


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


class _Builder(TemplateChecks):
    def __init__(self, doc: Document) -> None:
        super().__init__(doc, [])
        self.environments = EnvironmentBuilder(doc, self.problems)
        self.items: dict[str, Any] = {}  # for_each lists written in the file, by group id

    # -- the document ----------------------------------------------------------
    def build(self) -> Pipeline | None:
        data = self.doc.data
        if not isinstance(data, dict):
            return None  # the schema said it must be a mapping
        raw_envs = data.get("environments")
        raw_envs = raw_envs if isinstance(raw_envs, dict) else {}
        environments = {}
        for name, raw in raw_envs.items():
            env = self.environments.environment(str(name), raw, ("environments", name))
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
        GraphChecks(self.doc, self.problems, self.templates).graph(raw_steps)
        timeout = self.duration(data.get("timeout"), ("timeout",))
        if self.problems:
            return None
        from mftrun.expand_build import expand_steps

        steps = list(expand_steps(steps, self.items))
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
                suggest(env, raw_envs) or _defined(raw_envs),
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
        from mftrun import expand_build

        file_vars = self.doc.data.get("vars") if isinstance(self.doc.data, dict) else None
        fan_out, items = expand_build.read(
            self, sid, raw, path, file_vars if isinstance(file_vars, dict) else {}
        )
        if items is not None:
            self.items[sid] = items
        self.extra_names = expand_build.ITEM_NAMES if "for_each" in raw else frozenset()
        kinds = [kind for kind in action_names() if kind in raw]
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
        env_raw = raw_envs.get(environment) if environment else None
        provider = env_raw.get("provider") if isinstance(env_raw, dict) else None
        action = self.action(sid, kind, raw.get(kind), path + (kind,), provider) if kind else None
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
        self.extra_names = frozenset()
        coe = raw.get("continue_on_error")
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
            fan_out=fan_out,
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
                suggest(name, raw_envs) or _defined(raw_envs),
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
    def action(
        self, sid: str, kind: str, raw: Any, path: Path, provider: str | None
    ) -> Action | None:
        """The action's own module parses it (mftrun/actions/<kind>.py): the same parse the
        executor runs again on the rendered mapping."""
        from mftrun.actions import REGISTRY, Where

        spec = REGISTRY[kind].parse(raw, path, StepProblems(self, sid), Where(sid, provider))
        if spec is None:
            return None
        return Action(kind, raw, spec, self.pos(path, key=True))

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
            suggest(text, CONDITIONS) or 'e.g. run_if: "{{ steps.pull.outputs.count > 0 }}"',
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


def _defined(raw_envs: Mapping[str, Any]) -> str:
    if not raw_envs:
        return "define it under environments:"
    return f"defined environments: {', '.join(map(str, raw_envs))}"


def action_names() -> tuple[str, ...]:
    from mftrun.actions import NAMES

    return NAMES
