"""Jinja2 templates in pipeline values, sandboxed and strict.

Why sandboxed: pipeline files come from pull requests; a template must not reach
Python internals. Why StrictUndefined: a typo must fail the step, not send an
empty string to a production platform.

A string is a template when it contains `{{` or `{%`. A string that is exactly
one `{{ expression }}` renders to the expression's native value (a number stays
a number, a list stays a list), so outputs keep their types between steps.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from collections.abc import Mapping

from mftrun.errors import TemplateError

_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    import json

    env.filters["tojson"] = lambda v: json.dumps(v, default=str)
    return env


def is_template(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def strip_braces(expression: str) -> str:
    match = _SINGLE_EXPR.match(expression)
    return match.group("expr").strip() if match else expression.strip()


def _fail(text: str, exc: Exception) -> TemplateError:
    from jinja2 import TemplateSyntaxError, UndefinedError

    if isinstance(exc, UndefinedError):
        return TemplateError(
            f"template {text!r}: {exc.message}",
            hint="check the name; only vars, steps.<id>.outputs/status/outcome "
            "of finished steps and documented names are defined",
        )
    if isinstance(exc, TemplateSyntaxError):
        return TemplateError(f"template {text!r}: syntax error: {exc.message}")
    from jinja2.exceptions import SecurityError

    if isinstance(exc, SecurityError):
        return TemplateError(f"template {text!r}: not allowed in the sandbox: {exc}")
    return TemplateError(f"template {text!r}: {exc.__class__.__name__}: {exc}")


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate one expression (with or without `{{ }}`) to its native value."""
    expr = strip_braces(expression)
    from jinja2 import Undefined

    try:
        value = environment().compile_expression(expr, undefined_to_none=False)(**context)
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return value
    except Exception as exc:  # jinja raises many kinds; all are the user's template
        raise _fail(expression, exc) from None


def render(text: str, context: Mapping[str, Any]) -> Any:
    """Render a string; a lone `{{ expr }}` keeps the expression's type."""
    if not is_template(text):
        return text
    if _SINGLE_EXPR.match(text) and "{{" not in strip_braces(text):
        return evaluate(text, context)
    try:
        return environment().from_string(text).render(**context)
    except Exception as exc:
        raise _fail(text, exc) from None


def render_data(
    value: Any, context: Mapping[str, Any], *, skip: frozenset[str] = frozenset()
) -> Any:
    """Render every template string inside JSON-like data; keys in `skip` are left as written."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, Mapping):
        return {k: (v if k in skip else render_data(v, context)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render_data(v, context) for v in value]
    return value


def syntax_error(text: str) -> str | None:
    """The syntax error in a template string, or None; no rendering happens."""
    from jinja2 import TemplateSyntaxError

    source = text
    if _SINGLE_EXPR.match(text) is None and not is_template(text):
        source = "{{ " + text + " }}"
    try:
        # compile, not only parse: an unknown filter or test is found here, not mid-run
        environment().compile(source)
    except TemplateSyntaxError as exc:
        return exc.message or "invalid template"
    return None


def referenced_steps(text: str) -> set[str]:
    """Step ids a template reads through `steps.<id>` or `steps['<id>']`."""
    from jinja2 import nodes

    source = text if is_template(text) else "{{ " + text + " }}"
    try:
        tree = environment().parse(source)
    except Exception:
        return set()
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "steps":
            if isinstance(node, nodes.Getattr):
                found.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.add(node.arg.value)
    return found


def top_level_names(text: str) -> set[str]:
    """Undeclared top-level names a template uses (vars, steps, result, ...)."""
    from jinja2 import meta

    source = text if is_template(text) else "{{ " + text + " }}"
    try:
        return set(meta.find_undeclared_variables(environment().parse(source)))
    except Exception:
        return set()
