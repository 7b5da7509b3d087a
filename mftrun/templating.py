"""Jinja2 templates in pipeline values, sandboxed and strict.

Why sandboxed: pipeline files come from pull requests; a template must not reach
Python internals. Why StrictUndefined: a typo must fail the step, not send an
empty string to a production platform.

A string is a template when it contains `{{` or `{%`. A string that is exactly
one `{{ expression }}` renders to the expression's native value (a number stays
a number, a list stays a list), so outputs keep their types between steps.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from mftrun.errors import TemplateError

_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)


@lru_cache(maxsize=1)
def environment() -> Any:
    """The one Jinja environment: sandboxed, strict, and bounded (see template_limits)."""
    from jinja2 import StrictUndefined, nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from mftrun import template_limits as limits

    class BoundedCodeGenerator(CodeGenerator):
        """Routes `~` joins and `{% for %}` iterables through template_limits."""

        def visit_Template(self, node: Any, frame: Any = None) -> None:
            for loop in node.find_all(nodes.For):
                loop.iter = nodes.Filter(
                    loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno
                )
            super().visit_Template(node, frame)

        def visit_Concat(self, node: Any, frame: Any) -> None:
            # no constant folding here: a folded join would run at compile time unbounded
            self.write("environment.bounded_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        code_generator_class = BoundedCodeGenerator
        # intercepted operators are also never folded at compile time (jinja2.nodes.BinExpr)
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        @staticmethod
        def bounded_join(parts: Any) -> str:
            return limits.bounded_join(parts)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            limits.current().tick()
            if operator == "**":
                limits.check_power(left, right)
            elif operator == "*":
                limits.check_product(left, right)
            elif operator == "%" and isinstance(left, str):
                limits.check_printf(left, right)
            return limits.checked_result(super().call_binop(context, operator, left, right))

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
            limits.current().tick()
            return super().call(__context, __obj, *args, **kwargs)

        def getattr(self, obj: Any, attribute: str) -> Any:
            return _guard(obj, attribute, super().getattr(obj, attribute))

        def getitem(self, obj: Any, argument: Any) -> Any:
            value = super().getitem(obj, argument)
            return _guard(obj, argument, value) if isinstance(argument, str) else value

    def _guard(obj: Any, name: str, value: Any) -> Any:
        if isinstance(obj, str) and callable(value) and not isinstance(value, StrictUndefined):
            return limits.str_method(obj, name, value)
        return value

    env = BoundedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    import json

    env.filters["tojson"] = lambda v: json.dumps(v, default=str)
    for name, function in list(env.filters.items()):
        env.filters[name] = limits.bounded_filter(name, function)
    env.filters[_LOOP_FILTER] = limits.bounded_loop
    env.globals.pop("lipsum", None)  # n paragraphs of up to m words: no use in a pipeline
    for name, function in list(env.globals.items()):
        if callable(function) and not isinstance(function, type):
            env.globals[name] = limits.bounded_filter(name, function)
    return env


_LOOP_FILTER = "mftrun_loop"


def limits(
    *, seconds: float | None = None, stop: Callable[[], bool] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """Run templates under one budget: at most `seconds` of real time (never more than
    template_limits.MAX_SECONDS), ending early when `stop()` says the run is ending.

    The executor renders on its scheduling thread, so this is what keeps a step's
    timeout and a SIGTERM able to act while a hostile template runs."""
    from mftrun import template_limits

    cap = template_limits.MAX_SECONDS
    # a floor, so a tiny step timeout still leaves time for the first compile
    allowed = min(max(seconds, 0.5), cap) if seconds else cap
    return template_limits.budget(seconds=allowed, stop=stop)


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

    from mftrun.template_limits import TemplateLimitError

    if isinstance(exc, TemplateLimitError):
        return TemplateError(
            f"template {_shown(text)}: stopped, it does too much work: {exc}",
            hint="templates are bounded in size, operations and time; "
            "compute big values before the run and pass them in with vars",
        )
    if isinstance(exc, SecurityError):
        return TemplateError(f"template {text!r}: not allowed in the sandbox: {exc}")
    return TemplateError(f"template {text!r}: {exc.__class__.__name__}: {exc}")


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 200 else repr(text[:197] + "...")


@lru_cache(maxsize=4096)
def _expression(expr: str) -> Any:
    """Compiled once per text: a for_each group renders the same template for every item,
    and compiling (not rendering) is most of a small template's cost."""
    return environment().compile_expression(expr, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _template(text: str) -> Any:
    return environment().from_string(text)


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate one expression (with or without `{{ }}`) to its native value."""
    expr = strip_braces(expression)
    from jinja2 import Undefined

    try:
        with limits():
            value = _expression(expr)(**context)
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
    from mftrun.template_limits import MAX_TEXT, TemplateLimitError

    try:
        with limits():
            parts: list[str] = []
            size = 0
            for chunk in _template(text).generate(**context):
                size += len(chunk)
                if size > MAX_TEXT:
                    raise TemplateLimitError(f"output longer than {MAX_TEXT:,} characters")
                parts.append(chunk)
            return "".join(parts)
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
    source = text
    if _SINGLE_EXPR.match(text) is None and not is_template(text):
        source = "{{ " + text + " }}"
    return _compile_error(lambda: environment().compile(source))


def expression_error(expression: str) -> str | None:
    """The error in one expression (run_if, until), or None; nothing is evaluated."""
    return _compile_error(lambda: environment().compile_expression(expression))


def _compile_error(compile_it: Callable[[], object]) -> str | None:
    # compile, not only parse: an unknown filter or test is found here, not mid-run;
    # constant parts are folded while compiling, so that runs under the limits too
    from jinja2 import TemplateSyntaxError

    from mftrun.template_limits import TemplateLimitError

    try:
        with limits():
            compile_it()
    except TemplateSyntaxError as exc:
        return exc.message or "invalid template"
    except TemplateLimitError as exc:
        return f"the template does too much work: {exc}"
    except Exception as exc:  # noqa: BLE001 - a constant part that fails when folded
        return f"{exc.__class__.__name__}: {exc}"
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
