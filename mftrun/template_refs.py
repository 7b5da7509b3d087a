"""What a template reads: its syntax error, the step ids it reads through `steps.<id>`,
and its top-level names, found fast (a regex for the common `{{ a.b['c'] }}` shape,
Jinja's own parser otherwise). Validation uses it to refuse, before anything runs, a
template that would only fail at run time, after earlier steps already ran.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mftrun import templating

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
def analyse(text: str) -> tuple[str | None, frozenset[str], frozenset[str]]:
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
def analyse_expression(text: str) -> tuple[str | None, frozenset[str], frozenset[str]]:
    """Like `analyse`, for fields evaluated as one expression (run_if, until).

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
def jinja_globals() -> frozenset[str]:
    """range, dict, namespace...: names Jinja itself provides in every template."""
    return frozenset(templating.environment().globals)
