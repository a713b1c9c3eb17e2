"""What the proxy refuses at its edge, and the counts of each refusal.

A request the proxy will not forward (malformed, over a limit, too slow) is
answered by the proxy itself and counted here per kind; it never becomes an
event, because it has no method or route worth recording. Upstream answers
over a limit are events (with their error kind) and are counted here too.
"""

from __future__ import annotations

import enum

__all__ = ["EdgeCounters", "Refusal", "Reject"]


class Refusal(enum.StrEnum):
    """Why the proxy answered (or cut) a connection itself."""

    BAD_REQUEST = "bad_request"  # the parser refused the bytes (400)
    BAD_FRAMING = "bad_framing"  # Content-Length / Transfer-Encoding problems (400)
    BAD_HOST = "bad_host"  # no Host on HTTP/1.1, several, or an invalid one (400)
    BAD_VERSION = "bad_version"  # not HTTP/1.0 or HTTP/1.1 (505)
    HEAD_TOO_LARGE = "head_too_large"  # request line plus headers over the limit (431)
    TOO_MANY_HEADERS = "too_many_headers"  # more header fields than the limit (431)
    URL_TOO_LONG = "url_too_long"  # request target over the limit (414)
    HEADER_TIMEOUT = "header_timeout"  # the head did not arrive in time (408)
    WRITE_TIMEOUT = "write_timeout"  # the client read nothing for too long (cut off)
    UPSTREAM_HEAD_TOO_LARGE = "upstream_head_too_large"  # 502
    UPSTREAM_HEAD_TIMEOUT = "upstream_head_timeout"  # 504


class Reject(Exception):
    """Raised inside a parser callback to refuse the request being parsed."""

    def __init__(self, kind: Refusal, status: int, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.status = status
        self.detail = detail


class EdgeCounters:
    """Refusals per kind for one proxy (plain ints, bumped on the rare path only)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[Refusal, int] = {}

    def add(self, kind: Refusal) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def as_dict(self) -> dict[str, int]:
        """Counts keyed by kind name, sorted."""
        return {kind.value: count for kind, count in sorted(self.counts.items())}
