"""The upstream side: a keep-alive pool per service, and the connection protocol that
writes requests and relays parsed responses to the client as they arrive."""

from __future__ import annotations

import asyncio
import ssl
from time import perf_counter
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httptools

from modelmonitor.proxy.edge import Refusal, Reject
from modelmonitor.proxy.exchange import REPLAY_LIMIT, ReadBlock
from modelmonitor.proxy.http import (
    CONNECTION_UPGRADE,
    CONTINUE,
    CRLF,
    LAST_CHUNK,
    RESPONSE_SPECIAL,
    HeaderAction,
    canonical_length,
    chunk_header,
    connection_tokens,
    last_chunk,
    status_line,
    transfer_codings,
)
from modelmonitor.settings import ServiceConfig, TLSConfig

if TYPE_CHECKING:
    from modelmonitor.proxy.exchange import Exchange

__all__ = ["UpstreamConnection", "UpstreamTarget", "tls_context"]

_UPSTREAM_FULL = ReadBlock.UPSTREAM_FULL
_CONTENT_LENGTH = HeaderAction.CONTENT_LENGTH
_TRANSFER_ENCODING = HeaderAction.TRANSFER_ENCODING
_UPGRADE = HeaderAction.UPGRADE
_CONNECTION = HeaderAction.CONNECTION
_CHUNKED = [b"chunked"]
_CHUNKED_LINE = b"Transfer-Encoding: chunked\r\n"
_BODILESS = frozenset((204, 304))
_CONNECTION_OPTIONS = frozenset((b"close", b"keep-alive"))
#: Shared "replayable, no body sent yet" marker (never appended to).
_NOTHING_YET: list[bytes] = []


def tls_context(tls: TLSConfig) -> ssl.SSLContext:
    """Client-side TLS for an ``https://`` upstream: verify by default, optional CA and cert."""
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.client_cert is not None:
        context.load_cert_chain(
            str(tls.client_cert), str(tls.client_key) if tls.client_key else None
        )
    return context


class UpstreamTarget:
    """Where a service forwards to, and its idle keep-alive connections (LIFO)."""

    __slots__ = (
        "base_path",
        "closing",
        "connect_timeout",
        "connections",
        "host",
        "host_header",
        "idle",
        "max_head_bytes",
        "max_idle",
        "port",
        "server_hostname",
        "ssl",
    )

    def __init__(
        self, config: ServiceConfig, *, max_idle: int = 512, max_head_bytes: int = 64 * 1024
    ) -> None:
        parts = urlsplit(config.upstream)
        self.host = parts.hostname or "127.0.0.1"
        secure = parts.scheme == "https"
        default_port = 443 if secure else 80
        self.port = parts.port or default_port
        self.ssl = tls_context(config.tls) if secure else None
        self.server_hostname = (config.tls.server_name or self.host) if secure else None
        netloc = parts.netloc.rpartition("@")[2]
        self.host_header = b"Host: " + netloc.encode("idna" if netloc.isascii() else "utf-8")
        self.host_header += CRLF
        self.base_path = parts.path.rstrip("/").encode()
        self.connect_timeout = config.connect_timeout_seconds
        self.max_idle = max_idle
        #: Largest response head (status line and headers) relayed; 502 beyond.
        self.max_head_bytes = max_head_bytes
        self.idle: list[UpstreamConnection] = []
        #: Every open connection (the timeout sweeper walks the busy ones).
        self.connections: set[UpstreamConnection] = set()
        self.closing = False

    def acquire(self) -> UpstreamConnection | None:
        """The most recently used idle connection, or ``None``."""
        idle = self.idle
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    def release(self, connection: UpstreamConnection) -> None:
        """Park a connection that finished a response cleanly."""
        if self.closing or connection.closed or len(self.idle) >= self.max_idle:
            connection.close()
            return
        if connection.read_paused:
            connection.read_paused = False
            connection.transport.resume_reading()
        connection.reused = True
        self.idle.append(connection)

    def forget(self, connection: UpstreamConnection) -> None:
        """A connection closed: drop it from the pool."""
        self.connections.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)

    def connect(self, exchange: Exchange) -> None:
        """Open a fresh connection for ``exchange`` in the background."""
        asyncio.get_running_loop().create_task(self._connect(exchange))

    async def _connect(self, exchange: Exchange) -> None:
        loop = asyncio.get_running_loop()
        client = exchange.client
        try:
            async with asyncio.timeout(self.connect_timeout or None):
                _, connection = await loop.create_connection(
                    lambda: UpstreamConnection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.server_hostname,
                )
        except TimeoutError:
            detail = f"no connection to {self.host}:{self.port} in {self.connect_timeout:g}s"
            client.fail(exchange, 504, "upstream_timeout", detail)
            return
        except (OSError, ssl.SSLError, ssl.CertificateError) as exc:
            detail = f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            client.fail(exchange, 502, "upstream_connect", detail)
            return
        if exchange.done:
            self.release(connection)
        else:
            connection.attach(exchange)

    def close(self) -> None:
        """Close idle connections; busy ones close when their exchange ends."""
        self.closing = True
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.close()


class UpstreamConnection(asyncio.Protocol):
    """One connection to an upstream; serves one exchange at a time."""

    __slots__ = (
        "activity",
        "closed",
        "codings",
        "complete",
        "exchange",
        "first",
        "garbage",
        "head_bytes",
        "head_wait_for",
        "head_wait_since",
        "hop",
        "informational",
        "keep_alive",
        "length",
        "out",
        "parser",
        "parser_dirty",
        "parts",
        "read_paused",
        "reused",
        "seen_activity",
        "stalled_since",
        "target",
        "transport",
        "upgrade",
        "upstream_close",
        "write_paused",
    )

    transport: asyncio.Transport

    def __init__(self, target: UpstreamTarget) -> None:
        self.target = target
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        # The response head being parsed: re-emitted parts and the framing headers.
        self.parts: list[bytes] = [b""]
        self.first: bytes | None = None
        self.length = False
        #: Transfer-Encoding field values of the response being parsed.
        self.codings: list[bytes] = []
        #: Bytes received since the last body piece: the response head, or chunk
        #: lines and trailer fields (bounded by ``max_head_bytes`` either way).
        self.head_bytes = 0
        self.upstream_close = False
        self.upgrade: bytes | None = None
        self.hop: set[bytes] = set()
        self.out: list[bytes] = []
        self.complete = False
        self.informational = False
        self.garbage = False
        self.parser_dirty = False
        self.keep_alive = True
        self.reused = False
        self.closed = False
        self.read_paused = False
        self.write_paused = False
        #: Bumped on every read and write; the timeout sweeper compares it.
        self.activity = 0
        self.seen_activity = -1
        self.stalled_since = 0.0
        #: The exchange whose response head the sweeper is timing, and since when.
        self.head_wait_for: Exchange | None = None
        self.head_wait_since = 0.0

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.target.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.target.forget(self)
        exchange = self.exchange
        if exchange is None:
            return
        client = exchange.client
        if exchange.close_delimited and exchange.head_sent and exc is None:
            # The body ran to EOF: that is its end.
            if exchange.chunked_response:
                self.out.append(LAST_CHUNK)
            self._flush()
            self.exchange = None
            exchange.upstream = None
            client.finish(exchange, "")
            return
        self.exchange = None
        exchange.upstream = None
        self.out.clear()
        if self.write_paused:
            client.unblock(_UPSTREAM_FULL)
        if exchange.ttfb < 0:
            # Nothing of the response arrived. A pooled connection the upstream
            # closed while idle: replay on a fresh one, once, if we still can.
            if self.reused and not exchange.retried and exchange.replay is not None:
                exchange.retried = True
                exchange.pending = exchange.replay + exchange.pending
                exchange.pending_bytes += exchange.replay_bytes
                exchange.replay = None
                self.target.connect(exchange)
                return
            client.fail(exchange, 502, "upstream_reset", "upstream closed the connection")
            return
        detail = "upstream closed the connection mid-response"
        client.fail(exchange, 502, "upstream_reset", detail)

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        self.write_paused = True
        exchange = self.exchange
        if exchange is not None:
            exchange.client.block(_UPSTREAM_FULL)

    def resume_writing(self) -> None:
        self.write_paused = False
        exchange = self.exchange
        if exchange is not None:
            exchange.client.unblock(_UPSTREAM_FULL)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.close()  # an idle upstream must not talk
            return
        self.activity += 1
        if exchange.ttfb < 0:
            exchange.ttfb = perf_counter() - exchange.t0
            self.first = data
        self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            if not isinstance(refusal, Reject):
                raise
            self._give_up(exchange, refusal.status, refusal.kind, refusal.detail)
            return
        except httptools.HttpParserUpgrade as exc:
            self._switch_protocols(exchange, data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            self._give_up(exchange, 502, "upstream_protocol", f"bad response: {exc}")
            return
        if self.head_bytes > self.target.max_head_bytes:
            what = "chunk lines or trailer fields" if exchange.head_sent else "response head"
            detail = f"upstream {what} over {self.target.max_head_bytes} bytes"
            self._give_up(exchange, 502, Refusal.UPSTREAM_HEAD_TOO_LARGE, detail)
            return
        if self.out:
            self._flush()
        if self.complete:
            self._response_done(exchange)

    # -- request side ------------------------------------------------------

    def attach(self, exchange: Exchange) -> None:
        """Start ``exchange`` on this connection: write its head and buffered body."""
        self.exchange = exchange
        exchange.upstream = self
        self.activity += 1
        self.head_bytes = 0
        pending = exchange.pending
        if self.reused and not exchange.retried:
            # Kept for a replay if this pooled connection turns out dead (body only:
            # the head is kept anyway).
            exchange.replay = pending.copy() if pending else _NOTHING_YET
            exchange.replay_bytes = exchange.pending_bytes
        if pending:
            pending.insert(0, exchange.head)
            self.transport.writelines(pending)
            exchange.pending = []
            exchange.pending_bytes = 0
            exchange.client.unblock(ReadBlock.WAITING)
        else:
            self.transport.write(exchange.head)
        client = exchange.client
        if self.write_paused:
            client.block(_UPSTREAM_FULL)
        if client.write_paused:
            self.read_paused = True
            self.transport.pause_reading()
        if exchange.expect_continue:
            exchange.expect_continue = False
            if not exchange.request_done:
                client.write(CONTINUE)

    def send(self, exchange: Exchange, piece: bytes) -> None:
        """Forward one framed request-body piece."""
        self.transport.write(piece)
        self.activity += 1
        replay = exchange.replay
        if replay is not None:
            exchange.replay_bytes += len(piece)
            if exchange.replay_bytes > REPLAY_LIMIT:
                exchange.replay = None
            elif replay is _NOTHING_YET:
                exchange.replay = [piece]
            else:
                replay.append(piece)

    def detach(self) -> None:
        """Stop serving the current exchange and close (its state is unknown)."""
        exchange = self.exchange
        if exchange is not None:
            exchange.upstream = None
            self.exchange = None
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.target.forget(self)
            self.transport.close()

    # -- response parsing (httptools callbacks) ----------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            self.garbage = True  # more after a complete response: never reuse
        self.informational = False

    def on_header(self, name: bytes, value: bytes) -> None:
        # Headers are re-emitted as they are parsed; only the framing ones are kept.
        lower = name.lower()
        action = RESPONSE_SPECIAL.get(lower)
        if action is None:
            self.parts += (name, b": ", value, CRLF)
        elif action is _CONTENT_LENGTH:
            self.length = True
            if not value.isdigit() or (value[0] == 48 and len(value) > 1):
                value = canonical_length(value)  # "0005" -> "5": one spelling downstream
            self.parts += (name, b": ", value, CRLF)
        elif action is _TRANSFER_ENCODING:
            self.codings.append(value)
        elif action is _UPGRADE:
            self.upgrade = value
        elif action is _CONNECTION:
            tokens = connection_tokens(value)
            if b"close" in tokens:
                self.upstream_close = True
            tokens -= _CONNECTION_OPTIONS
            if tokens:
                self.hop |= tokens

    def on_headers_complete(self) -> None:
        # Framing state is only read here; it is reset when the message ends.
        parts = self.parts
        self.parts = [b""]
        exchange = self.exchange
        if exchange is None or self.complete:
            return
        status = self.parser.get_status_code()
        parts[0] = self._status_line(status)
        limit = self.target.max_head_bytes
        if self.head_bytes > limit and sum(map(len, parts)) > limit:
            detail = f"upstream response head over {limit} bytes"
            raise Reject(Refusal.UPSTREAM_HEAD_TOO_LARGE, 502, detail)
        hop = self.hop
        if hop:  # Connection named more hop-by-hop headers (never framing ones)
            kept = parts[:1]
            for index in range(1, len(parts), 4):
                if parts[index].lower() not in hop:
                    kept += parts[index : index + 4]
            parts = kept
        if status < 200:
            self._informational_head(exchange, status, parts)
        else:
            self._final_head(exchange, status, parts)

    def _status_line(self, status: int) -> bytes:
        """The upstream's own status line (reason phrase included) when it is HTTP/1.1."""
        first = self.first
        self.first = None
        end = first.find(b"\r\n") if first is not None and first[:9] == b"HTTP/1.1 " else -1
        return first[: end + 2] if end > 0 and first is not None else status_line(status)

    def _informational_head(self, exchange: Exchange, status: int, parts: list[bytes]) -> None:
        """A 1xx head: relayed (but our own 100 was sent already), or the 101 of the
        protocol switch the client asked for, after which a tunnel takes over."""
        self.informational = True
        upgrade = self.upgrade
        if status == 101 and exchange.upgrade and upgrade is not None:
            exchange.status = status
            exchange.head_sent = True
            parts += (CONNECTION_UPGRADE, b"Upgrade: ", upgrade, CRLF, CRLF)
            self.out.append(b"".join(parts))
        elif status != 100 and not exchange.http10:
            parts.append(CRLF)
            self.out.append(b"".join(parts))

    def _final_head(self, exchange: Exchange, status: int, parts: list[bytes]) -> None:
        """The response head the client gets: re-framed for the client's version."""
        http10 = exchange.http10
        keep_alive = self.parser.should_keep_alive() and not self.upstream_close
        exchange.status = status
        close_client = exchange.close_client or not exchange.request_done
        codings = self.codings
        chunked = False
        te_line = _CHUNKED_LINE
        if codings:
            tokens = transfer_codings(codings)
            chunked = tokens[-1] == b"chunked"
            if tokens != _CHUNKED:  # other codings (gzip, ...) are the client's to undo
                kept = tokens[:-1] if chunked else tokens
                te_line = b"Transfer-Encoding: " + b", ".join(kept) + b", chunked\r\n"
        if exchange.is_head or status in _BODILESS:
            if exchange.is_head:
                self.complete = True
                self.parser_dirty = True  # httptools cannot skip a HEAD response's body
                if codings and not http10:
                    parts.append(te_line)
        elif not self.length:
            if not chunked:
                exchange.close_delimited = True
                keep_alive = False
            if http10:
                close_client = True
            else:
                exchange.chunked_response = True
                parts.append(te_line)
        self.keep_alive = keep_alive
        if close_client:
            exchange.close_client = True
            if not http10:
                parts.append(b"Connection: close\r\n")
        elif http10:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(CRLF)
        self.out.append(b"".join(parts))
        exchange.head_sent = True

    def on_body(self, body: bytes) -> None:
        self.head_bytes = 0
        exchange = self.exchange
        if exchange is None or self.complete:
            return
        exchange.response_bytes += len(body)
        if exchange.inspect is not None:
            exchange.inspect.response_body(body)
        if exchange.chunked_response:
            self.out += (chunk_header(len(body)), body, CRLF)
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        trailers = self.parts
        if len(trailers) > 1:  # trailer fields after a chunked body: the client's alone
            self.parts = [b""]
        if self.upstream_close:  # also "Connection: close" as a trailer field
            self.keep_alive = False
        self._reset_framing()
        exchange = self.exchange
        if exchange is None or self.complete or self.informational:
            return
        if exchange.chunked_response:
            self.out.append(LAST_CHUNK if len(trailers) == 1 else last_chunk(trailers[1:]))
        self.complete = True

    # -- internals ---------------------------------------------------------

    def _reset_framing(self) -> None:
        """Forget one message's framing headers (and any trailer fields' effects)."""
        self.length = self.upstream_close = False
        self.upgrade = None
        if self.codings:
            self.codings = []
        if self.hop:
            self.hop = set()

    def _flush(self) -> None:
        out = self.out
        exchange = self.exchange
        if exchange is not None and not exchange.client.closed:
            transport = exchange.client.transport
            if len(out) == 1:
                transport.write(out[0])
            elif len(out) < 8 and sum(map(len, out)) <= 16384:
                transport.write(b"".join(out))  # one write(2) instead of a writev context
            else:
                transport.writelines(out)
        out.clear()

    def _give_up(self, exchange: Exchange, status: int, kind: str, detail: str) -> None:
        """The upstream's answer cannot be relayed: close it, fail the exchange."""
        self.out.clear()
        self.exchange = None
        exchange.upstream = None
        self.close()
        if isinstance(kind, Refusal):
            exchange.client.listener.edge.add(kind)
            kind = kind.value
        exchange.client.fail(exchange, status, kind, detail)

    def _switch_protocols(self, exchange: Exchange, first_bytes: bytes) -> None:
        """The upstream switched protocols: hand both connections to a tunnel."""
        client = exchange.client
        switching = exchange.status == 101 and exchange.request_done
        if switching:
            self._flush()  # the 101 head
        else:
            self.out.clear()
        self.exchange = None
        exchange.upstream = None
        self.closed = True  # no longer an HTTP connection: never pooled again
        self.target.forget(self)
        if not switching:
            self.transport.close()
            detail = "upstream switched protocols without being asked to"
            client.fail(exchange, 502, "upstream_protocol", detail)
            return
        client.switch_protocols(exchange, self.transport, first_bytes)

    def _response_done(self, exchange: Exchange) -> None:
        self.complete = False
        self.exchange = None
        exchange.upstream = None
        if self.parser_dirty:
            self.parser_dirty = False
            self.parser = httptools.HttpResponseParser(self)
            self._reset_framing()  # the HEAD response's message never ended
        reusable = (
            self.keep_alive and exchange.request_done and not self.garbage and not self.closed
        )
        if reusable:
            self.target.release(self)
        else:
            self.close()
        exchange.client.finish(exchange, "")
