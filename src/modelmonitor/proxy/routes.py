"""Route templates: ``/v1/users/42/items`` -> ``/v1/users/{id}/items``, within a cap.

Metrics are grouped by route, so a route must not carry ids: user patterns
(``/v1/models/{model}/predict``) win, otherwise segments that look like ids
(numbers, UUIDs, hex hashes, emails, key-like tokens such as ``sk-...``, long
opaque mixes of letters and digits) collapse to ``{id}``. Opaque segments are
also masked in the path recorded with each event, so an email or a key in a URL
never reaches the store.

Whatever the paths, a service has at most ``max_routes`` distinct templates:
later ones are counted under :data:`OTHER`. Results are cached in a bounded LRU,
so the hot path pays one dict lookup.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = [
    "MAX_CACHED_PATH",
    "OTHER",
    "REDACTED",
    "RouteTemplater",
    "Segment",
    "classify_segment",
    "collapse_segment",
    "route_template",
]

ID = "{id}"
#: The route of every request past a service's route cap.
OTHER = "{other}"
#: What replaces an opaque segment (email, key, token) in a recorded path.
REDACTED = "{redacted}"
#: Longer paths are templated without the cache (so the cache stays small).
MAX_CACHED_PATH = 256

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_SHORT_HEX = re.compile(r"(?=.*[0-9])(?=.*[a-fA-F])[0-9a-fA-F]{7,}")
_TOKEN = re.compile(r"[A-Za-z0-9_~=+.-]{16,}")
_KEY_PREFIX = re.compile(
    r"(?i)(?:sk|pk|rk|ak|api|apikey|key|tok|token|secret|sess|session|bearer|"
    r"gh[pousr]|glpat|xox[abprs])[-_](.{8,})"
)
_PARTS = re.compile(r"[-_.~+=]")
_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")
_MAX_SEGMENT = 64


class Segment(enum.Enum):
    """What one path segment is, for templating and for the recorded path."""

    NAME = "name"  # kept as it is
    NUMBER = "number"  # {id} in the route, kept in the recorded path (numbers, UUIDs)
    OPAQUE = "opaque"  # {id} in the route, masked in the recorded path


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


def _case_changes(segment: str) -> int:
    """How often the text alternates between lower and upper case letters."""
    changes = 0
    previous = 0
    for char in segment:
        kind = 1 if char.islower() else 2 if char.isupper() else 0
        if kind:
            if previous and kind != previous:
                changes += 1
            previous = kind
    return changes


def _opaque_part(part: str) -> bool:
    """A piece between separators that reads as random: a long letter-digit mix, or a
    long stretch of mixed case (base62, base64)."""
    if len(part) >= 12 and not part.isalpha() and not part.isdigit():
        return True
    if len(part) < 16 or _case_changes(part) < 3:
        return False
    # Random letters are about half upper case; CamelCase names far less.
    upper = sum(char.isupper() for char in part)
    return 0.3 <= upper / len(part) <= 0.7


def _opaque(segment: str, digits: int) -> bool:
    if "@" in segment or "%40" in segment.lower():
        return True  # an email or user@host
    if _HEX.fullmatch(segment) or _SHORT_HEX.fullmatch(segment):
        return True
    key = _KEY_PREFIX.fullmatch(segment)
    if key is not None and (any(c.isdigit() for c in key[1]) or _case_changes(key[1]) >= 2):
        return True
    if any(_opaque_part(part) for part in _PARTS.split(segment)):
        return True
    if digits and _TOKEN.fullmatch(segment):
        # Opaque ids mix letters and digits many times or mix case without
        # separators; model names such as "llama-3-70b-instruct" do not.
        if _class_changes(segment) >= 4:
            return True
        if "-" not in segment and "." not in segment and segment.lower() != segment:
            return not segment.isupper() or digits >= 4
    return len(segment) >= 32 and _PARTS.search(segment) is None


def classify_segment(segment: str) -> Segment:
    """Whether one path segment is a name, a number-like id, or an opaque token."""
    if not segment:
        return Segment.NAME
    if segment.isdigit():
        return Segment.NUMBER
    if len(segment) > _MAX_SEGMENT:
        return Segment.OPAQUE
    if _UUID.fullmatch(segment):
        return Segment.NUMBER
    digits = sum(char.isdigit() for char in segment)
    if digits * 2 > len(segment) and len(segment) >= 4:
        return Segment.NUMBER  # mostly digits: dates, phone numbers, "123-456"
    return Segment.OPAQUE if _opaque(segment, digits) else Segment.NAME


def collapse_segment(segment: str) -> bool:
    """Whether one path segment looks like an id rather than a name."""
    return classify_segment(segment) is not Segment.NAME


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
    """Maps request paths to route templates for one service; cached, capped."""

    __slots__ = ("_patterns", "_routes", "_special", "describe", "folded", "max_routes")

    def __init__(
        self,
        patterns: Iterable[str] = (),
        *,
        cache_size: int = 4096,
        max_routes: int = 1_000,
        special: Callable[[str], str | None] | None = None,
    ) -> None:
        self._patterns = [(_compile(p), p) for p in patterns]
        #: Consulted after the user's patterns: a serving protocol's own routes
        #: (finite, like the user's, so never capped).
        self._special = special
        #: Distinct automatic templates handed out (at most ``max_routes``).
        self._routes: set[str] = set()
        self.max_routes = max_routes
        #: Requests counted under :data:`OTHER`; bumped by the caller that records them.
        self.folded = 0
        #: The cached ``path -> (route, recorded path)`` function (a C-level LRU: use
        #: it on the hot path for paths up to :data:`MAX_CACHED_PATH` long).
        self.describe: Callable[[str], tuple[str, str]] = lru_cache(maxsize=cache_size)(
            self.describe_uncached
        )

    def __call__(self, path: str) -> str:
        return self.template(path)

    def template(self, path: str) -> str:
        """The route template of ``path`` (query ignored)."""
        describe = self.describe if len(path) <= MAX_CACHED_PATH else self.describe_uncached
        return describe(path)[0]

    @property
    def routes(self) -> int:
        """Distinct automatic templates handed out so far."""
        return len(self._routes)

    def describe_uncached(self, path: str) -> tuple[str, str]:
        """The route of ``path`` and the path as recorded (opaque segments masked)."""
        path = path.partition("?")[0]
        for regex, pattern in self._patterns:
            if regex.fullmatch(path):
                return pattern, path  # user patterns are finite: never capped
        if self._special is not None:
            special = self._special(path)
            if special is not None:
                return special, path
        segments = path.split("/")
        kinds = [classify_segment(segment) for segment in segments]
        route = "/".join(
            segment if kind is Segment.NAME else ID
            for segment, kind in zip(segments, kinds, strict=True)
        )
        route = route or "/"
        if route not in self._routes:
            if len(self._routes) >= self.max_routes:
                route = OTHER
            else:
                self._routes.add(route)
        if Segment.OPAQUE in kinds:
            path = "/".join(
                REDACTED if kind is Segment.OPAQUE else segment
                for segment, kind in zip(segments, kinds, strict=True)
            )
        return route, path


def route_template(path: str, patterns: Iterable[str] = ()) -> str:
    """Template one path (uncapped); for repeated use build a :class:`RouteTemplater`."""
    return RouteTemplater(patterns, cache_size=1, max_routes=1 << 62).describe_uncached(path)[0]
