"""The worker against a real SQLite store that fails, and against garbage on the bus."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from modelmonitor.bus.memory import MemoryBus
from modelmonitor.events import encode_batch
from modelmonitor.live.memory import MemoryLiveState
from modelmonitor.pipeline.worker import Worker
from modelmonitor.storage.sqlite import SQLiteStore
from tests.helpers import make_batch, make_events


async def test_store_outage_keeps_messages_until_it_commits(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SQLiteStore(f"sqlite:///{path}?busy_timeout_ms=20")
    await store.connect()
    bus = MemoryBus()
    await bus.connect()
    worker = Worker(bus=bus, store=store, live=MemoryLiveState())
    await worker.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database: writes fail
    try:
        events = make_events(500, start=time.time() - 10, spread=5)
        await bus.publish(encode_batch(make_batch(events)))
        for _ in range(100):
            if worker.stats.store_failures_total >= 2:
                break
            await asyncio.sleep(0.05)
        assert worker.stats.store_failures_total >= 2
        assert not worker.stats.store_ok
        assert worker.stats.batches_total == 0  # nothing acked while the store is down
        blocker.execute("COMMIT")
        await asyncio.wait_for(bus.join(), timeout=10)
        assert await store.count_events() == 500
        assert worker.stats.store_ok
        assert worker.stats.events_stored_total == 500
    finally:
        blocker.close()
        await worker.stop()
        await bus.close()
        await store.close()


async def test_garbage_is_dropped_and_counted(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'events.db'}")
    await store.connect()
    bus = MemoryBus()
    await bus.connect()
    worker = Worker(bus=bus, store=store, live=MemoryLiveState())
    await worker.start()
    try:
        await bus.publish(b"\x00not msgpack")
        await bus.publish(encode_batch(make_batch(make_events(10, start=time.time(), spread=1))))
        await asyncio.wait_for(bus.join(), timeout=5)
        assert worker.stats.rejected_total == 1
        assert await store.count_events() == 10
    finally:
        await worker.stop()
        await bus.close()
        await store.close()
