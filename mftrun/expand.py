"""for_each: one step written once, run once per item (issue 16).

Why its own module: the same rules (what an item's key is, which ids are valid, the size
limit) apply when a list written in the file is expanded at build time and when a list
from an upstream step's outputs is expanded by the executor at run time; both call here.

Naming: an instance of group `push` for the item `acme` is the step `push[acme]`. The key
is the item itself for a list of strings or numbers, the item's `id` (else `name`) field
for a list of mappings, and the mapping key for a mapping (whose instances see
`item.key` and `item.value`). Keys are letters, digits and `- _ . @ :`, so an instance id
is as inert in a terminal, a report or a CI annotation as a step id, and stable from one
run to the next (resume and history key steps by id).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mftrun.model import Step

MAX_INSTANCES = 10_000  # per group; the schema says the same for a list written in the file
MAX_KEY = 100  # characters of an item's key inside an instance id
# An empty list written in the file: the group stays one step that expands to nothing when
# it is ready, so it still ends (success, saying so) and what needs it still waits for it.
EMPTY_LIST = "[]"
_KEY = re.compile(r"[A-Za-z0-9_.@:-]+")


class ExpandError(ValueError):
    """An item list that cannot become instances; the message names what is wrong, and
    `each` lists every bad item's own message (validate points at each item)."""

    def __init__(self, message: str, each: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.each = tuple(each) or (message,)


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    key: str  # what goes between the brackets of the instance id
    value: Any  # what templates see as `item`


def describe(step: Step) -> str | None:
    """How plan and graph name a step's part in a for_each group (None: not in one)."""
    fan = step.fan_out
    if step.group is not None:
        return f"item {step.id[len(step.group) + 1 : -1]} of for_each group {step.group}"
    if fan is None or fan.expression is None:
        return None
    if fan.expression == EMPTY_LIST:
        return "for_each over an empty list: no instances"
    limit = f", max_parallel {fan.max_parallel}" if fan.max_parallel else ""
    return f"for_each x N, decided at run time: {fan.expression}{limit}"


def instance_id(group: str, key: str) -> str:
    return f"{group}[{key}]"


def items_of(value: Any, *, min_items: int = 0) -> tuple[Item, ...]:
    """The items of a for_each value (a list or a mapping), checked; ExpandError if not.

    A string that holds a JSON list or mapping is read as one: `--var` values are text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ExpandError(f"for_each gave the text {_short(value)}, not a list") from None
    if not isinstance(value, (Mapping, list, tuple)):
        raise ExpandError(f"for_each gave {_kind(value)}, not a list or a mapping")
    if len(value) > MAX_INSTANCES:
        raise ExpandError(f"for_each gave {len(value):,} items; at most {MAX_INSTANCES:,}")
    if len(value) < min_items:
        raise ExpandError(f"for_each gave {len(value)} items; min_items is {min_items}")
    wrong: list[str] = []  # every bad item at once (the first few), not one per try
    unnamed: set[int] = set()  # items that could not be named (already in `wrong`)
    pairs: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        pairs = [(_key_text(k), {"key": k, "value": v}) for k, v in value.items()]
    else:
        for i, item in enumerate(value):
            try:
                pairs.append((_item_key(item, i), item))
            except ExpandError as exc:
                wrong.append(str(exc))
                unnamed.add(i)
                pairs.append(("", item))
    seen: dict[str, int] = {}
    for i, (key, _) in enumerate(pairs):
        if i in unnamed:
            continue
        if not _KEY.fullmatch(key) or len(key) > MAX_KEY:
            wrong.append(
                f"item {i} would be named [{_short(key)}]: an item key is 1 to {MAX_KEY} "
                "letters, digits and - _ . @ :"
            )
        elif key in seen:
            wrong.append(f"items {seen[key]} and {i} are both named [{key}]: items must differ")
        else:
            seen[key] = i
    if wrong:
        more = f"; and {len(wrong) - 5} more" if len(wrong) > 5 else ""
        raise ExpandError("; ".join(wrong[:5]) + more, wrong)
    return tuple(Item(key, value) for key, value in pairs)


def instances(group: Step, items: Sequence[Item]) -> tuple[Step, ...]:
    """The steps of a group, one per item, in item order; each keeps the group's needs.

    `index` stays the group's (file order is the tie-break between ready steps; among the
    instances the heap's second key, the id, would reorder them, so the executor and the
    plan keep item order by the order of `pipeline.steps`)."""
    return tuple(
        dataclasses.replace(
            group,
            id=instance_id(group.id, item.key),
            group=group.id,
            item=item.value,
            fan_out=None if group.fan_out is None else _instance_fan_out(group),
        )
        for item in items
    )


def _instance_fan_out(group: Step) -> Any:
    """Instances carry the group's parallel limit (not its expression: they expand nothing)."""
    fan = group.fan_out
    assert fan is not None
    return dataclasses.replace(fan, expression=None)


def recorded_instances(
    steps: Sequence[Step], earlier: Sequence[Mapping[str, Any]]
) -> tuple[tuple[Step, ...], dict[str, str]]:
    """Stand-ins for the instances of dynamic groups an earlier run recorded, with their
    recorded hashes: resume decides them like steps (carry, attach, refuse an ambiguous
    start); the executor uses a decision only for an instance whose hash still matches."""
    dynamic = {s.id: s for s in steps if s.group is None and s.fan_out and s.fan_out.expression}
    stand_ins: list[Step] = []
    hashes: dict[str, str] = {}
    for record in earlier:
        rid = record.get("id") if isinstance(record, Mapping) else None
        if not isinstance(rid, str) or not rid.endswith("]") or "[" not in rid:
            continue
        group = dynamic.get(rid[: rid.index("[")])
        if group is None or rid in hashes:
            continue
        stand_ins.append(dataclasses.replace(group, id=rid, group=group.id, fan_out=None))
        hashes[rid] = str(record.get("hash") or "")
    return tuple(stand_ins), hashes


def rewrite_needs(steps: Sequence[Step], groups: Mapping[str, Sequence[str]]) -> tuple[Step, ...]:
    """`needs: [push]` on a group written in the file means every instance of it."""
    out = []
    for step in steps:
        if any(need in groups for need in step.needs):
            needs: list[str] = []
            for need in step.needs:
                needs.extend(groups.get(need, (need,)))
            step = dataclasses.replace(step, needs=tuple(dict.fromkeys(needs)))
        out.append(step)
    return tuple(out)


def group_view(instances: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """What templates see as `steps.<group>`: per-item outputs and one verdict for the group.

    `outputs` maps item key -> that instance's outputs (a fan-in reads them all);
    `instances` maps item key -> the instance's own view; the group's outcome is the
    worst of its instances (any failure is the group's failure), success with none."""
    views = dict(zip(keys, instances, strict=True))
    outcomes = [v.get("outcome") for v in instances]
    conclusions = [v.get("conclusion") for v in instances]
    return {
        "status": _worst(outcomes),
        "outcome": _worst(outcomes),
        "conclusion": _worst(conclusions),
        "outputs": {key: view.get("outputs", {}) for key, view in views.items()},
        "instances": views,
        "count": len(views),
        "error": next((v.get("error") for v in instances if v.get("error")), None),
    }


_ORDER = ("timed_out", "error", "failed", "cancelled", "skipped", "pending", "running", "success")


def _worst(values: Sequence[Any]) -> str:
    """The group's verdict. An instance skipped while others ran was filtered out by its own
    run_if (every instance has the same needs): it does not count against the group."""
    if "skipped" in values and any(v != "skipped" for v in values):
        values = [v for v in values if v != "skipped"]
    for name in _ORDER:
        if name in values:
            return name
    return "success"


def _item_key(item: Any, index: int) -> str:
    if isinstance(item, Mapping):
        for name in ("id", "name"):
            if isinstance(item.get(name), (str, int)) and not isinstance(item.get(name), bool):
                return str(item[name])
        if "id" in item or "name" in item:
            field_name = "id" if "id" in item else "name"
            raise ExpandError(
                f"item {index}'s {field_name} is {_kind(item[field_name])}: "
                "it names the instance, so it is text or a whole number"
            )
        raise ExpandError(f"item {index} is a mapping without an id or name field to name it by")
    if isinstance(item, bool) or item is None or isinstance(item, (list, float)):
        raise ExpandError(
            f"item {index} is {_kind(item)}: items are text, whole numbers or mappings"
        )
    return str(item)


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {_short(value)}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")
