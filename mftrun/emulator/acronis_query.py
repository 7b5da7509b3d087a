"""The Acronis task manager's query language: filters, LIKE, time filters, order and paging.

Split from the HTTP handlers (issue 12) because it is a language of its own, specified
parameter by parameter in api-contracts.md: what a listing's query string means, which
values it refuses (a `BadQuery`, answered 400), and how keyset cursors page through the
result. The handlers in `acronis` compute the items; this module only reads the query,
judges items against it and cuts pages, so it holds no platform state.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from calendar import timegm
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATES = ("enqueued", "assigned", "started", "paused", "completed")
RESULTS = ("ok", "error", "warning", "cancelled", "abandoned", "timedout")
PRIORITIES = ("low", "belowNormal", "normal", "aboveNormal", "high")
LODS = ("tiny", "short", "long", "full", "debug", "count")
TIME_FIELDS = {
    "enqueuedAt": "enqueuedAt",
    "assignedAt": "assignedAt",
    "startedAt": "startedAt",
    "updatedAt": "updatedAt",
    "completedAt": "completedAt",
}
LIKE_FIELDS = ("startedBy", "policyName", "resourceName")
PAGING = ("limit", "after", "before", "lod")
OTHER_PARAMS = ("order", "allow_deleted")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def _past(key: list[Any], position: list[Any], descending: bool) -> bool:
    """Whether `key` comes after `position` in the listing's order."""
    return key < position if descending else key > position


def _named(item: dict[str, Any], key: str, field: str) -> list[str]:
    value = item.get(key)
    return (
        [str(value.get(field))] if isinstance(value, dict) and value.get(field) is not None else []
    )


# Multi-value filters: parameter -> the item's values it is compared with.
VALUE_FILTERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "id": lambda i: [i["idString"]],
    "uuid": lambda i: [i["uuid"]],
    "taskId": lambda i: [i["taskIdString"]] if "taskIdString" in i else [],  # activities only
    "type": lambda i: [i["type"]],
    "queue": lambda i: [i["queue"]],
    "priority": lambda i: [i["priority"]],
    "state": lambda i: [i["state"]],
    "resultCode": lambda i: [i["result"]["code"]] if "result" in i else [],
    "startedBy": lambda i: [i["startedByUser"]] if i.get("startedByUser") else [],
    "policyId": lambda i: _named(i, "policy", "id"),
    "policyName": lambda i: _named(i, "policy", "name"),
    "policyType": lambda i: _named(i, "policy", "type"),
    "resourceId": lambda i: _named(i, "resource", "id"),
    "resourceName": lambda i: _named(i, "resource", "name"),
    "resourceType": lambda i: _named(i, "resource", "type"),
    "workflowId": lambda i: [i["workflowId"]] if i.get("workflowId") else [],
    "executorId": lambda i: _named(i, "executor", "id"),
    "tag": lambda i: list(i.get("tags") or ()),
}
ENUMS = {"state": STATES, "resultCode": RESULTS, "priority": PRIORITIES}


class BadQuery(Exception):
    """A query the task manager refuses; the message is the 400 answer's `reason`."""


# ----------------------------------------------------------------------------- time values

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_RFC3339 = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$"
)


def parse_time_ns(text: str) -> int:
    """RFC 3339 (any fraction), RFC 1123, RFC 850, ANSI C, Unix seconds, or Unix ns with `ns`."""
    text = text.strip()
    if re.fullmatch(r"\d+ns", text):
        return int(text[:-2])
    if re.fullmatch(r"\d+(\.\d+)?", text):
        whole, _, frac = text.partition(".")
        return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    m = _RFC3339.match(text)
    if m:
        year, month, day, hour, minute, sec = (int(x) for x in m.groups()[:6])
        nanos = int(((m.group(7) or "") + "000000000")[:9])
        tz = m.group(8)
        offset = (
            0
            if tz in ("Z", "z")
            else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
        )
        seconds = timegm((year, month, day, hour, minute, sec, 0, 0, 0)) - offset
        return seconds * 1_000_000_000 + nanos
    for fmt in (
        "%a, %d %b %Y %H:%M:%S %Z",
        "%A, %d-%b-%y %H:%M:%S %Z",
        "%a %b %d %H:%M:%S %Y",
        "%a, %d %b %Y %H:%M:%S GMT",
    ):
        try:
            parsed = datetime.strptime(" ".join(text.split()), fmt)
        except ValueError:
            continue
        return timegm(parsed.timetuple()) * 1_000_000_000
    raise ValueError(text)


def _like(pattern: str, value: str) -> bool:
    """SQL-like match, case-insensitive: % any run, _ one character; no % means "contains"."""
    if "%" not in pattern:
        return pattern.lower() in value.lower()
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


# ----------------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class Filters:
    """A listing's filters and order, read from its query; judges and orders items."""

    values: dict[str, list[str]]
    times: list[tuple[str, str, int]]
    order_field: str
    descending: bool

    def accepts(self, item: dict[str, Any]) -> bool:
        if not all(matches(name, wanted, item) for name, wanted in self.values.items()):
            return False
        return all(time_ok(item, name, op, ns) for name, op, ns in self.times)

    def key(self, item: dict[str, Any], task_id: int) -> list[Any]:
        """The sort key; a task without the ordered time sorts after those with it."""
        if self.order_field == "id":
            return [0, 0, task_id]
        stamp = item.get(self.order_field)
        return [0, parse_time_ns(stamp), task_id] if stamp else [1, 0, task_id]


def read_filters(query: list[tuple[str, str]], *, activities: bool = False) -> Filters:
    values: dict[str, list[str]] = {}
    times: list[tuple[str, str, int]] = []
    order_field, descending = "enqueuedAt", False
    for name, value in query:
        if name == "taskId" and not activities:
            raise BadQuery("unknown query parameter 'taskId'")
        if name in VALUE_FILTERS:
            allowed = ENUMS.get(name)
            if allowed is not None and value not in allowed:
                raise BadQuery(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
            if value.startswith("like(") and value.endswith(")") and name not in LIKE_FIELDS:
                raise BadQuery(f"like(...) works only on {', '.join(LIKE_FIELDS)}")
            values.setdefault(name, []).append(value)
        elif name in TIME_FIELDS:
            m = re.fullmatch(r"(gt|lt|ge|le|eq)\((.*)\)", value)
            if not m:  # documented form only: a bare date silently meaning eq would hide typos
                raise BadQuery(
                    f"{name} must be an operator and a time, e.g. "
                    f"gt(2020-04-22T11:00:00Z) (gt, lt, ge, le, eq), not {value!r}"
                )
            op, text = m.group(1), m.group(2)
            try:
                times.append((name, op, parse_time_ns(text)))
            except ValueError:
                raise BadQuery(f"{name}: cannot read the time {text!r}") from None
        elif name == "order":
            m = re.fullmatch(r"(asc|desc)\((\w+)\)", value)
            if not m or (m.group(2) not in TIME_FIELDS and m.group(2) != "id"):
                raise BadQuery(
                    "order must be asc(field) or desc(field) with field id or a time field"
                )
            order_field, descending = m.group(2), m.group(1) == "desc"
        elif name == "allow_deleted":
            continue
        else:
            raise BadQuery(f"unknown query parameter {name!r}")
    return Filters(values, times, order_field, descending)


def matches(name: str, wanted: list[str], item: dict[str, Any]) -> bool:
    have = VALUE_FILTERS[name](item)
    for value in wanted:
        if value.startswith("like(") and value.endswith(")"):
            if any(_like(value[5:-1], h) for h in have):
                return True
        elif value in have:
            return True
    return False


def time_ok(item: dict[str, Any], name: str, op: str, ns: int) -> bool:
    stamp = item.get(TIME_FIELDS[name])
    if not stamp:
        return False
    t = parse_time_ns(stamp)
    return {"gt": t > ns, "lt": t < ns, "ge": t >= ns, "le": t <= ns, "eq": t == ns}[op]


# ----------------------------------------------------------------------------- paging


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing request: the filter query (a cursor's own, when paging) and the page wanted."""

    query: list[tuple[str, str]]
    limit: int
    lod: str
    cursor_name: str | None  # "after" | "before" | None
    position: list[Any] | None  # the sort key the cursor points past (keyset paging)


def read_listing(params: list[tuple[str, str]]) -> Listing:
    names = {k for k, _ in params}
    limit = DEFAULT_LIMIT
    lod = "full"
    cursor_name = next((n for n in ("after", "before") if n in names), None)
    for name in names:
        if sum(1 for k, _ in params if k == name) > 1 and (
            name in PAGING or name in TIME_FIELDS or name in OTHER_PARAMS
        ):
            raise BadQuery(f"{name} accepts one value")
    single = {k: v for k, v in params if k in PAGING}
    if "limit" in single:
        if not single["limit"].isdigit() or not 1 <= int(single["limit"]) <= MAX_LIMIT:
            raise BadQuery(f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(single["limit"])
    if "lod" in single:
        if single["lod"] not in LODS:
            raise BadQuery(f"lod must be one of {', '.join(LODS)}")
        lod = single["lod"]
    position: list[Any] | None = None
    if cursor_name is not None:
        if "after" in names and "before" in names:
            raise BadQuery("send either after or before, not both")
        extra = sorted(names - set(PAGING))
        if extra:
            raise BadQuery(
                "a cursor carries the original query: with after/before send only "
                f"limit and lod (got {', '.join(extra)})"
            )
        try:
            decoded = json.loads(base64.b64decode(single[cursor_name], validate=True))
            query = [(str(k), str(v)) for k, v in decoded["q"]]
            position = list(decoded["k"])
            if len(position) != 3 or not all(type(x) is int for x in position):
                raise ValueError("cursor key")
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise BadQuery(f"{cursor_name} is not a valid cursor") from None
    else:
        query = [(k, v) for k, v in params if k not in PAGING]
    return Listing(query, limit, lod, cursor_name, position)


def descending(query: list[tuple[str, str]]) -> bool:
    return any(name == "order" and value.startswith("desc(") for name, value in query)


def page(keyed: list[tuple[list[Any], dict[str, Any]]], listing: Listing) -> dict[str, Any]:
    """One page of the ordered, keyed result, with the cursors to the pages around it."""
    # Keyset paging: a cursor holds the sort key of the item it follows or precedes, so a task
    # that leaves the result between two pages (it completed) shifts nothing and skips nobody.
    keys = [key for key, _ in keyed]
    query, position, limit = listing.query, listing.position, listing.limit
    desc = descending(query)
    if position is None:
        start = 0
    elif listing.cursor_name == "after":
        start = next((i for i, k in enumerate(keys) if _past(k, position, desc)), len(keys))
    else:
        end = next((i for i, k in enumerate(keys) if not _past(position, k, desc)), len(keys))
        start = max(0, end - limit)
        limit = end - start
    chunk = keyed[start : start + limit]
    cursors: dict[str, str] = {}

    def cursor(key: list[Any]) -> str:
        return base64.b64encode(
            json.dumps({"q": query, "k": key}, separators=(",", ":")).encode()
        ).decode()

    if start + len(chunk) < len(keyed) and chunk:
        cursors["after"] = cursor(chunk[-1][0])
    if start > 0 and chunk:
        cursors["before"] = cursor(chunk[0][0])
    return {"items": [item for _, item in chunk], "paging": {"cursors": cursors}}
