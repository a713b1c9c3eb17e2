"""The one record everything passes on: :class:`RequestEvent`, and its batch encoding.

A proxy produces one ``RequestEvent`` per proxied request. Events travel in
:class:`EventBatch` messages (MessagePack, positional fields) so the bus carries
far fewer, smaller messages than events.
"""

from __future__ import annotations

import os
import time
from itertools import count

import msgspec

__all__ = [
    "ERROR_KINDS",
    "EventBatch",
    "EventIdFactory",
    "ProxyStats",
    "RequestEvent",
    "decode_batch",
    "encode_batch",
]

#: Error kinds an event may carry in ``error``; "" means no transport error.
ERROR_KINDS = (
    "upstream_connect",  # refused, DNS failure, TLS handshake failure: 502
    "upstream_timeout",  # no answer in time: 504
    "upstream_reset",  # upstream closed or broke the response mid-way: 502 or truncated body
    "upstream_protocol",  # upstream sent something that is not HTTP/1.x: 502
    "client_disconnect",  # the client went away before the response was complete
    "bad_request",  # the client sent something the proxy could not parse: 400
)


class RequestEvent(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One proxied request. Times are Unix seconds; durations are seconds."""

    id: str
    start: float
    service: str
    method: str
    route: str
    path: str
    status: int
    latency_seconds: float
    ttfb_seconds: float
    request_bytes: int
    response_bytes: int
    error: str = ""
    model: str = ""
    client: str = ""

    @property
    def is_error(self) -> bool:
        """A failed request: a transport error or a 5xx answer."""
        return bool(self.error) or self.status >= 500

    @property
    def status_class(self) -> str:
        """``"2xx"`` .. ``"5xx"``, or ``"err"`` when no status came back."""
        return f"{self.status // 100}xx" if 100 <= self.status < 600 else "err"


class ProxyStats(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A proxy's own state, sent with every batch (and as a heartbeat when idle)."""

    proxy_id: str
    sent_at: float
    buffer_size: int
    buffer_capacity: int
    dropped_total: int
    captured_total: int
    in_flight: dict[str, int] = {}
    bus_state: str = "connected"
    spooled: int = 0
    #: Refusals at the proxy's edge per kind, and ``routes_folded`` (requests past a
    #: service's route cap), since the proxy started.
    edge: dict[str, int] = {}


class EventBatch(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What travels on the bus: a proxy's events and its stats."""

    stats: ProxyStats
    events: list[RequestEvent]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(EventBatch)


def encode_batch(batch: EventBatch) -> bytes:
    """Encode a batch for the bus."""
    return _encoder.encode(batch)


def decode_batch(data: bytes) -> EventBatch:
    """Decode a batch from the bus; raises ``msgspec.DecodeError`` on garbage."""
    return _decoder.decode(data)


class EventIdFactory:
    """Unique, cheap event ids: a random per-process prefix and a counter.

    ``uuid4()`` costs microseconds per call on the hot path; this costs one
    integer increment and a format, and stays unique across proxies and restarts.
    """

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex() + format(int(time.time()) & 0xFFFFFF, "06x")
        self._counter = count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"
