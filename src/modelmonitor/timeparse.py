"""Durations ("90s", "15m", "1h", "7d") and times (ISO-8601, "now", "-1h")."""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_duration", "parse_duration", "parse_time"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``"250ms"``, ``"30s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"2w"`` or a number."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m, 1h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 1h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_time(value: str, *, now: float) -> float:
    """Unix seconds from ISO-8601 (naive means UTC), ``"now"``, ``"-15m"`` or epoch seconds."""
    text = value.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        return now - parse_duration(text[1:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: use ISO-8601 (2026-01-31T12:00:00Z), "
            "a relative time (-1h) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
