"""HTTP/1.1 wire constants and small helpers shared by the client and upstream sides."""

from __future__ import annotations

import json
from http import HTTPStatus

__all__ = [
    "CONNECTION_UPGRADE",
    "CONTINUE",
    "CRLF",
    "LAST_CHUNK",
    "METHODS",
    "REQUEST_SPECIAL",
    "RESPONSE_SPECIAL",
    "chunk_header",
    "connection_tokens",
    "error_response",
    "last_chunk",
    "status_line",
]

CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CONNECTION_UPGRADE = b"Connection: upgrade\r\n"

#: Headers of either direction the proxy handles itself (lower-case name -> action
#: code): 2 connection, 3 hop-by-hop (dropped), 4 transfer-encoding (re-framed),
#: 9 content-length, 10 upgrade (kept only for a protocol switch).
RESPONSE_SPECIAL: dict[bytes, int] = {
    b"connection": 2,
    b"keep-alive": 3,
    b"proxy-connection": 3,
    b"te": 3,
    b"upgrade": 10,
    b"transfer-encoding": 4,
    b"content-length": 9,
}

#: Requests add 1 host, 5 expect, 6 x-forwarded-for, 7 x-forwarded-proto and
#: 8 x-forwarded-host (7 and 8 are also bit flags).
REQUEST_SPECIAL: dict[bytes, int] = {
    **RESPONSE_SPECIAL,
    b"host": 1,
    b"expect": 5,
    b"x-forwarded-for": 6,
    b"x-forwarded-proto": 7,
    b"x-forwarded-host": 8,
}

#: Interned method names (bytes from the parser -> str for events).
METHODS: dict[bytes, str] = {
    m.encode(): m
    for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT")
}

_STATUS_LINES: dict[tuple[int, bytes], bytes] = {}
_PHRASES = {status.value: status.phrase.encode() for status in HTTPStatus}
_CHUNK_HEADERS = [b"%x\r\n" % n for n in range(4096)]


def status_line(status: int, reason: bytes = b"") -> bytes:
    """``HTTP/1.1 200 OK\\r\\n`` (standard phrase unless given), cached."""
    if not reason:
        reason = _PHRASES.get(status, b"Unknown")
    key = (status, reason)
    line = _STATUS_LINES.get(key)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_STATUS_LINES) < 1024:
            _STATUS_LINES[key] = line
    return line


def last_chunk(trailer_parts: list[bytes]) -> bytes:
    """The end of a chunked body carrying trailer fields (``name, ": ", value, CRLF``
    quadruples as the parsers collect them; framing fields are left out)."""
    fields = [
        b"".join(trailer_parts[index : index + 4])
        for index in range(0, len(trailer_parts) - 3, 4)
        if trailer_parts[index].lower() != b"content-length"
    ]
    return b"0\r\n" + b"".join(fields) + CRLF


def chunk_header(size: int) -> bytes:
    """The chunk-size line of a chunked body."""
    return _CHUNK_HEADERS[size] if size < 4096 else b"%x\r\n" % size


def connection_tokens(value: bytes) -> set[bytes]:
    """Lower-case tokens of a ``Connection`` header value."""
    return {token.strip() for token in value.lower().split(b",") if token.strip()}


def error_response(status: int, kind: str, detail: str, *, close: bool) -> bytes:
    """A complete JSON error response the proxy answers with itself."""
    body = json.dumps({"error": kind, "detail": detail, "status": status}).encode()
    reason = HTTPStatus(status).phrase.encode()
    head = (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"X-ModelMonitor-Error: %s\r\n" % (status, reason, len(body), kind.encode())
    )
    if close:
        head += b"Connection: close\r\n"
    return head + CRLF + body
