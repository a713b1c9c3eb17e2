"""HTTP/1.1 wire constants and small helpers shared by the client and upstream sides."""

from __future__ import annotations

import enum
import json
from http import HTTPStatus

__all__ = [
    "CONNECTION_UPGRADE",
    "CONTINUE",
    "CRLF",
    "HOST_CHARS",
    "LAST_CHUNK",
    "METHODS",
    "PROTECTED",
    "REQUEST_SPECIAL",
    "RESPONSE_SPECIAL",
    "Forwarded",
    "HeaderAction",
    "canonical_length",
    "chunk_header",
    "connection_tokens",
    "error_response",
    "last_chunk",
    "status_line",
    "transfer_codings",
    "valid_host",
]

CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CONNECTION_UPGRADE = b"Connection: upgrade\r\n"


class HeaderAction(enum.IntEnum):
    """What the proxy does with a header it handles itself (looked up by lower-case name).

    The hot path compares members by identity through module-level aliases.
    """

    HOST = 1  # checked (one, valid), replaced by the upstream's unless preserve_host
    CONNECTION = 2  # read for close/keep-alive and hop-by-hop names, never forwarded
    HOP = 3  # hop-by-hop: dropped
    TRANSFER_ENCODING = 4  # the body is re-framed; codings before ``chunked`` are kept
    EXPECT = 5  # 100-continue is answered by the proxy when the upstream is ready
    FORWARDED_FOR = 6  # the client's chain, extended with the peer's address
    FORWARDED_PROTO = 7  # kept as the first proxy set it
    FORWARDED_HOST = 8  # kept as the first proxy set it
    CONTENT_LENGTH = 9  # validated and forwarded in canonical form
    UPGRADE = 10  # kept only for a protocol switch the Connection header names


class Forwarded(enum.IntFlag):
    """``X-Forwarded-*`` headers a client already sent (the proxy then adds none)."""

    PROTO = 1
    HOST = 2


#: Headers of either direction the proxy handles itself.
RESPONSE_SPECIAL: dict[bytes, HeaderAction] = {
    b"connection": HeaderAction.CONNECTION,
    b"keep-alive": HeaderAction.HOP,
    b"proxy-connection": HeaderAction.HOP,
    b"te": HeaderAction.HOP,
    b"upgrade": HeaderAction.UPGRADE,
    b"transfer-encoding": HeaderAction.TRANSFER_ENCODING,
    b"content-length": HeaderAction.CONTENT_LENGTH,
}

#: Requests add Host, Expect and the X-Forwarded-* headers.
REQUEST_SPECIAL: dict[bytes, HeaderAction] = {
    **RESPONSE_SPECIAL,
    b"host": HeaderAction.HOST,
    b"expect": HeaderAction.EXPECT,
    b"x-forwarded-for": HeaderAction.FORWARDED_FOR,
    b"x-forwarded-proto": HeaderAction.FORWARDED_PROTO,
    b"x-forwarded-host": HeaderAction.FORWARDED_HOST,
}

#: Names a ``Connection`` header may never remove: dropping them would change how
#: the next hop frames the message (request smuggling) or whom it is for.
PROTECTED = frozenset(
    (b"content-length", b"transfer-encoding", b"host", b"x-forwarded-proto", b"x-forwarded-host")
)

#: Bytes a Host value may contain (RFC 3986 reg-name, IP literal, port).
HOST_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+;=%:[]"


def valid_host(value: bytes) -> bool:
    """Whether a ``Host`` value is ``host[:port]`` (no spaces, paths, commas or userinfo)."""
    return not value.translate(None, HOST_CHARS)


def transfer_codings(values: list[bytes]) -> list[bytes]:
    """The lower-case codings of one message's ``Transfer-Encoding`` field lines, in order."""
    return [
        token.strip() for value in values for token in value.lower().split(b",") if token.strip()
    ]


def canonical_length(value: bytes) -> bytes:
    """``0005`` or ``5 `` -> ``5`` (the parser has checked it is a number)."""
    return b"%d" % int(value)


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
    """Lower-case tokens of a ``Connection`` header value, without the protected names."""
    return {token.strip() for token in value.lower().split(b",") if token.strip()} - PROTECTED


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
