"""The build-time half of for_each: read `for_each`/`max_parallel`/`min_items` of a step,
report what is knowable now (at its position in the file), expand lists written in the file.

Why here and not in build.py: build.py is the generic step and graph builder (its action
rules are moving to mftrun/actions/); this keeps the for_each rules in one place beside
mftrun.expand, with only two calls from the builder.

What is knowable at validate time: a list or mapping written in the file (every bad-input
rule of mftrun.expand), and a template that reads only `vars` defined in the file (checked
against them; `--var` may still replace it at run time, so it is expanded when the run
starts). A template over `steps.<id>.outputs` is expanded when that step ends: a bad list
there is the group's `error`, naming the expression.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mftrun import expand, templating
from mftrun.model import FanOut, Step

ITEM_NAMES = frozenset({"item"})


class _Builder(Protocol):
    """What this module needs of build._Builder."""

    def problem(
        self, path: tuple[Any, ...], message: str, hint: str | None = None, *, key: bool = False
    ) -> None: ...

    def template(
        self,
        step_id: str,
        path: tuple[Any, ...],
        text: str,
        *,
        expression: bool = False,
        names: frozenset[str] = ...,
    ) -> None: ...


def read(
    builder: _Builder,
    sid: str,
    raw: Mapping[str, Any],
    path: tuple[Any, ...],
    file_vars: Mapping[str, Any],
) -> tuple[FanOut | None, tuple[expand.Item, ...] | None]:
    """The step's FanOut (None without for_each) and, for a list in the file, its items."""
    value = raw.get("for_each")
    limit = raw.get("max_parallel")
    least = raw.get("min_items")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    least = least if isinstance(least, int) and not isinstance(least, bool) else 0
    if "for_each" not in raw:
        for name in ("max_parallel", "min_items"):
            if name in raw:
                builder.problem(
                    path + (name,),
                    f"step {sid!r}: {name} is for for_each groups only",
                    "add for_each: [...] or remove it (the pipeline's max_parallel is top-level)",
                    key=True,
                )
        return None, None
    fpath = path + ("for_each",)
    if isinstance(value, str):
        if not templating.is_template(value):
            builder.problem(
                fpath,
                f"step {sid!r}: for_each {value!r} is text, not a list",
                'write a list ([a, b]), a mapping, or a template: "{{ vars.partners }}"',
            )
            return None, None
        builder.template(sid, fpath, value, expression=True)
        _check_vars_only(builder, sid, value, fpath, file_vars, least)
        return FanOut(expression=value, max_parallel=limit, min_items=least), None
    if not isinstance(value, (list, dict)):
        return None, None  # the schema reported the type
    try:
        items = expand.items_of(value, min_items=least)
    except expand.ExpandError as exc:
        for message in exc.each:  # each bad item at its own position
            where = _item_path(fpath, value, message)
            builder.problem(where, f"step {sid!r}: {message}", _hint(message))
        return None, None
    return FanOut(expression=None, max_parallel=limit, min_items=least), items


def expand_steps(
    steps: Sequence[Step], items: Mapping[str, tuple[expand.Item, ...]]
) -> tuple[Step, ...]:
    """Groups written in the file become their instances; needs on a group need them all.

    Index is renumbered in the expanded order, so the tie-break between ready steps keeps
    the file's order and, inside a group, the item order."""
    if not items:
        return tuple(steps)
    out: list[Step] = []
    groups: dict[str, list[str]] = {}
    for step in steps:
        if step.id in items and not items[step.id] and step.fan_out is not None:
            out.append(
                dataclasses.replace(
                    step, fan_out=dataclasses.replace(step.fan_out, expression=expand.EMPTY_LIST)
                )
            )
        elif step.id in items:
            made = expand.instances(step, items[step.id])
            groups[step.id] = [s.id for s in made]
            out.extend(made)
        else:
            out.append(step)
    rewritten = expand.rewrite_needs(out, groups)
    return tuple(dataclasses.replace(s, index=i) for i, s in enumerate(rewritten))


def _check_vars_only(
    builder: _Builder,
    sid: str,
    text: str,
    path: tuple[Any, ...],
    file_vars: Mapping[str, Any],
    least: int,
) -> None:
    """A template that reads only vars written in the file is checked against them now."""
    try:
        names = templating.top_level_names(templating.strip_braces(text))
        if names - {"vars"}:
            return
        value = templating.evaluate(text, {"vars": dict(file_vars)})
    except Exception:  # noqa: BLE001 - an undefined var may come from --var; a syntax error was reported
        return
    try:
        expand.items_of(value, min_items=least)
    except expand.ExpandError as exc:
        builder.problem(path, f"step {sid!r}: {exc} (with the vars written in this file)")


def _item_path(path: tuple[Any, ...], value: Any, message: str) -> tuple[Any, ...]:
    """Point at the offending item when the message names one ("items 0 and 3", "item 2")."""
    import re

    found = re.findall(r"\bitems? (\d+)(?: and (\d+))?", message)
    if not found:
        return path
    index = int(found[0][1] or found[0][0])
    if isinstance(value, list) and index < len(value):
        return path + (index,)
    if isinstance(value, dict) and index < len(value):
        return path + (list(value)[index],)
    return path


def _hint(message: str) -> str:
    if "both named" in message:
        return "each item must give a different instance id; remove the duplicate"
    if "at most" in message:
        return f"split the list over several groups or pipelines (at most {expand.MAX_INSTANCES:,})"
    if "min_items" in message:
        return "add items or lower min_items"
    return "items are text (acme), whole numbers, or mappings with an id or name field"
