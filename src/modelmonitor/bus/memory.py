"""In-process bus (``memory://``): an asyncio queue with at-least-once semantics.

A rejected (requeued) delivery goes back to the front of the queue, like a broker's
redelivery. It lives and dies with the process, so ``modelmonitor up`` on one
machine needs nothing else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from modelmonitor.bus.base import BusUnavailable

__all__ = ["MemoryBus"]


class _MemoryDelivery:
    __slots__ = ("_bus", "_done", "body")

    def __init__(self, bus: MemoryBus, body: bytes) -> None:
        self._bus = bus
        self.body = body
        self._done = False

    async def ack(self) -> None:
        if not self._done:
            self._done = True
            self._bus._finished(len(self.body))

    async def reject(self, *, requeue: bool = True) -> None:
        if self._done:
            return
        self._done = True
        if requeue:
            self._bus._requeue(self.body)
        else:
            self._bus._finished(len(self.body))


class MemoryBus:
    """Bounded in-process queue of message bodies (by count and by bytes, counting
    messages delivered but not yet acked)."""

    def __init__(
        self, url: str = "memory://", *, max_messages: int = 10_000, max_bytes: int = 256 << 20
    ) -> None:
        self.url = url
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._bytes = 0
        self._queue: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._open = False
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.published_total = 0

    @property
    def connected(self) -> bool:
        return self._open

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def connect(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False
        self._ready.set()

    async def publish(self, body: bytes) -> None:
        if not self._open:
            raise BusUnavailable("memory bus is closed")
        if len(self._queue) >= self._max_messages:
            raise BusUnavailable(f"memory bus is full ({self._max_messages} messages)")
        if self._bytes and self._bytes + len(body) > self._max_bytes:
            raise BusUnavailable(f"memory bus is full ({self._max_bytes} bytes)")
        self._bytes += len(body)
        self._queue.append(body)
        self.published_total += 1
        self._unfinished += 1
        self._idle.clear()
        self._ready.set()

    def _finished(self, size: int) -> None:
        self._bytes -= size
        self._unfinished -= 1
        if self._unfinished <= 0:
            self._idle.set()

    async def join(self) -> None:
        """Wait until every published message was acked (or rejected for good)."""
        await self._idle.wait()

    def _requeue(self, body: bytes) -> None:
        self._queue.appendleft(body)
        self._ready.set()

    async def consume(self, *, prefetch: int = 16) -> AsyncIterator[_MemoryDelivery]:
        while self._open:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            yield _MemoryDelivery(self, self._queue.popleft())
