"""Durations as people write them ("45s", "15m", "1h30m", 90) <-> seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
PATTERN = r"^\s*(\d+(\.\d+)?(ms|s|m|h|d))+\s*$"


MAX_DURATION = 366 * 86400.0  # a year: longer is a typo, and NaN/inf would stall the scheduler


def _bounded(seconds: float, value: object) -> float:
    if seconds != seconds or seconds > MAX_DURATION:  # NaN, inf, or absurd
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ValueError(f"duration {shown} is not a finite duration of at most 366d")
    return seconds


def parse_duration(value: object) -> float:
    """Return seconds; raise ValueError with a message that says the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        if isinstance(value, int) and value > MAX_DURATION:  # float() of a huge int overflows
            raise ValueError("the duration is longer than 366d; write e.g. 45s, 15m, 2h")
        return _bounded(float(value), value)
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            number = float(text)
        except (ValueError, OverflowError):
            pass
        else:
            if number < 0:
                raise ValueError(f"duration {value!r} is negative")
            return _bounded(number, value)
        pos, total = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            try:
                total += float(match.group(1)) * _UNITS[match.group(2)]
            except OverflowError:
                total = float("inf")
            pos = match.end()
        if text and pos == len(text):
            return _bounded(total, value)
    raise ValueError(
        f"{value!r} is not a duration; write e.g. 45s, 15m, 2h, 1h30m or a number of seconds"
    )


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds % 1 else f"{int(seconds)}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return out + (f"{secs}s" if secs else "")
