"""Model name from a JSON request body's top-level field, reading a bounded prefix only."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JSON_PREFIX_BYTES", "json_field"]

#: How much of a request body is kept to look for the model field.
JSON_PREFIX_BYTES = 64 * 1024

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def json_field(prefix: bytes, field: str) -> str:
    """The top-level ``field`` of a JSON object as text, or ``""``.

    ``prefix`` may be truncated: members are read one by one (each in C) and the
    scan stops at the field, at the end, or where the text is cut off.
    """
    text = prefix.decode("utf-8", "ignore")
    index = _skip(text, 0)
    if index >= len(text) or text[index] != "{":
        return ""
    index += 1
    try:
        for _ in range(100_000):  # bounded: one iteration per top-level member
            index = _skip(text, index)
            if index >= len(text) or text[index] != '"':
                return ""
            key, index = _decoder.raw_decode(text, index)
            index = _skip(text, index)
            if index >= len(text) or text[index] != ":":
                return ""
            index = _skip(text, index + 1)
            value: Any
            value, index = _decoder.raw_decode(text, index)
            if key == field:
                if isinstance(value, str):
                    return value
                if isinstance(value, bool) or value is None:
                    return ""
                return str(value) if isinstance(value, int | float) else ""
            index = _skip(text, index)
            if index >= len(text) or text[index] != ",":
                return ""
            index += 1
    except (ValueError, RecursionError):
        return ""
    return ""
