"""A proxy's shipper with an on-disk spool through a bus outage, and across a restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from modelmonitor.bus.memory import MemoryBus
from modelmonitor.events import decode_batch
from modelmonitor.proxy import CaptureBuffer, Shipper
from modelmonitor.proxy.spool import FileSpool
from tests.helpers import make_events


async def drain(bus: MemoryBus) -> list[str]:
    ids: list[str] = []
    stream = bus.consume()
    while bus.depth:
        delivery = await anext(stream)
        ids += [event.id for event in decode_batch(delivery.body).events]
        await delivery.ack()
    return ids


async def test_outage_spills_to_disk_instead_of_dropping(tmp_path: Path) -> None:
    bus = MemoryBus()  # closed: publish raises BusUnavailable, like a broker that is away
    buffer = CaptureBuffer(200)
    spool = FileSpool(tmp_path, max_bytes=50_000_000)
    shipper = Shipper(
        buffer, bus, proxy_id="p", batch_max_events=100, flush_interval_seconds=0.01, spool=spool
    )
    await shipper.start()
    events = make_events(3_000, start=time.time(), spread=1)
    for offset in range(0, len(events), 50):
        for event in events[offset : offset + 50]:
            buffer.append(event)
        await asyncio.sleep(0.02)
    for _ in range(200):
        if spool.spooled + buffer.size == len(events):
            break
        await asyncio.sleep(0.02)
    assert buffer.dropped_total == 0  # 3,000 events through a 200-event buffer
    assert shipper.bus_state == "disconnected"
    assert spool.spooled > 2_500
    await bus.connect()  # the broker is back
    for _ in range(400):
        if spool.spooled == 0 and buffer.size == 0:
            break
        await asyncio.sleep(0.02)
    await shipper.stop()
    delivered = await drain(bus)
    assert delivered == [event.id for event in events]  # all of them, in order
    assert shipper.bus_state == "connected"


async def test_spooled_batches_survive_a_restart(tmp_path: Path) -> None:
    events = make_events(500, start=time.time(), spread=1)
    down = MemoryBus()
    first_buffer = CaptureBuffer(1_000)
    first = Shipper(
        first_buffer,
        down,
        proxy_id="p",
        batch_max_events=100,
        flush_interval_seconds=0.01,
        spool=FileSpool(tmp_path, max_bytes=10_000_000),
    )
    await first.start()
    for event in events:
        first_buffer.append(event)
    for _ in range(200):
        if first_buffer.size == 0:
            break
        await asyncio.sleep(0.02)
    await first.stop(flush_seconds=0.2)  # the proxy exits while the broker is still away

    bus = MemoryBus()
    await bus.connect()
    spool = FileSpool(tmp_path, max_bytes=10_000_000)
    assert spool.spooled == 500
    second = Shipper(
        CaptureBuffer(1_000), bus, proxy_id="p", flush_interval_seconds=0.01, spool=spool
    )
    await second.start()
    for _ in range(200):  # the heartbeat round replays the spool
        if spool.spooled == 0:
            break
        await asyncio.sleep(0.05)
    await second.stop()
    assert await drain(bus) == [event.id for event in events]
