"""Upgraded connections (WebSocket, ``101 Switching Protocols``): after the handshake
the proxy relays raw bytes both ways, with flow control and half-close."""

from __future__ import annotations

import asyncio

__all__ = ["Tunnel"]


class _End(asyncio.Protocol):
    """One side of a tunnel: what it reads goes to the other side's transport."""

    __slots__ = ("eof", "peer", "received_bytes", "transport", "tunnel")

    def __init__(self, tunnel: Tunnel, transport: asyncio.Transport, peer: asyncio.Transport):
        self.tunnel = tunnel
        self.transport = transport
        self.peer = peer
        self.received_bytes = 0
        self.eof = False

    def data_received(self, data: bytes) -> None:
        self.received_bytes += len(data)
        self.peer.write(data)

    def eof_received(self) -> bool:
        # Pass the half-close on (WebSocket closes cleanly either way); a peer that
        # cannot half-close (TLS) is closed once its buffered data is written.
        self.eof = True
        if self.peer.can_write_eof() and not self.peer.is_closing():
            self.peer.write_eof()
            if not self.tunnel.both_eof():
                return True
        self.tunnel.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.close()

    # Our transport's write buffer is full: stop reading from the side that fills it.
    def pause_writing(self) -> None:
        if not self.peer.is_closing():
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if not self.peer.is_closing():
            self.peer.resume_reading()


class Tunnel:
    """A client connection and an upstream connection joined after a protocol switch."""

    __slots__ = ("_registry", "client", "upstream")

    def __init__(
        self,
        client: asyncio.Transport,
        upstream: asyncio.Transport,
        registry: set[Tunnel],
    ) -> None:
        self._registry = registry
        self.client = _End(self, client, upstream)
        self.upstream = _End(self, upstream, client)

    def start(self) -> None:
        """Take both transports over and read from both."""
        self._registry.add(self)
        for end in (self.client, self.upstream):
            end.transport.set_protocol(end)
            if not end.transport.is_closing():
                end.transport.resume_reading()

    @property
    def bytes_down(self) -> int:
        """Bytes the upstream sent through the tunnel."""
        return self.upstream.received_bytes

    def both_eof(self) -> bool:
        return self.client.eof and self.upstream.eof

    def close(self) -> None:
        """Close both sides (each after writing what it has buffered)."""
        self._registry.discard(self)
        for end in (self.client, self.upstream):
            if not end.transport.is_closing():
                end.transport.close()
