"""Bounds on the work one template may do: size, operations and time.

Why: pipeline files come from pull requests, and `validate` runs on them before
anyone has read them. Jinja's sandbox stops reads of Python internals but not
work: it folds constant expressions at compile time (`{{ 9**(9**9) }}` kept
`validate` busy for 11 minutes), repeats strings without limit (`'a' * 10**9`
is 1 GB) and runs nested loops for as long as they take, on the executor thread
where no step timeout or signal can act. Every template here runs under a
`Budget`: numbers are capped in size, no single string or list may exceed
`MAX_TEXT`, all text produced by one template counts towards `MAX_PRODUCED`,
every loop iteration, call, filter and intercepted operator is one operation
(`MAX_OPERATIONS`), and the time is capped (`MAX_SECONDS`, and an outer deadline
or stop flag when the executor gives one). Whatever happens, a template ends
quickly with a `TemplateLimitError` that names the limit.

How, with Jinja's own hooks only: operators are intercepted (`intercepted_binops`,
which also stops their folding at compile time); filters and global functions are
wrapped; attribute access on strings returns checked methods; `~` joins and loop
iterables are routed through this module by a small code generator subclass.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 1_000_000  # characters (or items) in any one string or list a template makes
MAX_PRODUCED = 20_000_000  # characters and items made by one template, all told
MAX_INT_BITS = 10_000  # ~3,000 digits: below Python's 4,300-digit str() limit
MAX_COUNT_ARG = 100_000  # widths, counts and sizes passed to filters and methods
MAX_OPERATIONS = 1_000_000  # loop iterations, calls, filters and operators
MAX_SECONDS = 2.0  # per template render; the executor may give an earlier deadline


class TemplateLimitError(Exception):
    """A template went over one of the bounds above."""


@dataclass
class Budget:
    """What is left for the template(s) running under it."""

    deadline: float
    stop: Callable[[], bool] | None = None
    operations: int = MAX_OPERATIONS
    produced: int = MAX_PRODUCED
    _ticks: int = field(default=0, repr=False)

    def tick(self, count: int = 1) -> None:
        self.operations -= count
        if self.operations < 0:
            raise TemplateLimitError(
                f"more than {MAX_OPERATIONS:,} operations (loop iterations, calls, filters)"
            )
        self._ticks += 1
        if self._ticks & 255 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"still running after the time allowed ({MAX_SECONDS:g} s)")
        if self.stop is not None and self.stop():
            raise TemplateLimitError("stopped: the run is ending")

    def made(self, size: int) -> None:
        if size > MAX_TEXT:
            raise TemplateLimitError(
                f"a value of {size:,} characters or items (limit {MAX_TEXT:,})"
            )
        self.produced -= size
        if self.produced < 0:
            raise TemplateLimitError(f"more than {MAX_PRODUCED:,} characters made in all")


_ACTIVE: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "mftrun_template_budget", default=None
)


def current() -> Budget:
    """The budget in force; outside any (compile-time folding) a fresh one per operation."""
    active = _ACTIVE.get()
    return active if active is not None else Budget(time.monotonic() + MAX_SECONDS)


@contextlib.contextmanager
def budget(
    *,
    seconds: float = MAX_SECONDS,
    deadline: float | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Budget]:
    """Run templates under one budget; nested uses share the outer one (it is stricter)."""
    outer = _ACTIVE.get()
    if outer is not None:
        yield outer
        return
    end = time.monotonic() + seconds
    if deadline is not None:
        end = min(end, deadline)
    active = Budget(end, stop)
    token = _ACTIVE.set(active)
    try:
        yield active
    finally:
        _ACTIVE.reset(token)


# -- sizes ----------------------------------------------------------------------------


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else 0


def count_arg(value: Any, what: str) -> None:
    """Refuse a width/count argument big enough to make a huge value in one C call."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNT_ARG:
        raise TemplateLimitError(f"{what}: {value:,} is over the limit of {MAX_COUNT_ARG:,}")


def _int_bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_int(value: Any) -> Any:
    if _int_bits(value) > MAX_INT_BITS:
        raise TemplateLimitError(f"a number of {_int_bits(value):,} bits (limit {MAX_INT_BITS:,})")
    return value


def check_power(left: Any, right: Any) -> None:
    """`a ** b` on whole numbers: refuse before computing when the result is too big."""
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        bits = right * math.log2(abs(left))
        if bits > MAX_INT_BITS:
            raise TemplateLimitError(
                f"{left} ** {right} would have about {bits:,.0f} bits (limit {MAX_INT_BITS:,})"
            )


def check_product(left: Any, right: Any) -> None:
    """`a * n` repeats a string or list n times; two numbers multiply their sizes."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
            if len(seq) * max(times, 0) > MAX_TEXT:
                raise TemplateLimitError(
                    f"repeating {len(seq):,} characters or items {times:,} times "
                    f"(limit {MAX_TEXT:,} in all)"
                )
            return
    if _int_bits(left) + _int_bits(right) > MAX_INT_BITS + 1:
        raise TemplateLimitError(f"a product of more than {MAX_INT_BITS:,} bits")


_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:[^{}]*?(\d+)")


def check_printf(template: Any, args: Any) -> None:
    """`'%5000000d' % x` and `'{:>5000000}'.format(x)`: widths and precisions are bounded."""
    if not isinstance(template, str):
        return
    star = False
    for match in _PRINTF.finditer(template):
        for part in match.groups():
            if part == "*":
                star = True
            elif part:
                count_arg(int(part), "a format width")
    for match in _BRACE_SPEC.finditer(template):
        count_arg(int(match.group(1)), "a format width")
    if star or re.search(r":[^{}]*\{", template):  # widths taken from the arguments
        for item in args.values() if isinstance(args, dict) else _items(args):
            count_arg(item, "a format width argument")


def _items(args: Any) -> tuple[Any, ...]:
    return tuple(args) if isinstance(args, (tuple, list)) else (args,)


# -- string methods -------------------------------------------------------------------

# Methods whose result is no bigger than the string (or a list of its parts).
_BOUNDED_STR_METHODS = frozenset(
    [
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "join",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        "encode",
    ]
)


def str_method(text: str, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """A string's method as templates may call it: bounded, or refused by name."""
    if name in _BOUNDED_STR_METHODS:
        return _counted(method)

    def checked(*args: Any, **kwargs: Any) -> Any:
        current().tick()
        if name in ("center", "ljust", "rjust", "zfill"):
            count_arg(args[0] if args else kwargs.get("width"), f"str.{name} width")
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            count_arg(size, "str.expandtabs")
            if isinstance(size, int) and text.count("\t") * size > MAX_TEXT:
                raise TemplateLimitError("str.expandtabs would make too long a string")
        elif name == "replace":
            new = args[1] if len(args) > 1 else ""
            if isinstance(new, str) and (len(text) + 1) * len(new) > MAX_TEXT:
                raise TemplateLimitError("str.replace could make too long a string")
        elif name in ("format", "format_map"):
            check_printf(text, (*args, *kwargs.values()))
        else:
            raise TemplateLimitError(f"str.{name} is not available in templates")
        result = method(*args, **kwargs)
        current().made(_size(result))
        return result

    return checked


def _counted(function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        current().tick()
        result = function(*args, **kwargs)
        current().made(_size(result))
        return result

    return counted


# -- filters and globals ----------------------------------------------------------------


def _strings(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The filter's own arguments, without what Jinja passes first: an eval context
    (pass_eval_context) or the environment (pass_environment, e.g. wordwrap)."""
    from jinja2 import Environment
    from jinja2.nodes import EvalContext

    return args[1:] if args and isinstance(args[0], (EvalContext, Environment)) else args


def _indent_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    text = args[0] if args else ""
    width = args[1] if len(args) > 1 else kwargs.get("width", 4)
    size = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    if isinstance(text, str) and (text.count("\n") + 1) * max(size, 0) > MAX_TEXT:
        raise TemplateLimitError("indent would make too long a string")


def _replace_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    own = _strings(args)
    text = own[0] if own else ""
    new = own[2] if len(own) > 2 else kwargs.get("new", "")
    if isinstance(text, str) and isinstance(new, str) and (len(text) + 1) * len(new) > MAX_TEXT:
        raise TemplateLimitError("replace could make too long a string")


def _format_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if args:
        check_printf(args[0], kwargs if kwargs else args[1:])


def _count_check(position: int, keyword: str) -> Callable[[tuple[Any, ...], dict[str, Any]], None]:
    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        own = _strings(args)
        count_arg(own[position] if len(own) > position else kwargs.get(keyword), keyword)

    return check


def _text_check(name: str) -> Callable[[tuple[Any, ...], dict[str, Any]], None]:
    """Filters written in Python that walk their text (wordwrap: ~3 s per MB at width 1) get
    at most MAX_COUNT_ARG characters: one call cannot be interrupted by the time bound."""

    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        own = _strings(args)
        text = own[0] if own else ""
        if isinstance(text, str) and len(text) > MAX_COUNT_ARG:
            raise TemplateLimitError(
                f"{name} of {len(text):,} characters (at most {MAX_COUNT_ARG:,})"
            )

    return check


RUN_SECONDS = 30.0  # all templates of one run together (the executor keeps the account)

# Filters that can make a value much bigger than their input in one call, or walk it slowly.
_FILTER_CHECKS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], None]] = {
    "wordwrap": _text_check("wordwrap"),
    "urlize": _text_check("urlize"),
    "indent": _indent_check,
    "replace": _replace_check,
    "format": _format_check,
    "center": _count_check(1, "width"),
    "batch": _count_check(1, "linecount"),
    "slice": _count_check(1, "slices"),
}


def bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter (or global function) that counts, checks its sizes, and keeps Jinja's markers."""
    special = _FILTER_CHECKS.get(name)

    @functools.wraps(function)  # keeps jinja_pass_arg (pass_context & co.)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        current().tick()
        if special is not None:
            special(args, kwargs)
        result = function(*args, **kwargs)
        current().made(_size(result))
        return _check_int(result)

    return bounded


def bounded_join(parts: Iterable[Any]) -> str:
    """`a ~ b`: the joined text counts towards the budget before it is built."""
    pieces = [str(part) for part in parts]
    total = sum(len(piece) for piece in pieces)
    budget_now = current()
    budget_now.tick()
    budget_now.made(total)
    return "".join(pieces)


def bounded_loop(iterable: Any) -> Iterator[Any]:
    """A `{% for %}` iterable: each iteration is one operation (nested loops multiply)."""
    budget_now = current()
    for item in iterable:
        budget_now.tick()
        yield item


def checked_result(value: Any) -> Any:
    """After an intercepted operator: sizes of what it made."""
    current().made(_size(value))
    return _check_int(value)
