"""Capture: the bounded event buffer the hot path appends to, and the shipper that drains it.

The proxy's request path only calls :meth:`CaptureBuffer.append` (O(1), never
blocks; a full buffer drops the event and counts it). :class:`Shipper` is a
background task that batches events onto the bus, survives bus outages with
exponential backoff, and flushes on stop. With a :class:`Spool` (bounded on-disk
overflow, :class:`~modelmonitor.proxy.spool.FileSpool`) it moves batches to disk
while the bus is away and replays them, oldest first, once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.bus.base import BusUnavailable, EventBus
from modelmonitor.events import EventBatch, PayloadSample, ProxyStats, RequestEvent, encode_batch
from modelmonitor.proxy.sampling import SampleSink

__all__ = ["CaptureBuffer", "Shipper", "Spool"]

log = logging.getLogger(__name__)

#: Errors from ``publish`` that mean "the bus is unreachable now, try again later".
_BUS_DOWN = (BusUnavailable, ConnectionError, OSError, asyncio.TimeoutError)


class CaptureBuffer:
    """Bounded FIFO of events. ``append`` is O(1) and never blocks.

    Events handed to the shipper but not yet delivered still count against the
    capacity, so memory stays bounded while the bus is down.
    """

    __slots__ = (
        "_in_transit",
        "_items",
        "_notify",
        "_notify_at",
        "capacity",
        "captured_total",
        "dropped_total",
        "samples",
    )

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: list[RequestEvent] = []
        self._in_transit = 0
        self.captured_total = 0
        self.dropped_total = 0
        self._notify: Callable[[], None] | None = None
        self._notify_at = 0
        #: Sampled bodies waiting for their events (services that sample; else None).
        self.samples: SampleSink | None = None

    @property
    def size(self) -> int:
        """Events held: buffered plus handed to the shipper and not yet delivered."""
        return len(self._items) + self._in_transit

    def append(self, event: RequestEvent) -> bool:
        """Buffer one event; ``False`` (and counted as dropped) when full."""
        items = self._items
        if len(items) + self._in_transit >= self.capacity:
            self.dropped_total += 1
            return False
        items.append(event)
        self.captured_total += 1
        if len(items) == self._notify_at and self._notify is not None:
            self._notify()
        return True

    def on_batch_ready(self, threshold: int, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` (no awaiting) whenever ``threshold`` events are waiting."""
        self._notify_at = threshold
        self._notify = callback

    def take(self, max_events: int) -> list[RequestEvent]:
        """Remove up to ``max_events`` oldest events; they count as in transit until
        :meth:`delivered` or :meth:`release`."""
        items = self._items
        if len(items) <= max_events:
            self._items = []
            batch = items
        else:
            batch = items[:max_events]
            del items[:max_events]
        self._in_transit += len(batch)
        return batch

    def delivered(self, count: int) -> None:
        """``count`` in-transit events reached the bus (or the spool)."""
        self._in_transit = max(0, self._in_transit - count)

    def snapshot(self) -> list[RequestEvent]:
        """A copy of the buffered events (not in transit), oldest first."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Spool(Protocol):
    """Optional bounded on-disk overflow for batches the bus could not take.

    The shipper hands encoded batches to ``put`` while the bus is down and replays
    ``take`` (oldest first) once it is back.
    """

    @property
    def spooled(self) -> int:
        """Events currently on disk."""
        ...

    async def put(self, body: bytes, events: int) -> bool:
        """Store one encoded batch; ``False`` when the spool is full."""
        ...

    async def take(self) -> tuple[bytes, int] | None:
        """The oldest stored batch (body, event count), or ``None``; removes it."""
        ...

    async def give_back(self, body: bytes, events: int) -> None:
        """Return a batch ``take`` handed out that could not be delivered (to the front)."""
        ...


class Shipper:
    """Background task: buffer -> :class:`EventBatch` -> ``bus.publish``.

    Flushes every ``flush_interval_seconds`` or as soon as ``batch_max_events``
    are waiting; sends a stats-only heartbeat at least every
    ``heartbeat_seconds`` when idle. While the bus is down it keeps the
    undelivered batch, reports ``bus_state="disconnected"`` and retries with
    exponential backoff (capped at ``max_backoff_seconds``).
    """

    def __init__(
        self,
        buffer: CaptureBuffer,
        bus: EventBus,
        *,
        proxy_id: str,
        batch_max_events: int = 2000,
        flush_interval_seconds: float = 0.1,
        in_flight: Callable[[], dict[str, int]] = dict,
        edge: Callable[[], dict[str, int]] = dict,
        heartbeat_seconds: float = 1.0,
        max_backoff_seconds: float = 5.0,
        publish_timeout_seconds: float = 10.0,
        spool: Spool | None = None,
    ) -> None:
        self._buffer = buffer
        self._bus = bus
        self.proxy_id = proxy_id
        self._batch_max = max(1, batch_max_events)
        self._interval = max(0.001, flush_interval_seconds)
        self._in_flight = in_flight
        self._edge = edge
        self._heartbeat = heartbeat_seconds
        self._max_backoff = max_backoff_seconds
        self._publish_timeout = publish_timeout_seconds
        self._spool = spool
        self._wake = asyncio.Event()
        self._held: list[RequestEvent] | None = None
        #: The sampled bodies of the batch last built, and which event list it was.
        self._samples: list[PayloadSample] = []
        self._samples_of: list[RequestEvent] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_sent = 0.0
        self.bus_state = "connected"
        self.batches_sent = 0
        self.events_sent = 0
        self.publish_failures = 0

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Start the background task (idempotent)."""
        if self._task is None:
            self._buffer.on_batch_ready(self._batch_max, self._wake.set)
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="modelmonitor-shipper"
            )

    async def stop(self, flush_seconds: float = 5.0) -> None:
        """Flush everything left (for at most ``flush_seconds``), then stop."""
        self._buffer.on_batch_ready(0, None)
        task, self._task = self._task, None
        await cancel_and_wait([task])
        try:
            async with asyncio.timeout(flush_seconds):
                while self._held is not None or len(self._buffer):
                    if not await self._send_one():
                        await asyncio.sleep(0.05)
        except TimeoutError:
            lost = len(self._buffer) + len(self._held or ())
            log.warning("shipper stopped with %d undelivered events (bus unavailable)", lost)

    # -- internals ---------------------------------------------------------

    def stats(self) -> ProxyStats:
        """The proxy's current state, as sent with every batch."""
        buffer = self._buffer
        return ProxyStats(
            proxy_id=self.proxy_id,
            sent_at=time.time(),
            buffer_size=buffer.size,
            buffer_capacity=buffer.capacity,
            dropped_total=buffer.dropped_total,
            captured_total=buffer.captured_total,
            in_flight=self._in_flight(),
            bus_state=self.bus_state,
            spooled=self._spool.spooled if self._spool is not None else 0,
            edge=self._edge(),
        )

    def _batch(self, events: list[RequestEvent]) -> EventBatch:
        """The batch for ``events``, with their sampled bodies (kept for retries)."""
        sink = self._buffer.samples
        if sink is None:
            return EventBatch(self.stats(), events)
        if events is not self._samples_of:
            self._samples = sink.pop_for(events)
            self._samples_of = events
        return EventBatch(self.stats(), events, self._samples)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.0
        while True:
            if backoff and self._spool is not None:
                await self._spill_while_waiting(backoff)
            elif backoff:
                await asyncio.sleep(backoff)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            self._wake.clear()
            due_heartbeat = loop.time() - self._last_sent >= self._heartbeat
            sent_any = False
            # Bounded: at most what was buffered when this round started, plus one.
            for _ in range(len(self._buffer) // self._batch_max + 2):
                if self._held is None and not len(self._buffer) and (sent_any or not due_heartbeat):
                    break
                if not await self._send_one():
                    backoff = min(self._max_backoff, backoff * 2 if backoff else 0.1)
                    break
                sent_any = True
                backoff = 0.0

    async def _send_one(self) -> bool:
        """Publish the held batch (or the next one); ``False`` when the bus is down."""
        if self._held is None:
            self._held = self._buffer.take(self._batch_max)
        events = self._held
        body = encode_batch(self._batch(events))
        try:
            async with asyncio.timeout(self._publish_timeout):  # a hung broker is a down one
                if self._spool is not None and self._spool.spooled:
                    await self._replay_spool()
                await self._bus.publish(body)
        except _BUS_DOWN as exc:
            self.publish_failures += 1
            if self.bus_state != "disconnected":
                log.warning("event bus unavailable (%s); holding events and retrying", exc)
            self.bus_state = "disconnected"
            if self._spool is not None:
                await self._spill(body, events)
            return False
        if self.bus_state != "connected":
            log.info("event bus available again")
        self.bus_state = "connected"
        self._held = None
        self._buffer.delivered(len(events))
        self.batches_sent += 1
        self.events_sent += len(events)
        self._last_sent = asyncio.get_running_loop().time()
        return True

    async def _spill_while_waiting(self, seconds: float) -> None:
        """Back off from the bus, but keep moving new events to the spool meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self._interval, left)):
                    await self._wake.wait()
            self._wake.clear()
            held = self._held or []
            await self._spill(encode_batch(self._batch(held)), held)

    async def _spill(self, body: bytes, events: list[RequestEvent]) -> None:
        """The bus is down: move the held batch and everything buffered to the spool,
        so the memory buffer keeps room for new requests (bounded by the spool size)."""
        assert self._spool is not None
        while True:
            if events:
                if not await self._spool.put(body, len(events)):
                    return  # spool full: the batch stays held in memory
                self._buffer.delivered(len(events))
            self._held = None
            events = self._buffer.take(self._batch_max)
            if not events:
                return
            self._held = events
            body = encode_batch(self._batch(events))

    async def _replay_spool(self) -> None:
        """Deliver spooled batches, oldest first, before new ones."""
        assert self._spool is not None
        for _ in range(10_000):  # bounded; the rest waits for the next round
            item = await self._spool.take()
            if item is None:
                return
            body, count = item
            try:
                await self._bus.publish(body)
            except BaseException:
                await self._spool.give_back(body, count)
                raise
            self.events_sent += count
