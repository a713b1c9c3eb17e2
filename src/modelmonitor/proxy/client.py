"""The client side: parse requests, check them at the edge, forward them upstream,
answer, record one event each."""

from __future__ import annotations

import asyncio
from collections import deque
from time import monotonic, perf_counter, time
from typing import TYPE_CHECKING, NamedTuple

import httptools
from msgspec.structs import replace

from modelmonitor.events import RequestEvent
from modelmonitor.proxy.edge import Refusal, Reject
from modelmonitor.proxy.exchange import Exchange, ReadBlock
from modelmonitor.proxy.http import (
    CONNECTION_UPGRADE,
    CRLF,
    HOST_CHARS,
    LAST_CHUNK,
    METHODS,
    REQUEST_SPECIAL,
    Forwarded,
    HeaderAction,
    canonical_length,
    chunk_header,
    connection_tokens,
    error_response,
    last_chunk,
    transfer_codings,
    without_fields,
)
from modelmonitor.proxy.model import JSON_PREFIX_BYTES, json_field
from modelmonitor.proxy.routes import MAX_CACHED_PATH, OTHER
from modelmonitor.proxy.tracecontext import TRACEPARENT, continue_trace, with_traceparent
from modelmonitor.proxy.tunnel import Tunnel

if TYPE_CHECKING:
    from modelmonitor.proxy.service import Listener, Service

__all__ = ["LINGER_SECONDS", "PENDING_LIMIT", "ClientConnection"]

#: Body bytes buffered per request while no upstream connection is ready.
PENDING_LIMIT = 256 * 1024
#: How long a refused connection keeps draining the client's bytes before closing.
LINGER_SECONDS = 2.0

# Module-level aliases: the hot path compares header actions by identity, and
# tests read-block reasons as plain ints (IntFlag arithmetic runs in Python).
_HOST = HeaderAction.HOST
_CONTENT_LENGTH = HeaderAction.CONTENT_LENGTH
_CONNECTION = HeaderAction.CONNECTION
_HOP = HeaderAction.HOP
_TRANSFER_ENCODING = HeaderAction.TRANSFER_ENCODING
_EXPECT = HeaderAction.EXPECT
_FORWARDED_FOR = HeaderAction.FORWARDED_FOR
_UPGRADE = HeaderAction.UPGRADE
_SEEN = {
    HeaderAction.FORWARDED_PROTO: int(Forwarded.PROTO),
    HeaderAction.FORWARDED_HOST: int(Forwarded.HOST),
}
_SEEN_PROTO = int(Forwarded.PROTO)
_SEEN_HOST = int(Forwarded.HOST)
_RESUMABLE = int(ReadBlock.UPSTREAM_FULL | ReadBlock.WAITING)

_HEAD = b"HEAD"
_NO_ROUTE = ("", "")
_CONNECTION_OPTIONS = frozenset((b"close", b"keep-alive"))
_NO_LIST: list[bytes] = []
_CHUNKED = [b"chunked"]
_CHUNKED_LINE = b"Transfer-Encoding: chunked\r\n"
_VERSIONS = {"1.1": 0, "1.0": 1}
#: Words of the parser's messages that mean the body's framing is at fault.
_FRAMING_WORDS = ("Content-Length", "Transfer-Encoding", "chunk")


class _Rare(NamedTuple):
    """What rarely sent request headers asked for (collected only when one was seen)."""

    parts: list[bytes]  # the forwarded headers, less those Connection named
    transfer_encoding: bytes | None  # the line to forward (codings kept)
    expect: bool
    upgrade: bytes | None
    model: str
    forwarded_for: list[bytes]
    forwarded_seen: int
    consumer: str  # see protocols.consumers
    client_ip: str  # "" unless a trusted proxy forwarded the request

    def apply(self, exchange: Exchange) -> None:
        """Set what these headers asked for on the exchange they belong to."""
        exchange.upgrade = self.upgrade is not None
        exchange.chunked_request = self.transfer_encoding is not None
        exchange.expect_continue = self.expect
        exchange.model = self.model
        exchange.consumer = self.consumer
        exchange.client_ip = self.client_ip


def _origin_form(url: bytes) -> bytes:
    """``http://host/p?q`` -> ``/p?q`` (absolute-form targets from proxy-aware clients)."""
    if url.startswith((b"http://", b"https://")):
        slash = url.find(b"/", url.find(b"//") + 2)
        return url[slash:] if slash >= 0 else b"/"
    return url


def _parser_refusal(exc: httptools.HttpParserError) -> tuple[Refusal, int, str]:
    """The kind and status of what the parser refused."""
    detail = str(exc) or "malformed request"
    if "HTTP version" in detail:
        return Refusal.BAD_VERSION, 505, detail
    if any(word in detail for word in _FRAMING_WORDS):
        return Refusal.BAD_FRAMING, 400, detail
    return Refusal.BAD_REQUEST, 400, detail


class ClientConnection(asyncio.Protocol):
    """One client connection: requests are answered in order (pipelining is queued)."""

    __slots__ = (
        "activity",
        "awaiting_head",
        "closed",
        "codings",
        "current",
        "expect",
        "forwarded_for",
        "forwarded_seen",
        "has_body",
        "head_size",
        "head_started",
        "held",
        "hop",
        "host",
        "http10",
        "linger_until",
        "listener",
        "models",
        "parser",
        "parts",
        "paused_at",
        "peer",
        "peer_bytes",
        "queue",
        "rare",
        "read_block",
        "reading",
        "seen_activity",
        "stop_reading",
        "transport",
        "upgrade",
        "url",
        "write_paused",
    )

    transport: asyncio.Transport
    # The request head being parsed: forwarded parts and the special headers seen.
    url: bytes
    parts: list[bytes]
    host: bytes | None
    has_body: bool
    rare: bool  # a rarely seen header needs work at the end of the head
    codings: list[bytes]  # Transfer-Encoding field values
    expect: bool
    upgrade: bytes | None
    forwarded_for: list[bytes]
    forwarded_seen: int
    hop: set[bytes]
    models: dict[bytes, bytes]

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.parser = httptools.HttpRequestParser(self)
        self._reset_head()
        #: Bytes the client sent after an Upgrade request, for the new protocol.
        self.held = b""
        self.http10 = -1  # unknown until the first request
        self.awaiting_head = True
        #: Bytes received since the last body piece: the head being received, or chunk
        #: lines and trailer fields (bounded like a head). ``head_started`` is when the
        #: server's sweeper first saw the head being received (``monotonic()``, 0 when
        #: not yet): stamping it there keeps a clock call off every request.
        self.head_size = 0
        self.head_started = 0.0
        #: Bumped on every read; the server closes connections idle for too long.
        self.activity = 0
        self.seen_activity = -1
        #: The exchange being answered, and the one whose request is being read.
        self.current: Exchange | None = None
        self.reading: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.read_block = 0
        self.write_paused = False
        #: ``monotonic()`` when writing last paused (the client stopped reading).
        self.paused_at = 0.0
        self.closed = False
        self.stop_reading = False
        #: ``monotonic()`` deadline of a lingering close (0: none).
        self.linger_until = 0.0
        self.peer = ""
        self.peer_bytes = b""

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.peer = str(peer[0])
            self.peer_bytes = self.peer.encode()
        self.listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.connections.discard(self)
        current, self.current = self.current, None
        if current is not None:
            self._abandon(current)
        while self.queue:
            self._abandon(self.queue.popleft())

    def eof_received(self) -> bool:
        # Like nginx: a client that closes its side while waiting has gone away
        # (a half-close cannot be told from a close); connection_lost records it.
        return False

    def data_received(self, data: bytes) -> None:
        if self.stop_reading:
            return
        self.activity += 1
        self.head_size += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            if not isinstance(refusal, Reject):
                raise
            self._reject(refusal.kind, refusal.status, refusal.detail)
            return
        except httptools.HttpParserUpgrade as exc:
            self._upgrade_requested(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            self._reject(*_parser_refusal(exc))
            return
        if self.head_size > self.listener.max_head_bytes:
            what = "request head" if self.awaiting_head else "chunk lines or trailer fields"
            self._reject(Refusal.HEAD_TOO_LARGE, 431, f"{what} too large")

    def pause_writing(self) -> None:
        self.write_paused = True
        self.paused_at = monotonic()
        exchange = self.current
        if exchange is not None:
            upstream = exchange.upstream
            if upstream is not None and not upstream.read_paused:
                upstream.read_paused = True
                upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        exchange = self.current
        if exchange is not None:
            upstream = exchange.upstream
            if upstream is not None and upstream.read_paused:
                upstream.read_paused = False
                upstream.transport.resume_reading()

    # -- request parsing (httptools callbacks) -----------------------------

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Headers are forwarded as they are parsed; only the special ones are kept.
        lower = name.lower()
        action = REQUEST_SPECIAL.get(lower)
        if action is None:
            self.parts += (name, b": ", value, CRLF)
            if lower in self.listener.model_headers:
                self.rare = True
                self.models[lower] = value
        elif action is _HOST:
            if self.host is not None:
                raise Reject(Refusal.BAD_HOST, 400, "more than one Host header")
            if value.translate(None, HOST_CHARS):  # inline valid_host(): once per request
                raise Reject(Refusal.BAD_HOST, 400, "invalid Host header")
            self.host = value
        elif action is _CONTENT_LENGTH:
            self.has_body = value != b"0"
            if not value.isdigit() or (value[0] == 48 and len(value) > 1):
                value = canonical_length(value)  # "0005" -> "5": one spelling downstream
            self.parts += (name, b": ", value, CRLF)
        elif action is _CONNECTION:
            lowered = value.lower()
            if lowered != b"keep-alive" and lowered != b"close":
                extra = connection_tokens(lowered) - _CONNECTION_OPTIONS
                if extra:
                    self.rare = True
                    self.hop |= extra
        elif action is not _HOP:
            self._rare_header(action, name, value)

    def _rare_header(self, action: HeaderAction, name: bytes, value: bytes) -> None:
        self.rare = True
        if action is _TRANSFER_ENCODING:
            self.codings.append(value)
            self.has_body = True
        elif action is _EXPECT:
            self.expect = value.lower() == b"100-continue"
        elif action is _FORWARDED_FOR:
            self.forwarded_for.append(value)
        elif action is _UPGRADE:
            self.upgrade = value
        else:  # X-Forwarded-Proto / -Host: kept as the first proxy set them
            self.parts += (name, b": ", value, CRLF)
            self.forwarded_seen |= _SEEN[action]

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        listener = self.listener
        url = self.url
        if (
            self.head_size > listener.max_head_bytes
            or len(url) > listener.max_url_bytes
            or len(self.parts) > listener.max_parts
            or self.host is None
            or self.http10 < 0
        ):
            self._check_head(url)
        parts, host, has_body = self.parts, self.host, self.has_body
        self.url = b""
        self.parts = [b"", b" ", b"", b" HTTP/1.1\r\n", b""]
        self.host = None
        self.has_body = False
        self.head_size = 0
        self.head_started = 0.0
        if listener.prefixed or url[:1] != b"/":
            service, url, path = self._route(url)
        else:  # inline fast path of _route: one service on this port, origin-form target
            query = url.find(b"?")
            service, path = listener.default, url if query < 0 else url[:query]
        incoming_trace = self.models.get(TRACEPARENT) if self.rare else None
        rare = self._take_rare(service, parts) if self.rare else None
        if service is None:
            listener.unrouted_total += 1  # no service to record it for: counted here
            self._answer_locally(404, "no_service", "no service is configured for this path")
            return
        method_bytes = self.parser.get_method()
        method = METHODS.get(method_bytes) or method_bytes.decode("latin-1")
        head = self._upstream_head(service, method_bytes, url, parts, host, rare)
        trace = continue_trace(incoming_trace) if service.propagate_trace else None
        exchange = Exchange(
            self, service, method, path, with_traceparent(head, trace), perf_counter(), trace
        )
        if rare is not None:
            rare.apply(exchange)
        if service.hooks is not None:
            exchange.inspect = service.hooks(method, path.decode("utf-8", "replace"), exchange.t0)
        if has_body and service.json_field and not exchange.model:
            exchange.json_prefix = bytearray()
        exchange.close_client = not self.parser.should_keep_alive()
        exchange.is_head = method_bytes == _HEAD
        exchange.http10 = self.http10 == 1
        service.in_flight += 1
        # Start it now, or queue it behind the one being answered (inline: per request).
        self.reading = exchange
        if self.current is None:
            self.current = exchange
            connection = service.upstream.acquire()
            if connection is not None:
                connection.attach(exchange)
            else:
                service.upstream.connect(exchange)
        else:
            self.queue.append(exchange)
            self.block(ReadBlock.PIPELINE)

    def _check_head(self, url: bytes) -> None:
        """The checks an ordinary request head never needs (raises :class:`Reject`)."""
        listener = self.listener
        limit = listener.max_head_bytes
        if self.head_size > limit and len(url) + sum(map(len, self.parts)) > limit:
            raise Reject(Refusal.HEAD_TOO_LARGE, 431, f"request head over {limit} bytes")
        if len(url) > listener.max_url_bytes:
            detail = f"request target over {listener.max_url_bytes} bytes"
            raise Reject(Refusal.URL_TOO_LONG, 414, detail)
        if len(self.parts) > listener.max_parts:
            detail = f"more than {listener.max_headers} header fields"
            raise Reject(Refusal.TOO_MANY_HEADERS, 431, detail)
        if self.http10 < 0:  # a client does not change versions mid-connection: ask once
            version = self.parser.get_http_version()
            if version not in _VERSIONS:
                raise Reject(Refusal.BAD_VERSION, 505, f"HTTP/{version} is not supported")
            self.http10 = _VERSIONS[version]
        if self.host is None and not self.http10:
            raise Reject(Refusal.BAD_HOST, 400, "HTTP/1.1 request without a Host header")

    def _route(self, url: bytes) -> tuple[Service | None, bytes, bytes]:
        """The service for a request target, and the target and path it forwards."""
        if url[:1] != b"/":
            url = _origin_form(url)
        query = url.find(b"?")
        path = url if query < 0 else url[:query]
        listener = self.listener
        if not listener.prefixed:
            return listener.default, url, path
        service, strip = listener.route(path)
        if strip:
            url = url[strip:]
            path = path[strip:]
            if url[:1] != b"/":
                url = b"/" + url
                path = b"/" + path
        return service, url, path

    def _take_rare(self, service: Service | None, parts: list[bytes]) -> _Rare:
        """Collect (and reset) what the rarely sent headers of this head asked for."""
        self.rare = False
        hop, self.hop = self.hop, set()
        if hop:  # Connection named more hop-by-hop headers: drop them too
            parts = without_fields(parts, hop, 5)
        codings, self.codings = self.codings, []
        transfer_encoding = None
        if codings:
            if self.http10:  # RFC 9112 6.1: the framing of such a message is faulty
                raise Reject(Refusal.BAD_FRAMING, 400, "Transfer-Encoding in HTTP/1.0")
            tokens = transfer_codings(codings)
            if tokens[-1:] != _CHUNKED:  # RFC 9112 6.3: the length cannot be known
                raise Reject(Refusal.BAD_FRAMING, 400, "the final transfer coding is not chunked")
            # Codings before chunked (gzip, ...) are the upstream's to undo: kept.
            transfer_encoding = (
                _CHUNKED_LINE
                if tokens == _CHUNKED
                else b"Transfer-Encoding: " + b", ".join(tokens) + CRLF
            )
        upgrade, self.upgrade = self.upgrade, None
        if upgrade is not None and (b"upgrade" not in hop or upgrade.lower().startswith(b"h2c")):
            # Upgrade only counts when Connection names it; h2c is never passed on
            # (HTTP/2 in a tunnel would hide every request from monitoring).
            upgrade = None
        models, self.models = self.models, {}
        model = ""
        if service is not None and service.model_header in models:
            model = models[service.model_header].decode("latin-1")
        expect, self.expect = self.expect, False
        forwarded_for, self.forwarded_for = self.forwarded_for, []
        seen, self.forwarded_seen = self.forwarded_seen, 0
        consumer = client_ip = ""
        if service is not None and service.consumers is not None:
            consumer, client_ip = service.consumers.identify(models, self.peer, forwarded_for)
        return _Rare(
            parts,
            transfer_encoding,
            expect,
            upgrade,
            model,
            forwarded_for,
            seen,
            consumer,
            client_ip,
        )

    def _upstream_head(
        self,
        service: Service,
        method: bytes,
        url: bytes,
        parts: list[bytes],
        host: bytes | None,
        rare: _Rare | None,
    ) -> bytes:
        """The request line and headers as the upstream will see them."""
        if rare is not None:
            parts = rare.parts
        upstream = service.upstream
        parts[0] = method
        parts[2] = upstream.base_path + url if upstream.base_path else url
        if service.preserve_host and host is not None:
            parts[4] = b"Host: " + host + CRLF
        else:
            parts[4] = upstream.host_header
        forwarded_for = rare.forwarded_for if rare is not None else _NO_LIST
        if service.forwarded:
            peer = self.peer_bytes
            if forwarded_for:
                peer = b", ".join(forwarded_for) + b", " + peer
            parts += (b"X-Forwarded-For: ", peer, CRLF)
            seen = rare.forwarded_seen if rare is not None else 0
            if not seen & _SEEN_PROTO:
                parts.append(self.listener.proto_line)
            if not seen & _SEEN_HOST and host is not None:
                parts += (b"X-Forwarded-Host: ", host, CRLF)
        elif forwarded_for:
            parts += (b"X-Forwarded-For: ", b", ".join(forwarded_for), CRLF)
        if rare is not None:
            if rare.transfer_encoding is not None:
                parts.append(rare.transfer_encoding)
            if rare.upgrade is not None:
                parts += (CONNECTION_UPGRADE, b"Upgrade: ", rare.upgrade, CRLF)
        parts.append(CRLF)
        return b"".join(parts)

    def on_body(self, body: bytes) -> None:
        self.head_size = 0
        exchange = self.reading
        if exchange is None or exchange.done:
            return
        exchange.request_bytes += len(body)
        if exchange.inspect is not None:
            exchange.inspect.request_body(body)
        prefix = exchange.json_prefix
        if prefix is not None and len(prefix) < JSON_PREFIX_BYTES:
            prefix += body[: JSON_PREFIX_BYTES - len(prefix)]
        if exchange.chunked_request:
            body = chunk_header(len(body)) + body + CRLF
        upstream = exchange.upstream
        if upstream is not None:
            upstream.send(exchange, body)
        else:
            exchange.pending.append(body)
            exchange.pending_bytes += len(body)
            if exchange.pending_bytes > PENDING_LIMIT:
                self.block(ReadBlock.WAITING)

    def on_message_complete(self) -> None:
        self.awaiting_head = True
        self.head_size = 0
        end = LAST_CHUNK
        if len(self.parts) > 5 or self.rare or self.host is not None:  # trailer fields
            end = self._take_trailers()
        exchange = self.reading
        if exchange is None:
            return
        self.reading = None
        exchange.request_done = True
        if exchange.done or not exchange.chunked_request:
            return
        upstream = exchange.upstream
        if upstream is not None:
            upstream.send(exchange, end)
        else:
            exchange.pending.append(end)
            exchange.pending_bytes += len(end)

    def _take_trailers(self) -> bytes:
        """Forward the ordinary trailer fields, and leave nothing behind for the next
        request's head."""
        trailers = self.parts[5:]
        self._reset_head()
        return last_chunk(trailers) if trailers else LAST_CHUNK

    def _reset_head(self) -> None:
        """A fresh request head: the forwarded parts and the special headers seen.

        ``on_headers_complete`` resets the common fields inline (hot path) and
        ``_take_rare`` the rare ones.
        """
        self.url = b""
        self.parts = [b"", b" ", b"", b" HTTP/1.1\r\n", b""]
        self.host = None
        self.has_body = self.rare = self.expect = False
        self.codings = []
        self.upgrade = None
        self.forwarded_for = []
        self.forwarded_seen = 0
        self.hop = set()
        self.models = {}

    def _upgrade_requested(self, rest: bytes) -> None:
        """No more HTTP on this connection. An Upgrade request (WebSocket) waits for
        the upstream: a 101 turns the connection into a tunnel, anything else is
        answered and the connection closed (so is CONNECT, not proxied)."""
        self.stop_reading = True
        last = self.queue[-1] if self.queue else self.current
        if last is not None:
            last.close_client = True
            if last.upgrade:
                self.held = rest
                self.block(ReadBlock.SWITCH)

    # -- exchange lifecycle ------------------------------------------------
    # An exchange starts at the end of ``on_headers_complete`` (or in ``_answer_locally``)
    # and ends, exactly once, in ``finish`` (also reached from ``fail``,
    # ``switch_protocols``, ``_abandon`` and ``_reject``).

    def _begin(self, exchange: Exchange) -> None:
        """Start a queued exchange: answer it locally, or forward it."""
        local = exchange.local
        if local is not None:
            exchange.status = int(local[9:12])
            self.write(local)
            self.finish(exchange, "")
            return
        service = exchange.service
        assert service is not None
        connection = service.upstream.acquire()
        if connection is not None:
            connection.attach(exchange)
        else:
            service.upstream.connect(exchange)

    def _answer_locally(self, status: int, kind: str, detail: str) -> None:
        """Answer the request being read with a proxy error, in its turn, then close."""
        exchange = Exchange(self, None, "", b"", b"", 0.0)
        exchange.close_client = True
        exchange.local = error_response(status, kind, detail, close=True)
        self.reading = exchange
        if self.current is None:
            self.current = exchange
            self._begin(exchange)
        else:
            self.queue.append(exchange)
            self.block(ReadBlock.PIPELINE)

    def fail(self, exchange: Exchange, status: int, kind: str, detail: str) -> None:
        """End ``exchange`` with a proxy error: a JSON answer, or a cut-off response."""
        if exchange.done:
            return
        upstream = exchange.upstream
        if upstream is not None:
            upstream.detach()
        if exchange.head_sent:
            exchange.close_client = True  # the client sees a truncated body
        else:
            close = exchange.close_client or not exchange.request_done or exchange.http10
            exchange.close_client = close
            exchange.status = status
            self.write(error_response(status, kind, detail, close=close))
        self.finish(exchange, kind)

    def finish(self, exchange: Exchange, error: str) -> None:
        """``exchange`` is over (answered, given up, switched or abandoned): mark it done
        and record its event, once; if it was being answered, move on to the next."""
        if exchange.done:
            return
        exchange.done = True
        service = exchange.service
        if service is not None:  # local answers (404, refusals) are counted, not recorded
            service.in_flight -= 1
            self._record(exchange, service, error)
        if self.current is not exchange:
            return
        self.current = None
        if self.read_block & _RESUMABLE:
            self.unblock(ReadBlock.UPSTREAM_FULL | ReadBlock.WAITING)
        if exchange.close_client or self.closed or self.listener.draining:
            self.close()
            return
        queue = self.queue
        if queue:
            following = queue.popleft()
            if not queue:
                self.unblock(ReadBlock.PIPELINE)
            self.current = following
            self._begin(following)

    def switch_protocols(
        self, exchange: Exchange, upstream: asyncio.Transport, first_bytes: bytes
    ) -> None:
        """The upstream accepted the Upgrade (its 101 is written): join the two
        connections in a tunnel. The handshake is recorded as the request's event;
        what flows afterwards is another protocol and is relayed unmeasured."""
        if exchange.done or self.closed:
            upstream.close()
            return
        if first_bytes:
            self.transport.write(first_bytes)
        held, self.held = self.held, b""
        if held:
            upstream.write(held)
        self.closed = True  # the tunnel owns the transport from here
        self.listener.connections.discard(self)
        self.current = None
        self.finish(exchange, "")
        Tunnel(self.transport, upstream, self.listener.tunnels).start()

    def _abandon(self, exchange: Exchange) -> None:
        """The client went away before ``exchange`` was answered."""
        if exchange.done:
            return
        upstream = exchange.upstream
        if upstream is not None:
            upstream.detach()
        if not exchange.status:
            exchange.status = 499
        self.finish(exchange, "client_disconnect")  # current is None by now: no next

    def _record(self, exchange: Exchange, service: Service, error: str) -> None:
        model = exchange.model
        if not model and exchange.json_prefix:
            model = json_field(bytes(exchange.json_prefix), service.json_field)
        listener = self.listener
        now = perf_counter()
        path = exchange.path.decode("utf-8", "replace")
        routes = service.routes
        # The route, and the path with emails and keys masked (cached unless long).
        route, path = (
            (routes.describe if len(path) <= MAX_CACHED_PATH else routes.describe_uncached)(path)
            if path
            else _NO_ROUTE
        )
        if route is OTHER:
            routes.folded += 1
        event = RequestEvent(
            listener.ids(),
            time() - (now - exchange.t0),
            service.name,
            exchange.method,
            route,
            path,
            exchange.status,
            now - exchange.t0,
            exchange.ttfb if exchange.ttfb > 0 else 0.0,
            exchange.request_bytes,
            exchange.response_bytes,
            error,
            model,
            exchange.client_ip or self.peer,
            exchange.consumer,
        )
        if exchange.inspect is not None:
            event = exchange.inspect.finish(event)
        if exchange.trace is not None:
            trace = exchange.trace
            event = replace(
                event,
                trace_id=trace.trace_id,
                span_id=trace.span_id,
                parent_span_id=trace.parent_span_id,
            )
        listener.capture.append(event)

    def _reject(self, kind: Refusal, status: int, detail: str) -> None:
        """Refuse what the client is sending: count it, answer in turn, then close."""
        self.stop_reading = True
        self.listener.edge.add(kind)
        exchange = self.reading
        if exchange is None or exchange.done:
            self._answer_locally(status, kind.value, detail)
            return
        # The head was forwarded and the body turned out broken: that request fails.
        exchange.close_client = True
        if exchange is self.current:
            self.fail(exchange, status, kind.value, detail)
            return
        self.queue.remove(exchange)  # a pipelined request that can never complete
        exchange.status = status
        self.finish(exchange, kind.value)  # not the current one: nothing moves on
        last = self.queue[-1] if self.queue else self.current
        if last is not None:
            last.close_client = True

    def timed_out(self, kind: Refusal, status: int, detail: str) -> None:
        """The server's sweeper gave up on this connection (see ``ProxyServer``)."""
        if kind is Refusal.WRITE_TIMEOUT:
            self.listener.edge.add(kind)
            self.transport.abort()  # nothing more can be written: cut it off
            return
        self._reject(kind, status, detail)

    # -- transport helpers -------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        transport = self.transport
        if self.stop_reading and transport.can_write_eof():
            # The client may still be sending what was refused: end our side after
            # the answer and keep reading (and discarding) for a moment, so its unread
            # bytes do not become a reset that destroys the answer (nginx's lingering
            # close). The server's sweeper closes the connection at ``linger_until``.
            transport.write_eof()
            transport.resume_reading()
            self.linger_until = monotonic() + LINGER_SECONDS
        else:
            transport.close()

    def block(self, reason: ReadBlock) -> None:
        """Stop reading from the client for ``reason``."""
        if not self.read_block and not self.closed:
            self.transport.pause_reading()
        self.read_block |= int(reason)

    def unblock(self, reason: ReadBlock) -> None:
        """``reason`` is gone; resume reading when no other reason is left."""
        flag = int(reason)
        if self.read_block & flag:
            self.read_block &= ~flag
            if not self.read_block and not self.closed:
                self.transport.resume_reading()
