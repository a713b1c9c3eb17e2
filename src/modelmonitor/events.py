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
    "SQL_IS_ERROR",
    "EventBatch",
    "EventIdFactory",
    "PayloadSample",
    "ProxyStats",
    "RequestEvent",
    "decode_batch",
    "encode_batch",
    "is_error",
    "status_class",
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


def is_error(status: int, error: str) -> bool:
    """The one rule for a failed request: a transport error or a 5xx answer."""
    return bool(error) or status >= 500


#: :func:`is_error` over the stores' ``status`` and ``error`` columns.
SQL_IS_ERROR = "(status >= 500 OR error <> '')"


def status_class(status: int) -> str:
    """``"2xx"`` .. ``"5xx"``, or ``"err"`` when no status came back."""
    return f"{status // 100}xx" if 100 <= status < 600 else "err"


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
    # Model-aware fields (issue 13). Appended with defaults so older batches still decode.
    #: Who called: a configured header's value, a key's label, or a short keyed hash of an
    #: API key (never the key itself).
    consumer: str = ""
    model_version: str = ""
    #: The serving protocol recognised ("openai", "kserve-v2", ...); "" when none.
    protocol: str = ""
    #: What was asked of the model ("chat", "completion", "embedding", "predict", ...).
    task: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: True when the token counts were estimated (a stream with no ``usage``).
    tokens_estimated: bool = False
    #: Time to the first content token of a streamed LLM answer; 0.0 when not measured.
    ttft_seconds: float = 0.0
    #: "stop", "length", "content_filter", "tool_calls", ... or "".
    finish_reason: str = ""
    streamed: bool = False
    cost_usd: float = 0.0
    # W3C trace context (hex), set when the service propagates traces: the proxy's span
    # is ``span_id`` in trace ``trace_id``, a child of the caller's ``parent_span_id``.
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""

    @property
    def is_error(self) -> bool:
        """A failed request (see :func:`is_error`)."""
        return is_error(self.status, self.error)

    @property
    def status_class(self) -> str:
        """``"2xx"`` .. ``"5xx"``, or ``"err"`` (see :func:`status_class`)."""
        return status_class(self.status)


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


class PayloadSample(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """The first bytes of a sampled request's and response's bodies (opt-in per service).

    Unredacted: the worker redacts before anything is stored or logged.
    """

    event_id: str
    request: bytes
    response: bytes
    request_truncated: bool = False
    response_truncated: bool = False


class EventBatch(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What travels on the bus: a proxy's events and its stats (and sampled bodies)."""

    stats: ProxyStats
    events: list[RequestEvent]
    #: Added after the first release: batches without it decode with none.
    samples: list[PayloadSample] = []


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
