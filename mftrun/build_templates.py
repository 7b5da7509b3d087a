"""Templates in a pipeline file, checked before anything runs: syntax, Python internals,
the names each place provides (`vars`, `steps`, `result`, `response`, `item`), and the
step references the graph check then holds to the needs.
"""

from __future__ import annotations

import re
from typing import Any

from mftrun import template_refs, templating
from mftrun.actions.base import BASE_NAMES
from mftrun.checks import Checks, Path, suggest
from mftrun.errors import Problem
from mftrun.loader import Document

_DUNDER = re.compile(r"""(\.\s*|\[\s*['"])__\w+__""")


class TemplateChecks(Checks):
    def __init__(self, doc: Document, problems: list[Problem]) -> None:
        super().__init__(doc, problems)
        self.templates: list[tuple[str, Path, frozenset[str]]] = []  # (step, path, refs)
        self.extra_names: frozenset[str] = frozenset()  # `item` inside a for_each step

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
        error, refs, used = (
            template_refs.analyse_expression(text) if expression else template_refs.analyse(text)
        )
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
        names = names | self.extra_names
        unknown = sorted(
            name
            for name in used - names - template_refs.jinja_globals()
            if not re.search(rf"\w-{re.escape(name)}\b", text)
        )
        if unknown:
            hint = suggest(unknown[0], names) or (
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


class StepProblems:
    """The validate-time sink an action's parse reports into (see mftrun/actions/base.py)."""

    rendered = False

    def __init__(self, builder: TemplateChecks, step_id: str) -> None:
        self.builder, self.step_id = builder, step_id

    def problem(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        self.builder.problem(path, message, hint, key=key)

    def template(
        self,
        path: Path,
        text: str,
        *,
        expression: bool = False,
        names: frozenset[str] = BASE_NAMES,
    ) -> None:
        self.builder.template(self.step_id, path, text, expression=expression, names=names)

    def templates_in(self, value: Any, path: Path) -> None:
        self.builder.templates_in(self.step_id, value, path)

    def duration(self, value: Any, path: Path) -> float | None:
        return self.builder.duration(value, path)
