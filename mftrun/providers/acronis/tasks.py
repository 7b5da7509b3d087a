"""Reading Acronis task objects: exact 64-bit ids, nanosecond timestamps, result codes, and
how a task is named in a message or summarised in the step's outputs.

Task ids are 64-bit integers above 2**53: they are keyed by `idString` (or the exact
integer's text) and never pass through a float. Timestamps carry nine fractional digits,
which `datetime.fromisoformat` rejects; `parse_timestamp` reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from mftrun.inert import inert

_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"([Zz]|[+-]\d{2}:?\d{2})$"
)


def parse_timestamp(text: str) -> tuple[datetime, int]:
    """RFC 3339 with up to 9 fractional digits -> (UTC datetime to the microsecond, nanoseconds)."""
    match = _TS.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    nanos = int((fraction or "").ljust(9, "0"))
    when = datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        nanos // 1000,
        tzinfo=timezone.utc,
    )
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when, nanos


def task_key(task: Mapping[str, Any]) -> str | None:
    """The task's id as exact text: idString, else the integer (never via float)."""
    value = task.get("idString")
    if isinstance(value, str) and value:
        return value
    value = task.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def result_code(task: Mapping[str, Any]) -> str | None:
    result = task.get("result")
    code = result.get("code") if isinstance(result, dict) else None
    return str(code) if code not in (None, "") else None


def _named(task: Mapping[str, Any], key: str) -> Any:
    value = task.get(key)
    if isinstance(value, dict):
        return {k: value.get(k) for k in ("id", "name", "type") if value.get(k) is not None} or None
    return None


def summary(key: str, task: Mapping[str, Any] | None) -> dict[str, Any]:
    task = task or {}
    return {
        "id": key,
        "uuid": task.get("uuid"),
        "type": task.get("type"),
        "state": task.get("state"),
        "result_code": result_code(task),
        "policy": _named(task, "policy"),
        "resource": _named(task, "resource"),
        "completed_at": task.get("completedAt"),
    }


def describe(key: str, task: Mapping[str, Any] | None) -> str:
    # Every piece is the platform's text (ids, type, names, code, reason): one inert line.
    if task is None:
        return f"task {inert(key)} (no longer found: 404)"
    bits = [f"type {inert(task['type'])}"] if task.get("type") else []
    for field_name in ("policy", "resource"):
        part = task.get(field_name)
        if isinstance(part, dict) and part.get("name"):
            bits.append(f"{field_name} '{inert(part['name'])}'")
    text = (
        f"task {inert(key)}"
        + (f" ({', '.join(bits)})" if bits else "")
        + f" result {inert(result_code(task) or 'none')}"
    )
    error = (
        (task.get("result") or {}).get("error") if isinstance(task.get("result"), dict) else None
    )
    if error:
        if isinstance(error, dict):
            error = error.get("reason") or error.get("code") or error.get("message") or str(error)
        text += f": {inert(str(error)[:300])}"
    return text


def warned(key: str, task: Mapping[str, Any]) -> str:
    """An accepted `warning` task, with the platform's warning text (result.warnings)."""
    result = task.get("result")
    raw = result.get("warnings") if isinstance(result, dict) else None
    texts = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            item = item.get("reason") or item.get("message") or item.get("code") or item
        texts.append(inert(str(item)[:300]))
    said = "; ".join(texts) or "the platform gave no warning text"
    return f"{describe(key, task)} (accepted): {said}"


def by_completion(bad: Sequence[tuple[str, Mapping[str, Any] | None]]) -> list[tuple[str, Any]]:
    def order(item: tuple[str, Any]) -> tuple[int, datetime, int]:
        task = item[1] or {}
        try:
            when, nanos = parse_timestamp(task.get("completedAt") or "")
            return (0, when, nanos)
        except ValueError:
            return (1, datetime.min.replace(tzinfo=timezone.utc), 0)

    return sorted(bad, key=order)
