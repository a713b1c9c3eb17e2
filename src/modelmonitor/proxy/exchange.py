"""The state of one proxied request/response pair (plain slots, no behaviour)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelmonitor.proxy.client import ClientConnection
    from modelmonitor.proxy.inspect import BodyHook
    from modelmonitor.proxy.service import Service
    from modelmonitor.proxy.tracecontext import Trace
    from modelmonitor.proxy.upstream import UpstreamConnection

__all__ = ["REPLAY_LIMIT", "Exchange", "ReadBlock"]

#: Request bytes kept for a replay on a fresh connection when a pooled one
#: turns out to be dead before answering.
REPLAY_LIMIT = 64 * 1024


class ReadBlock(enum.IntFlag):
    """Reasons to stop reading from a client; reading resumes when none is left."""

    UPSTREAM_FULL = 1  # the upstream socket is not taking the body fast enough
    WAITING = 2  # body buffered while an upstream connection is being opened
    PIPELINE = 4  # a pipelined request waits for the one before it
    SWITCH = 8  # an Upgrade request waits for the upstream's answer


class Exchange:
    """One request: what the client sent, where it is forwarded, what came back."""

    __slots__ = (
        "chunked_request",
        "chunked_response",
        "client",
        "client_ip",
        "close_client",
        "close_delimited",
        "consumer",
        "done",
        "expect_continue",
        "head",
        "head_sent",
        "http10",
        "inspect",
        "is_head",
        "json_prefix",
        "keep_alive",
        "local",
        "method",
        "model",
        "path",
        "pending",
        "pending_bytes",
        "replay",
        "replay_bytes",
        "request_bytes",
        "request_done",
        "response_bytes",
        "retried",
        "service",
        "status",
        "t0",
        "trace",
        "ttfb",
        "upgrade",
        "upstream",
    )

    def __init__(
        self,
        client: ClientConnection,
        service: Service | None,
        method: str,
        path: bytes,
        head: bytes,
        t0: float,
        trace: Trace | None = None,
    ) -> None:
        self.client = client
        self.service = service
        self.method = method
        #: The path as the service sees it (no query); templated when recorded.
        self.path = path
        #: Request line and headers as sent upstream.
        self.head = head
        #: ``perf_counter()`` when the request head was parsed.
        self.t0 = t0
        self.ttfb = -1.0
        self.status = 0
        self.request_bytes = 0
        self.response_bytes = 0
        self.model = ""
        #: Who called (see ``protocols.consumers``) and the client address when a
        #: trusted proxy forwarded the request ("": the peer).
        self.consumer = ""
        self.client_ip = ""
        #: The body hook measuring this exchange (``proxy.inspect``), if any.
        self.inspect: BodyHook | None = None
        #: The proxy's span, when the service propagates W3C trace context.
        self.trace = trace
        self.json_prefix: bytearray | None = None
        self.chunked_request = False
        self.chunked_response = False
        self.close_delimited = False
        self.close_client = False
        self.keep_alive = True
        self.http10 = False
        self.is_head = False
        self.expect_continue = False
        self.request_done = False
        self.head_sent = False
        self.done = False
        self.retried = False
        #: The client asked to switch protocols (``Upgrade``, e.g. WebSocket).
        self.upgrade = False
        #: A complete local answer (404, 400) instead of forwarding.
        self.local: bytes | None = None
        #: Body pieces (already framed) waiting for an upstream connection.
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        #: Everything written to a reused pooled connection, while small enough.
        self.replay: list[bytes] | None = None
        self.replay_bytes = 0
        self.upstream: UpstreamConnection | None = None
