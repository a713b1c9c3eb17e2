"""Route templates: ``/v1/users/42/items`` -> ``/v1/users/{id}/items``.

Metrics are grouped by route, so a route must not carry ids: user patterns
(``/v1/models/{model}/predict``) win, otherwise segments that look like ids
(numbers, UUIDs, hex hashes, long opaque tokens with digits) collapse to ``{id}``.
Results are cached in a bounded LRU, so the hot path pays one dict lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = ["RouteTemplater", "collapse_segment", "route_template"]

ID = "{id}"

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_TOKEN = re.compile(r"[A-Za-z0-9_~=+.-]{16,}")
_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")
_MAX_SEGMENT = 64


def _class_changes(segment: str) -> int:
    """How often the text alternates between letters and digits (ids alternate a lot)."""
    changes = 0
    previous = ""
    for char in segment:
        kind = "d" if char.isdigit() else "a" if char.isalpha() else ""
        if kind:
            if previous and kind != previous:
                changes += 1
            previous = kind
    return changes


def collapse_segment(segment: str) -> bool:
    """Whether one path segment looks like an id rather than a name."""
    if not segment:
        return False
    if segment.isdigit() or len(segment) > _MAX_SEGMENT:
        return True
    digits = sum(char.isdigit() for char in segment)
    if not digits:
        return len(segment) >= 16 and _HEX.fullmatch(segment) is not None
    if digits * 2 > len(segment) and len(segment) >= 4:
        return True  # mostly digits: dates, phone numbers, "123-456"
    if _UUID.fullmatch(segment) or _HEX.fullmatch(segment):
        return True
    if _TOKEN.fullmatch(segment):
        # Opaque ids mix letters and digits many times or mix case without
        # separators; model names such as "llama-3-70b-instruct" do not.
        if _class_changes(segment) >= 4:
            return True
        if "-" not in segment and "." not in segment and segment.lower() != segment:
            return not segment.isupper() or digits >= 4
    return False


def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        parts.append("[^/]+")
        position = match.end()
    parts.append(re.escape(pattern[position:].rstrip("/")))
    return re.compile("".join(parts) + "/?")


class RouteTemplater:
    """Maps request paths to route templates for one service; cached, bounded."""

    __slots__ = ("_patterns", "_special", "template")

    def __init__(
        self,
        patterns: Iterable[str] = (),
        *,
        cache_size: int = 4096,
        special: Callable[[str], str | None] | None = None,
    ) -> None:
        self._patterns = [(_compile(p), p) for p in patterns]
        #: Consulted after the user's patterns (a serving protocol's own routes).
        self._special = special
        #: The cached ``path -> template`` function (a C-level LRU: use it on the hot path).
        self.template: Callable[[str], str] = lru_cache(maxsize=cache_size)(self._template)

    def __call__(self, path: str) -> str:
        return self.template(path)

    def _template(self, path: str) -> str:
        path = path.partition("?")[0]
        for regex, pattern in self._patterns:
            if regex.fullmatch(path):
                return pattern
        if self._special is not None:
            route = self._special(path)
            if route is not None:
                return route
        return "/".join(ID if collapse_segment(s) else s for s in path.split("/")) or "/"


_default = RouteTemplater()


def route_template(path: str, patterns: Iterable[str] = ()) -> str:
    """Template one path; for repeated use build a :class:`RouteTemplater` per service."""
    patterns = list(patterns)
    if not patterns:
        return _default.template(path)
    return RouteTemplater(patterns, cache_size=1)._template(path)
