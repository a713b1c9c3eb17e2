"""The client side: parse requests, forward them upstream, answer, record one event each."""

from __future__ import annotations

import asyncio
from collections import deque
from time import perf_counter, time
from typing import TYPE_CHECKING

import httptools

from modelmonitor.events import RequestEvent
from modelmonitor.proxy.exchange import Exchange
from modelmonitor.proxy.http import (
    CONNECTION_UPGRADE,
    CRLF,
    LAST_CHUNK,
    METHODS,
    REQUEST_SPECIAL,
    chunk_header,
    connection_tokens,
    error_response,
    last_chunk,
)
from modelmonitor.proxy.model import JSON_PREFIX_BYTES, json_field
from modelmonitor.proxy.tunnel import Tunnel

if TYPE_CHECKING:
    from modelmonitor.proxy.service import Listener

__all__ = ["ClientConnection"]

# Reasons to stop reading from the client (bit flags; reading resumes when none is left).
BLOCK_UPSTREAM_FULL = 1  # the upstream socket is not taking the body fast enough
BLOCK_WAITING = 2  # body buffered while an upstream connection is being opened
BLOCK_PIPELINE = 4  # a pipelined request waits for the one before it
BLOCK_SWITCH = 8  # an Upgrade request waits for the upstream's answer

#: Body bytes buffered per request while no upstream connection is ready.
PENDING_LIMIT = 256 * 1024
#: Largest request line plus headers accepted (431 beyond).
MAX_HEAD_BYTES = 64 * 1024
_HEAD = b"HEAD"
_CONNECTION_OPTIONS = frozenset((b"close", b"keep-alive"))
_NO_LIST: list[bytes] = []


class _HeadTooLarge(Exception):
    """Raised inside the parser to stop at an oversized request head."""


def _origin_form(url: bytes) -> bytes:
    """``http://host/p?q`` -> ``/p?q`` (absolute-form targets from proxy-aware clients)."""
    if url.startswith((b"http://", b"https://")):
        slash = url.find(b"/", url.find(b"//") + 2)
        return url[slash:] if slash >= 0 else b"/"
    return url


class ClientConnection(asyncio.Protocol):
    """One client connection: requests are answered in order (pipelining is queued)."""

    __slots__ = (
        "activity",
        "awaiting_head",
        "chunked",
        "closed",
        "current",
        "expect",
        "forwarded_for",
        "forwarded_seen",
        "has_body",
        "head_size",
        "held",
        "hop",
        "host",
        "http10",
        "listener",
        "models",
        "parser",
        "parts",
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
    chunked: bool
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
        self.head_size = 0
        #: Bumped on every read; the server closes connections idle for too long.
        self.activity = 0
        self.seen_activity = -1
        #: The exchange being answered, and the one whose request is being read.
        self.current: Exchange | None = None
        self.reading: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.read_block = 0
        self.write_paused = False
        self.closed = False
        self.stop_reading = False
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
        if self.awaiting_head:
            self.head_size += len(data)
        try:
            self.parser.feed_data(data)
            if self.awaiting_head and self.head_size > MAX_HEAD_BYTES:
                self._bad_request("request head too large", 431)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._bad_request("request head too large", 431)
            else:
                raise
        except httptools.HttpParserUpgrade as exc:
            # No more HTTP on this connection. An Upgrade request (WebSocket) waits
            # for the upstream: a 101 turns the connection into a tunnel, anything
            # else is answered and the connection closed (so is CONNECT, not proxied).
            self.stop_reading = True
            last = self.queue[-1] if self.queue else self.current
            if last is not None:
                last.close_client = True
                if last.upgrade:
                    self.held = data[exc.args[0] :]
                    self.block(BLOCK_SWITCH)
        except httptools.HttpParserError as exc:
            self._bad_request(str(exc) or "malformed request")

    def pause_writing(self) -> None:
        self.write_paused = True
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
        elif action == 1:
            self.host = value
        elif action == 9:
            self.has_body = value != b"0"
            self.parts += (name, b": ", value, CRLF)
        elif action == 2:
            lowered = value.lower()
            if lowered != b"keep-alive" and lowered != b"close":
                extra = connection_tokens(lowered) - _CONNECTION_OPTIONS
                if extra:
                    self.rare = True
                    self.hop |= extra
        elif action != 3:
            self.rare = True
            if action == 4:
                self.chunked = self.has_body = True
            elif action == 5:
                self.expect = value.lower() == b"100-continue"
            elif action == 6:
                self.forwarded_for.append(value)
            elif action == 10:
                self.upgrade = value
            else:  # X-Forwarded-Proto / -Host: kept as the first proxy set them
                self.parts += (name, b": ", value, CRLF)
                self.forwarded_seen |= action

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        if self.head_size > MAX_HEAD_BYTES and (
            len(self.url) + sum(map(len, self.parts)) > MAX_HEAD_BYTES
        ):
            raise _HeadTooLarge
        self.head_size = 0
        url = self.url
        self.url = b""
        parts = self.parts
        self.parts = [b"", b" ", b"", b" HTTP/1.1\r\n", b""]
        host = self.host
        self.host = None
        has_body = self.has_body
        self.has_body = False
        parser = self.parser
        method_bytes = parser.get_method()
        method = METHODS.get(method_bytes) or method_bytes.decode("latin-1")
        if url[:1] != b"/":
            url = _origin_form(url)
        query = url.find(b"?")
        path = url if query < 0 else url[:query]
        listener = self.listener
        if listener.prefixed:
            service, strip = listener.route(path)
        else:
            service, strip = listener.default, 0
        model = consumer = client_ip = ""
        chunked = expect = False
        upgrade = None
        if self.rare:
            self.rare = False
            chunked, expect = self.chunked, self.expect
            self.chunked = self.expect = False
            forwarded_for, self.forwarded_for = self.forwarded_for, []
            forwarded_seen, self.forwarded_seen = self.forwarded_seen, 0
            hop, self.hop = self.hop, set()
            models, self.models = self.models, {}
            if service is not None:
                if service.model_header in models:
                    model = models[service.model_header].decode("latin-1")
                if service.consumers is not None:
                    consumer, client_ip = service.consumers.identify(
                        models, self.peer, forwarded_for
                    )
            upgrade, self.upgrade = self.upgrade, None
            if hop:  # Connection named more hop-by-hop headers: drop them too
                kept = parts[:5]
                for index in range(5, len(parts), 4):
                    if parts[index].lower() not in hop:
                        kept += parts[index : index + 4]
                parts = kept
            if upgrade is not None and (
                b"upgrade" not in hop or upgrade.lower().startswith(b"h2c")
            ):
                # Upgrade only counts when Connection names it; h2c is never passed on
                # (HTTP/2 in a tunnel would hide every request from monitoring).
                upgrade = None
        else:
            forwarded_for = _NO_LIST
            forwarded_seen = 0
        if service is None:
            listener.unrouted_total += 1  # no service to record it for: counted here
            exchange = Exchange(self, None, method, b"", b"", perf_counter())
            exchange.close_client = True
            exchange.local = error_response(
                404, "no_service", "no service is configured for this path", close=True
            )
            self._dispatch(exchange)
            return
        if strip:
            url = url[strip:]
            path = path[strip:]
            if url[:1] != b"/":
                url = b"/" + url
                path = b"/" + path
        base = service.upstream.base_path
        parts[0] = method_bytes
        parts[2] = base + url if base else url
        if service.preserve_host and host is not None:
            parts[4] = b"Host: " + host + CRLF
        else:
            parts[4] = service.upstream.host_header
        if service.forwarded:
            peer = self.peer_bytes
            if forwarded_for:
                peer = b", ".join(forwarded_for) + b", " + peer
            parts += (b"X-Forwarded-For: ", peer, CRLF)
            if not forwarded_seen & 7:
                parts.append(listener.proto_line)
            if not forwarded_seen & 8 and host is not None:
                parts += (b"X-Forwarded-Host: ", host, CRLF)
        elif forwarded_for:
            parts += (b"X-Forwarded-For: ", b", ".join(forwarded_for), CRLF)
        if chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        if upgrade is not None:
            parts += (CONNECTION_UPGRADE, b"Upgrade: ", upgrade, CRLF)
        parts.append(CRLF)
        exchange = Exchange(self, service, method, path, b"".join(parts), perf_counter())
        if upgrade is not None:
            exchange.upgrade = True
        if consumer:
            exchange.consumer = consumer
        if client_ip:
            exchange.client_ip = client_ip
        if service.hooks is not None:
            exchange.inspect = service.hooks(method, path.decode("utf-8", "replace"), exchange.t0)
        if model:
            exchange.model = model
        elif has_body and service.json_field:
            exchange.json_prefix = bytearray()
        if chunked:
            exchange.chunked_request = True
        if not parser.should_keep_alive():
            exchange.close_client = True
        if method_bytes == _HEAD:
            exchange.is_head = True
        if expect:
            exchange.expect_continue = True
        http10 = self.http10
        if http10 < 0:  # a client does not change versions mid-connection: ask once
            http10 = self.http10 = int(parser.get_http_version() == "1.0")
        if http10:
            exchange.http10 = True
        service.in_flight += 1
        # Dispatch: start now, or queue behind the request being answered.
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
            self.block(BLOCK_PIPELINE)

    def on_body(self, body: bytes) -> None:
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
                self.block(BLOCK_WAITING)

    def on_message_complete(self) -> None:
        self.awaiting_head = True
        end = LAST_CHUNK
        if len(self.parts) > 5 or self.rare or self.host is not None:
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
        """Trailer fields came after a chunked body: forward the ordinary ones, and
        leave nothing behind for the next request's head."""
        trailers = self.parts[5:]
        self._reset_head()
        return last_chunk(trailers) if trailers else LAST_CHUNK

    def _reset_head(self) -> None:
        """A fresh request head: the forwarded parts and the special headers seen.

        ``on_headers_complete`` takes and resets the same fields inline (hot path).
        """
        self.url = b""
        self.parts = [b"", b" ", b"", b" HTTP/1.1\r\n", b""]
        self.host = None
        self.has_body = self.rare = self.chunked = self.expect = False
        self.upgrade = None
        self.forwarded_for = []
        self.forwarded_seen = 0
        self.hop = set()
        self.models = {}

    # -- exchange lifecycle ------------------------------------------------

    def _dispatch(self, exchange: Exchange) -> None:
        self.reading = exchange
        if self.current is None:
            self.current = exchange
            self._begin(exchange)
        else:
            self.queue.append(exchange)
            self.block(BLOCK_PIPELINE)

    def _begin(self, exchange: Exchange) -> None:
        if exchange.local is not None:
            exchange.status = int(exchange.local[9:12])
            self.write(exchange.local)
            self.finish(exchange, "")
            return
        service = exchange.service
        assert service is not None
        connection = service.upstream.acquire()
        if connection is not None:
            connection.attach(exchange)
        else:
            service.upstream.connect(exchange)

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
        """The response is complete (or given up): record it and move on."""
        if exchange.done:
            return
        exchange.done = True
        if exchange.service is not None:
            exchange.service.in_flight -= 1
            self._record(exchange, error)
        if self.current is not exchange:
            return
        self.current = None
        if self.read_block & (BLOCK_UPSTREAM_FULL | BLOCK_WAITING):
            self.unblock(BLOCK_UPSTREAM_FULL | BLOCK_WAITING)
        if exchange.close_client or self.closed or self.listener.draining:
            self.close()
            return
        queue = self.queue
        if queue:
            following = queue.popleft()
            if not queue:
                self.unblock(BLOCK_PIPELINE)
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
        exchange.done = True
        service = exchange.service
        assert service is not None
        service.in_flight -= 1
        self._record(exchange, "")
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
        exchange.done = True
        if exchange.service is not None:
            exchange.service.in_flight -= 1
            self._record(exchange, "client_disconnect")

    def _record(self, exchange: Exchange, error: str) -> None:
        service = exchange.service
        assert service is not None
        model = exchange.model
        if not model and exchange.json_prefix:
            model = json_field(bytes(exchange.json_prefix), service.json_field)
        listener = self.listener
        now = perf_counter()
        path = exchange.path.decode("utf-8", "replace")
        event = RequestEvent(
            listener.ids(),
            time() - (now - exchange.t0),
            service.name,
            exchange.method,
            service.template(path) if path else "",
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
        listener.capture.append(event)

    def _bad_request(self, detail: str, status: int = 400) -> None:
        self.stop_reading = True
        exchange = self.reading
        if exchange is not None and not exchange.done:
            exchange.close_client = True
            if exchange is self.current:
                self.fail(exchange, status, "bad_request", detail)
            else:  # a pipelined request that will never be complete: drop it
                self.queue.remove(exchange)
                exchange.status = 400
                exchange.done = True
                if exchange.service is not None:
                    exchange.service.in_flight -= 1
                    self._record(exchange, "bad_request")
                last = self.queue[-1] if self.queue else self.current
                if last is not None:
                    last.close_client = True
            return
        if self.current is not None:
            last = self.queue[-1] if self.queue else self.current
            last.close_client = True  # answer what came before, then close
            return
        service = self.listener.default
        exchange = Exchange(self, service, "", b"", b"", perf_counter())
        exchange.close_client = True
        exchange.local = error_response(status, "bad_request", detail, close=True)
        if service is not None:
            service.in_flight += 1
        self.current = exchange
        exchange.status = status
        self.write(exchange.local)
        exchange.done = True
        if service is not None:
            service.in_flight -= 1
            self._record(exchange, "bad_request")
        self.current = None
        self.close()

    # -- transport helpers -------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def block(self, flag: int) -> None:
        """Stop reading from the client for ``flag``'s reason."""
        if not self.read_block and not self.closed:
            self.transport.pause_reading()
        self.read_block |= flag

    def unblock(self, flag: int) -> None:
        """``flag``'s reason is gone; resume reading when no other reason is left."""
        if self.read_block & flag:
            self.read_block &= ~flag
            if not self.read_block and not self.closed:
                self.transport.resume_reading()
