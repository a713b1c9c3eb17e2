"""Local bus over a Unix socket (``unix:///path/to/bus.sock``): processes on one machine.

The first handle to connect holds the queue (a :class:`MemoryBus`) and listens on
the socket: the *hub*. Every later handle on the same path is a client: ``publish``
sends the encoded batch and returns once the hub has queued it (a confirm), and
``consume`` subscribes with a prefetch window; a delivery the client does not ack
before its connection ends goes back to the queue. Who is the hub is decided by an
``flock`` on ``<path>.lock``, so two processes never both listen. The queue lives
as long as the hub's process: ``modelmonitor up`` runs the pipeline as the hub and
its proxy process as a client.

Frames are ``kind (1 byte) | tag (8) | length (4) | body``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import struct
from collections.abc import AsyncIterator
from enum import IntEnum
from typing import IO
from urllib.parse import unquote, urlsplit

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.bus.base import BusUnavailable, Delivery
from modelmonitor.bus.memory import MemoryBus

__all__ = ["UnixBus", "socket_path"]

log = logging.getLogger("modelmonitor.bus.unix")

_HEAD = struct.Struct("!BQI")
#: Longest path a Unix socket address holds on Linux (``sun_path`` less the NUL).
_MAX_PATH = 107


class _Kind(IntEnum):
    PUBLISH = 1  # client -> hub: tag = the publish's number
    CONFIRM = 2  # hub -> client: the message with that tag is queued
    REFUSE = 3  # hub -> client: not queued (full or closing); body = reason
    SUBSCRIBE = 4  # client -> hub: tag = prefetch
    DELIVER = 5  # hub -> client: tag = delivery number
    ACK = 6
    REQUEUE = 7
    DROP = 8


def socket_path(url: str) -> str:
    """The socket's path from ``unix:///path``; raises ``ValueError`` when unusable."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc or not path.startswith("/"):
        raise ValueError(f"a unix:// bus URL needs an absolute path (unix:///...): {url!r}")
    if len(os.fsencode(path)) > _MAX_PATH:
        raise ValueError(f"the unix socket path is longer than {_MAX_PATH} bytes: {path}")
    return path


def _frame(kind: _Kind, tag: int, body: bytes = b"") -> bytes:
    return _HEAD.pack(kind, tag, len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    kind, tag, length = _HEAD.unpack(await reader.readexactly(_HEAD.size))
    return kind, tag, await reader.readexactly(length) if length else b""


class _RemoteDelivery:
    """A message delivered to a client; acking after the link died is a no-op (requeued)."""

    __slots__ = ("_done", "_tag", "_writer", "body")

    def __init__(self, writer: asyncio.StreamWriter, tag: int, body: bytes) -> None:
        self._writer = writer
        self._tag = tag
        self.body = body
        self._done = False

    def _send(self, kind: _Kind) -> None:
        if not self._done:
            self._done = True
            if not self._writer.is_closing():
                self._writer.write(_frame(kind, self._tag))

    async def ack(self) -> None:
        self._send(_Kind.ACK)

    async def reject(self, *, requeue: bool = True) -> None:
        self._send(_Kind.REQUEUE if requeue else _Kind.DROP)


class _Link:
    """A client's connection to the hub, with its confirm futures or its delivery inbox."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[None]] = {}
        self.inbox: asyncio.Queue[_RemoteDelivery | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._read(), name="unix-bus-link")

    @property
    def open(self) -> bool:
        return not self.task.done()

    async def _read(self) -> None:
        try:
            while True:
                kind, tag, body = await _read_frame(self.reader)
                if kind == _Kind.DELIVER:
                    self.inbox.put_nowait(_RemoteDelivery(self.writer, tag, body))
                    continue
                future = self.pending.pop(tag, None)
                if future is None or future.done():
                    continue
                if kind == _Kind.CONFIRM:
                    future.set_result(None)
                else:
                    future.set_exception(BusUnavailable(body.decode(errors="replace")))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.writer.close()
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(BusUnavailable("the local bus hub went away"))
            self.pending.clear()
            self.inbox.put_nowait(None)

    async def close(self) -> None:
        self.writer.close()
        await cancel_and_wait([self.task])


class UnixBus:
    """A bus between processes of one machine; the first handle on a path is the hub."""

    def __init__(
        self,
        url: str,
        *,
        publish_timeout: float = 10.0,
        retry_seconds: float = 0.5,
        max_bytes: int = 64 << 20,
    ) -> None:
        self.url = url
        self._max_bytes = max_bytes
        self.path = socket_path(url)
        self._publish_timeout = publish_timeout
        self._retry_seconds = retry_seconds
        self._memory: MemoryBus | None = None  # set when this handle is the hub
        self._server: asyncio.AbstractServer | None = None
        self._lock: IO[bytes] | None = None
        self._peers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._link: _Link | None = None
        self._subscriptions: set[_Link] = set()
        self._next_dial = 0.0
        self._tags = itertools.count(1)
        self._closed = False
        self._open = False

    # -- roles -------------------------------------------------------------

    @property
    def is_hub(self) -> bool:
        return self._memory is not None

    @property
    def connected(self) -> bool:
        if not self._open:
            return False
        if self._memory is not None:
            return self._memory.connected
        return self._link is not None and self._link.open

    async def connect(self) -> None:
        """Become the hub if nobody is, else a client (dialling again on demand)."""
        self._closed = False
        self._open = True
        # A local file opened once at start-up; held (locked) for the hub's lifetime.
        lock = open(f"{self.path}.lock", "ab")  # noqa: SIM115, ASYNC230
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            with contextlib.suppress(BusUnavailable):
                await self._dial()
            return
        self._lock = lock
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # left by a hub that died: the lock says nobody listens
        # Bounded: a worker that falls behind makes publishers hold (then drop, counted)
        # instead of growing this process without limit.
        self._memory = MemoryBus(self.url, max_bytes=self._max_bytes)
        await self._memory.connect()
        old_umask = os.umask(0o177)  # only this user may publish events
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path)
        finally:
            os.umask(old_umask)

    async def _dial(self) -> _Link:
        link = self._link
        if link is not None and link.open:
            return link
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_dial:
            raise BusUnavailable("the local bus hub is not reachable")
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError as exc:
            self._next_dial = loop.time() + self._retry_seconds
            raise BusUnavailable(f"the local bus hub is not reachable: {exc}") from None
        self._link = _Link(reader, writer)
        return self._link

    async def close(self) -> None:
        self._closed = True
        self._open = False
        for link in [self._link, *self._subscriptions]:
            if link is not None:
                await link.close()
        self._link = None
        if self._server is not None:
            await asyncio.sleep(0)  # accept connections the kernel already queued, to end them
            self._server.close()
            for writer in self._peers.values():
                writer.close()  # each connection's reader sees the end and cleans up
            await asyncio.gather(*self._peers, return_exceptions=True)
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        if self._memory is not None:
            await self._memory.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    async def join(self) -> None:
        """(Hub) wait until every queued message was acked or dropped."""
        if self._memory is not None:
            await self._memory.join()

    # -- publishing --------------------------------------------------------

    async def publish(self, body: bytes) -> None:
        if not self._open:
            raise BusUnavailable("the local bus is closed")
        if self._memory is not None:
            await self._memory.publish(body)
            return
        link = await self._dial()
        tag = next(self._tags)
        future = asyncio.get_running_loop().create_future()
        link.pending[tag] = future
        link.writer.write(_frame(_Kind.PUBLISH, tag, body))
        try:
            async with asyncio.timeout(self._publish_timeout):
                await link.writer.drain()
                await future
        except (OSError, TimeoutError) as exc:
            link.pending.pop(tag, None)
            await link.close()  # a hub that does not answer: dial afresh next time
            raise BusUnavailable(f"the local bus hub did not confirm: {exc!r}") from None

    # -- consuming ---------------------------------------------------------

    async def consume(self, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        if self._memory is not None:
            async for local in self._memory.consume(prefetch=prefetch):
                yield local
            return
        while not self._closed:
            try:
                reader, writer = await asyncio.open_unix_connection(self.path)
            except OSError:
                await asyncio.sleep(self._retry_seconds)
                continue
            link = _Link(reader, writer)
            self._subscriptions.add(link)
            try:
                writer.write(_frame(_Kind.SUBSCRIBE, max(1, prefetch)))
                while (delivery := await link.inbox.get()) is not None:
                    yield delivery
            finally:
                self._subscriptions.discard(link)
                await link.close()

    # -- the hub's side of a connection ------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self._memory is not None
        if self._closed:  # accepted just before close(): nobody will serve it
            writer.close()
            return
        self._peers[task] = writer
        memory = self._memory
        outstanding: dict[int, Delivery] = {}
        credit = asyncio.Semaphore(0)
        feeder: asyncio.Task[None] | None = None
        try:
            while True:
                kind, tag, body = await _read_frame(reader)
                if kind == _Kind.PUBLISH:
                    try:
                        await memory.publish(body)
                        writer.write(_frame(_Kind.CONFIRM, tag))
                    except BusUnavailable as exc:
                        writer.write(_frame(_Kind.REFUSE, tag, str(exc).encode()))
                    await writer.drain()
                elif kind == _Kind.SUBSCRIBE and feeder is None:
                    for _ in range(tag):
                        credit.release()
                    feeder = asyncio.create_task(self._feed(writer, outstanding, credit))
                elif kind in (_Kind.ACK, _Kind.REQUEUE, _Kind.DROP):
                    delivery = outstanding.pop(tag, None)
                    if delivery is None:
                        continue
                    if kind == _Kind.ACK:
                        await delivery.ack()
                    else:
                        await delivery.reject(requeue=kind == _Kind.REQUEUE)
                    credit.release()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            await cancel_and_wait([feeder])
            for delivery in outstanding.values():  # never acked: back to the queue
                await delivery.reject(requeue=True)
            writer.close()
            self._peers.pop(task, None)

    async def _feed(
        self,
        writer: asyncio.StreamWriter,
        outstanding: dict[int, Delivery],
        credit: asyncio.Semaphore,
    ) -> None:
        assert self._memory is not None
        stream = self._memory.consume()
        for number in itertools.count(1):
            await credit.acquire()
            try:
                delivery = await anext(stream)
            except StopAsyncIteration:
                return
            outstanding[number] = delivery
            writer.write(_frame(_Kind.DELIVER, number, delivery.body))
            await writer.drain()
