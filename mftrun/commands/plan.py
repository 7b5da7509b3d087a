"""`mftrun plan FILE`: what would run, in which order and parallel levels; no network."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "show what a pipeline would run, in order and in parallel levels (no network)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML file")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="output format (default: %(default)s)",
    )
    parser.add_argument("--state", metavar="URL", help="state store to read history from")
    parser.add_argument("--no-state", action="store_true", help="show no history")
    parser.add_argument(
        "--emulate",
        action="store_true",
        help="show the history of `apply --emulate` runs (rehearsals keep their own)",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys

    from mftrun.plan import build_plan
    from mftrun.validation import load_pipeline

    pipeline = load_pipeline(args.file)
    plan = build_plan(pipeline)
    from mftrun.inert import inert_json, inert_lines
    from mftrun import plan_history as ph

    got = ph.open_book(pipeline, args.state, args.no_state, os.environ, emulated=args.emulate)
    locate = ph.locator_of(args.file)
    if args.format == "json":
        doc = plan_dict(pipeline, plan)
        extra = ph.plan_history_dict(pipeline, got[0], got[1], locate)
        for entry in doc["steps"]:
            entry.update(extra["steps"][entry["id"]])
        doc["history"], doc["warnings"] = extra["history"], extra["warnings"]
        sys.stdout.write(inert_json(json.dumps(doc, indent=2)) + "\n")
    else:
        # The names, targets and conditions come from the file: each piece is made inert
        # where it is placed; the last pass guards every line mftrun composed.
        text = plan_text(pipeline, plan, got[0])
        lines = ph.summary_lines(pipeline, *got, locate)
        sys.stdout.write(inert_lines(text + "\n".join(lines) + "\n"))
    return 0


def target(step: Any) -> str:
    """A short description of what a step's action touches (its action module says)."""
    from mftrun import actions

    return actions.action_type(step.action.kind).plan_target(actions.spec_of(step.action))


def parameters(step: Any) -> dict[str, Any]:
    """The action's parameters as written (templates are rendered only when the step starts)."""
    from mftrun import actions

    return dict(actions.action_type(step.action.kind).parameters(actions.spec_of(step.action)))


def condition(step: Any) -> str:
    run_if = step.run_if
    return run_if.expression if run_if.kind == "expression" else run_if.kind


def plan_dict(pipeline: Any, plan: Any) -> dict[str, Any]:
    from mftrun.expand import describe

    level_of = {sid: n for n, level in enumerate(plan.levels) for sid in level}
    by_id = {step.id: step for step in pipeline.steps}
    steps = []
    for sid in plan.order:
        step = by_id[sid]
        env = pipeline.environments[step.environment]
        steps.append(
            {
                "id": sid,
                "index": step.index,
                "level": level_of[sid] + 1,
                "action": step.action.kind,
                "target": target(step),
                "parameters": parameters(step),
                "environment": step.environment,
                "provider": env.provider,
                "base_url": env.base_url
                or (
                    f"{{env: {env.base_url_env or env.region_env}}}"
                    if env.base_url_env or env.region_env
                    else ""
                ),
                "needs": list(step.needs),
                "dependents": list(plan.dependents.get(sid, ())),
                "run_if": condition(step),
                "timeout": step.timeout,
                "poll": {
                    "interval": step.poll.interval,
                    "max_interval": step.poll.max_interval,
                    "factor": step.poll.factor,
                    "history": step.poll.history,
                },
                "retries": {
                    "attempts": step.retries.attempts,
                    "delay": step.retries.delay,
                    "backoff": step.retries.backoff,
                },
                "continue_on_error": step.continue_on_error,
                "outputs": sorted(step.outputs),
                "line": step.position.line,
                "for_each": describe(step),
            }
        )
    return {
        "version": 1,
        "pipeline": pipeline.name,
        "file": pipeline.path,
        "sha256": pipeline.sha256,
        "max_parallel": pipeline.max_parallel,
        "timeout": pipeline.timeout,
        "order": list(plan.order),
        "levels": [list(level) for level in plan.levels],
        "steps": steps,
    }


def plan_text(pipeline: Any, plan: Any, book: Any = None) -> str:
    from mftrun.durations import format_duration
    from mftrun.expand import describe
    from mftrun.inert import inert

    def dur(value: float | None) -> str:
        return format_duration(value) if value is not None else "none"

    by_id = {step.id: step for step in pipeline.steps}
    count = len(pipeline.steps)
    lines = [
        f"pipeline {inert(pipeline.name)} ({inert(pipeline.path)}): "
        f"{count} step{'s' if count != 1 else ''}"
        f" in {len(plan.levels)} level{'s' if len(plan.levels) != 1 else ''}, "
        f"max_parallel {pipeline.max_parallel}, run timeout {dur(pipeline.timeout)}"
    ]
    for number, level in enumerate(plan.levels, start=1):
        lines.append("")
        lines.append(f"level {number}" + (f" ({len(level)} in parallel)" if len(level) > 1 else ""))
        for sid in level:
            step = by_id[sid]
            env = pipeline.environments[step.environment]
            lines.append(f"  {inert(sid)}: {step.action.kind} {inert(target(step))}")
            if (group := describe(step)) is not None:
                lines.append(f"      {inert(group)}")
            lines.append(
                f"      environment {inert(step.environment)} ({inert(env.provider)})"
                f"; needs {inert(', '.join(step.needs) or '-')}; run_if {inert(condition(step))}"
            )
            if params := parameters(step):
                shown = ", ".join(f"{k}={_param_text(v)}" for k, v in params.items())
                lines.append(f"      parameters {inert(shown)}")
            poll = step.poll
            extra = (
                f"; retries {step.retries.attempts} (delay {dur(step.retries.delay)}, "
                f"x{step.retries.backoff:g})"
                if step.retries.attempts
                else ""
            )
            coe = "; continue_on_error" if step.continue_on_error else ""
            lines.append(
                f"      timeout {dur(step.timeout)}; poll {dur(poll.interval)}"
                f"..{dur(poll.max_interval)} x{poll.factor:g}{extra}{coe}"
            )
            if book is not None:
                from mftrun.plan_history import step_line

                lines.append(f"      {step_line(book.expect(sid))}")
    lines.append("")
    lines.append("order: " + inert(" -> ".join(plan.order)))
    return "\n".join(lines) + "\n"


def _param_text(value: Any) -> str:
    """YAML-ish: false, 500, *.csv; a string that would read as something else is quoted."""
    import json

    if isinstance(value, str):
        return value if value and value.strip() == value and "," not in value else json.dumps(value)
    return json.dumps(value)
