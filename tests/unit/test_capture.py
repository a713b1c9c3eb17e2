"""CaptureBuffer bounds and counts; Shipper batches, heartbeats, survives outages, flushes."""

from __future__ import annotations

import asyncio
import time

import msgspec

from modelmonitor.bus.base import BusUnavailable
from modelmonitor.bus.memory import MemoryBus
from modelmonitor.events import EventBatch, EventIdFactory, RequestEvent, decode_batch
from modelmonitor.proxy.capture import CaptureBuffer, Shipper

_ids = EventIdFactory()


def event(index: int = 0) -> RequestEvent:
    return RequestEvent(
        _ids(), time.time(), "svc", "GET", "/r/{id}", f"/r/{index}", 200, 0.01, 0.005, 0, 10
    )


def test_buffer_appends_until_full_then_drops_and_counts() -> None:
    buffer = CaptureBuffer(3)
    assert [buffer.append(event(i)) for i in range(5)] == [True, True, True, False, False]
    assert (buffer.size, buffer.capacity) == (3, 3)
    assert (buffer.captured_total, buffer.dropped_total) == (3, 2)


def test_in_transit_events_count_against_capacity() -> None:
    buffer = CaptureBuffer(4)
    for index in range(4):
        buffer.append(event(index))
    batch = buffer.take(3)
    assert len(batch) == 3 and len(buffer) == 1 and buffer.size == 4
    assert not buffer.append(event())  # the shipper still holds 3
    buffer.delivered(3)
    assert buffer.size == 1
    assert buffer.append(event())


def test_take_keeps_order_and_limits() -> None:
    buffer = CaptureBuffer(100)
    events = [event(i) for i in range(10)]
    for item in events:
        buffer.append(item)
    assert buffer.take(4) == events[:4]
    assert buffer.take(100) == events[4:]
    assert buffer.take(5) == []


def test_batch_ready_callback_fires_at_threshold() -> None:
    buffer = CaptureBuffer(100)
    calls: list[int] = []
    buffer.on_batch_ready(3, lambda: calls.append(len(buffer)))
    for index in range(7):
        buffer.append(event(index))
    assert calls == [3]


async def drain(bus: MemoryBus, into: list[EventBatch]) -> None:
    async for delivery in bus.consume():
        into.append(decode_batch(delivery.body))
        await delivery.ack()


async def test_shipper_delivers_batches_that_decode() -> None:
    bus = MemoryBus()
    await bus.connect()
    buffer = CaptureBuffer(1000)
    shipper = Shipper(
        buffer,
        bus,
        proxy_id="p1",
        batch_max_events=10,
        flush_interval_seconds=0.02,
        in_flight=lambda: {"svc": 2},
    )
    received: list[EventBatch] = []
    consumer = asyncio.create_task(drain(bus, received))
    await shipper.start()
    sent = [event(i) for i in range(25)]
    for item in sent:
        buffer.append(item)
    for _ in range(200):
        if sum(len(b.events) for b in received) >= 25:
            break
        await asyncio.sleep(0.01)
    await shipper.stop()
    await bus.close()
    await consumer
    got = [e for batch in received for e in batch.events]
    assert got == sent
    assert all(len(batch.events) <= 10 for batch in received)
    stats = received[-1].stats
    assert stats.proxy_id == "p1" and stats.in_flight == {"svc": 2}
    assert stats.buffer_capacity == 1000 and stats.captured_total == 25
    assert buffer.size == 0


async def test_full_batch_ships_before_the_interval() -> None:
    bus = MemoryBus()
    await bus.connect()
    buffer = CaptureBuffer(1000)
    shipper = Shipper(buffer, bus, proxy_id="p", batch_max_events=5, flush_interval_seconds=30)
    await shipper.start()
    await asyncio.sleep(0.05)  # the first round (a heartbeat) is out of the way
    before = bus.published_total
    for index in range(5):
        buffer.append(event(index))
    for _ in range(100):
        if bus.published_total > before:
            break
        await asyncio.sleep(0.01)
    assert bus.published_total > before
    await shipper.stop()


async def test_heartbeat_when_idle() -> None:
    bus = MemoryBus()
    await bus.connect()
    shipper = Shipper(
        CaptureBuffer(10),
        bus,
        proxy_id="idle",
        flush_interval_seconds=0.02,
        heartbeat_seconds=0.1,
    )
    received: list[EventBatch] = []
    consumer = asyncio.create_task(drain(bus, received))
    await shipper.start()
    await asyncio.sleep(0.45)
    await shipper.stop()
    await bus.close()
    await consumer
    assert len(received) >= 3
    assert all(batch.events == [] for batch in received)
    assert all(batch.stats.proxy_id == "idle" for batch in received)


class FlakyBus:
    """A bus double: raises BusUnavailable while ``down`` (the bus is a network boundary)."""

    url = "flaky://"

    def __init__(self) -> None:
        self.down = False
        self.bodies: list[bytes] = []
        self.attempts = 0

    @property
    def connected(self) -> bool:
        return not self.down

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def publish(self, body: bytes) -> None:
        self.attempts += 1
        if self.down:
            raise BusUnavailable("broker unreachable")
        self.bodies.append(body)

    def consume(self, *, prefetch: int = 16) -> msgspec.Struct:  # pragma: no cover - unused
        raise NotImplementedError

    def events(self) -> list[RequestEvent]:
        return [e for body in self.bodies for e in decode_batch(body).events]


async def test_outage_loses_nothing_and_recovers() -> None:
    bus = FlakyBus()
    buffer = CaptureBuffer(1000)
    shipper = Shipper(
        buffer,
        bus,  # type: ignore[arg-type]
        proxy_id="p",
        batch_max_events=7,
        flush_interval_seconds=0.01,
        max_backoff_seconds=0.05,
    )
    await shipper.start()
    sent = [event(i) for i in range(10)]
    for item in sent[:5]:
        buffer.append(item)
    await asyncio.sleep(0.05)
    bus.down = True
    for item in sent[5:]:
        buffer.append(item)
    await asyncio.sleep(0.3)
    assert shipper.bus_state == "disconnected"
    attempts = bus.attempts
    assert attempts >= 3  # retrying, with backoff
    assert buffer.size == 5  # held, bounded by the buffer
    bus.down = False
    for _ in range(200):
        if len(bus.events()) >= 10:
            break
        await asyncio.sleep(0.01)
    assert shipper.bus_state == "connected"
    assert sorted(e.id for e in bus.events()) == sorted(e.id for e in sent)
    # The batch held through the outage tells the consumer about it.
    assert any(decode_batch(body).stats.bus_state == "disconnected" for body in bus.bodies)
    await shipper.stop()


async def test_outage_reports_disconnected_and_buffer_stays_bounded() -> None:
    bus = FlakyBus()
    bus.down = True
    buffer = CaptureBuffer(20)
    shipper = Shipper(
        buffer,
        bus,  # type: ignore[arg-type]
        proxy_id="p",
        batch_max_events=8,
        flush_interval_seconds=0.01,
        max_backoff_seconds=0.02,
    )
    await shipper.start()
    for index in range(50):
        buffer.append(event(index))
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)
    assert buffer.size <= 20
    assert buffer.dropped_total == 30
    bus.down = False
    for _ in range(200):
        if len(bus.events()) >= 20:
            break
        await asyncio.sleep(0.01)
    assert len(bus.events()) == 20
    stats = decode_batch(bus.bodies[-1]).stats
    assert stats.dropped_total == 30 and stats.captured_total == 20
    await shipper.stop()


async def test_stop_flushes_what_is_left() -> None:
    bus = MemoryBus()
    await bus.connect()
    buffer = CaptureBuffer(10_000)
    shipper = Shipper(buffer, bus, proxy_id="p", batch_max_events=100, flush_interval_seconds=60)
    await shipper.start()
    await asyncio.sleep(0.02)
    for index in range(250):
        buffer.append(event(index))
    await shipper.stop()
    assert buffer.size == 0
    await bus.close()
    received: list[EventBatch] = []
    await bus.connect()
    while bus.depth:
        async for delivery in bus.consume():
            received.append(decode_batch(delivery.body))
            await delivery.ack()
            if not bus.depth:
                break
    assert sum(len(batch.events) for batch in received) == 250


async def test_stop_gives_up_after_its_deadline_when_the_bus_is_down() -> None:
    bus = FlakyBus()
    bus.down = True
    buffer = CaptureBuffer(100)
    shipper = Shipper(buffer, bus, proxy_id="p", flush_interval_seconds=0.01)  # type: ignore[arg-type]
    await shipper.start()
    buffer.append(event())
    started = time.monotonic()
    await shipper.stop(flush_seconds=0.2)
    assert time.monotonic() - started < 1.0
    assert buffer.size == 1


async def test_a_hung_publish_counts_as_an_outage() -> None:
    class HungBus(FlakyBus):
        hang = True

        async def publish(self, body: bytes) -> None:
            if self.hang:
                await asyncio.sleep(10)
            await super().publish(body)

    bus = HungBus()
    buffer = CaptureBuffer(100)
    shipper = Shipper(
        buffer,
        bus,  # type: ignore[arg-type]
        proxy_id="p",
        flush_interval_seconds=0.01,
        max_backoff_seconds=0.02,
        publish_timeout_seconds=0.05,
    )
    await shipper.start()
    buffer.append(event())
    await asyncio.sleep(0.2)
    assert shipper.bus_state == "disconnected"
    bus.hang = False
    for _ in range(200):
        if bus.events():
            break
        await asyncio.sleep(0.01)
    assert len(bus.events()) == 1
    await shipper.stop()
