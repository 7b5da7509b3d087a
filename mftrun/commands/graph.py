"""`mftrun graph FILE`: the dependency graph as Mermaid or Graphviz dot text."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "print the dependency graph of a pipeline as Mermaid or Graphviz dot"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="pipeline YAML file")
    parser.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="graph language (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from mftrun.plan import build_plan
    from mftrun.validation import load_pipeline

    pipeline = load_pipeline(args.file)
    plan = build_plan(pipeline)
    from mftrun.inert import inert_lines

    render = mermaid if args.format == "mermaid" else dot
    sys.stdout.write(inert_lines(render(pipeline, plan)))  # a guard on every line composed
    return 0


def _label(step: Any) -> list[str]:
    """The label's lines, each inert: names and conditions come from the file, and a raw
    newline inside a quoted DOT or Mermaid string would print a line of its own."""
    from mftrun.inert import inert

    lines = [inert(step.id), inert(f"{step.action.kind} @ {step.environment}")]
    if step.run_if.kind != "success":
        lines.append(inert(f"run_if: {step.run_if.expression or step.run_if.kind}"))
    from mftrun.expand import describe

    if (group := describe(step)) is not None and step.group is None:
        lines.append(inert(group))
    return lines


def mermaid(pipeline: Any, plan: Any) -> str:
    def esc(text: str) -> str:
        return (
            text.replace("&", "#amp;")
            .replace('"', "#quot;")
            .replace("<", "#lt;")
            .replace(">", "#gt;")
        )

    node = {step.id: f"s{n}" for n, step in enumerate(pipeline.steps)}
    out = ["flowchart TD"]
    for step in pipeline.steps:
        label = "<br/>".join(esc(part) for part in _label(step))
        shape = ('(["', '"])') if step.continue_on_error else ('["', '"]')
        out.append(f"  {node[step.id]}{shape[0]}{label}{shape[1]}")
    for step in pipeline.steps:
        for need in plan.needs.get(step.id, ()):
            out.append(f"  {node[need]} --> {node[step.id]}")
    return "\n".join(out) + "\n"


def dot(pipeline: Any, plan: Any) -> str:
    from mftrun.inert import inert

    def quote(text: str) -> str:
        return '"' + inert(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = [f"digraph {quote(pipeline.name)} {{", "  rankdir=TB;", "  node [shape=box];"]
    for step in pipeline.steps:
        label = "\\n".join(part.replace("\\", "\\\\").replace('"', '\\"') for part in _label(step))
        style = ", style=dashed" if step.continue_on_error else ""
        out.append(f'  {quote(step.id)} [label="{label}"{style}];')
    for step in pipeline.steps:
        for need in plan.needs.get(step.id, ()):
            out.append(f"  {quote(need)} -> {quote(step.id)};")
    out.append("}")
    return "\n".join(out) + "\n"
