"""Redaction of sampled bodies: built-in patterns, the user's own, field allow and deny lists.

Runs in the worker on the sampled bytes before anything is stored. JSON bodies are
redacted value by value (denied fields replaced, fields outside a non-empty allow
list dropped, strings scrubbed); any other body is scrubbed as text.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["BUILTIN_PATTERNS", "Pattern", "Redactor", "luhn_valid"]

REDACTED = "[redacted]"


class Pattern(enum.StrEnum):
    EMAIL = "email"
    CARD = "card"
    PHONE = "phone"
    TOKEN = "token"


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w])")
_TOKEN = re.compile(
    r"(?:"
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI-style and similar secret keys
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"  # an Authorization value in text
    r"|\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,}\b"  # long key-like
    r")"
)

BUILTIN_PATTERNS: dict[Pattern, re.Pattern[str]] = {
    Pattern.TOKEN: _TOKEN,
    Pattern.EMAIL: _EMAIL,
    Pattern.CARD: _CARD,
    Pattern.PHONE: _PHONE,
}


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return "[phone]" if 8 <= digits <= 15 else match.group(0)


class Redactor:
    """Scrubs text and JSON values: built-in ``patterns`` and the user's ``custom`` regexes."""

    def __init__(
        self,
        *,
        patterns: Iterable[Pattern] = tuple(Pattern),
        custom: Iterable[str] = (),
        allow_fields: Iterable[str] = (),
        deny_fields: Iterable[str] = (),
    ) -> None:
        chosen = set(patterns)
        # Order matters: tokens and emails first, so their digits are not read as phones.
        self._builtin = [(p, rx) for p, rx in BUILTIN_PATTERNS.items() if p in chosen]
        self._custom = [re.compile(rx) for rx in custom]
        self._allow = [f.lower() for f in allow_fields]
        self._deny = [f.lower() for f in deny_fields]

    def text(self, value: str) -> str:
        for pattern, rx in self._builtin:
            if pattern is Pattern.CARD:
                value = rx.sub(_card, value)
            elif pattern is Pattern.PHONE:
                value = rx.sub(_phone, value)
            else:
                value = rx.sub(f"[{pattern.value}]", value)
        for rx in self._custom:
            value = rx.sub(REDACTED, value)
        return value

    def _number(self, value: int) -> int | str:
        digits = str(abs(value))
        if Pattern.CARD in dict(self._builtin) and 13 <= len(digits) <= 19 and luhn_valid(digits):
            return "[card]"
        return value

    def denied(self, path: str) -> bool:
        return _matches(path, self._deny)

    def allowed(self, path: str) -> bool:
        return not self._allow or _matches(path, self._allow) or _is_prefix(path, self._allow)

    def value(self, value: Any, path: str = "") -> Any:
        """A redacted copy of a parsed JSON value; ``path`` is its dotted location."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if self.denied(child):
                    out[self.text(str(key))] = REDACTED
                elif self.allowed(child):
                    out[self.text(str(key))] = self.value(item, child)
            return out
        if isinstance(value, list):
            return [self.value(item, path) for item in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self._number(value)
        return value

    def body(self, data: bytes) -> tuple[str, Any]:
        """Redacted text of a body, and its parsed (redacted) JSON or None."""
        text = data.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            return self.text(text), None
        clean = self.value(parsed)
        return json.dumps(clean, ensure_ascii=False, separators=(",", ":")), clean


def _matches(path: str, patterns: list[str]) -> bool:
    lower = path.lower()
    leaf = lower.rsplit(".", 1)[-1]
    return any(fnmatch.fnmatchcase(lower, p) or fnmatch.fnmatchcase(leaf, p) for p in patterns)


def _is_prefix(path: str, patterns: list[str]) -> bool:
    # Keep the containers on the way to an allowed field.
    lower = path.lower() + "."
    return any(p.startswith(lower) for p in patterns)
