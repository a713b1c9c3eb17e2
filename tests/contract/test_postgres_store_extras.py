"""PostgreSQL-only behaviour beyond the shared contract: migrations, partitions, URLs."""

from __future__ import annotations

import asyncio
import math
import time

import asyncpg
import msgspec

from modelmonitor.bus.rabbitmq import DEFAULT_QUEUE, split_queue
from modelmonitor.live.redis import DEFAULT_PREFIX, split_prefix
from modelmonitor.storage.pg_migrations import apply_migrations, load_migrations
from modelmonitor.storage.postgres import DAY_SECONDS, PostgresStore
from tests.contract.test_store_contract import make_events


def test_backend_urls_keep_their_own_parameters() -> None:
    assert split_queue("amqp://u:p@h:5672/v?queue=q1&heartbeat=30") == (
        "amqp://u:p@h:5672/v?heartbeat=30",
        "q1",
    )
    assert split_queue("amqp://h/") == ("amqp://h/", DEFAULT_QUEUE)
    assert split_prefix("redis://h:6379/2?prefix=mm:a:") == ("redis://h:6379/2", "mm:a:")
    assert split_prefix("redis://h") == ("redis://h", DEFAULT_PREFIX)


def test_migrations_are_numbered_in_order() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    assert migrations[0].version == 1 and migrations[0].sql.strip()


async def test_concurrent_starts_apply_each_migration_once(postgres_url: str) -> None:
    connections = [await asyncpg.connect(postgres_url) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(apply_migrations(c) for c in connections))
        assert sorted(len(batch) for batch in applied) == [0, 0, 0, len(load_migrations())]
        rows = await connections[0].fetch("SELECT version FROM schema_migrations")
        assert [row[0] for row in rows] == [m.version for m in load_migrations()]
    finally:
        for connection in connections:
            await connection.close()
    assert await PostgresStore(postgres_url).upgrade() == []


async def test_partitions_ahead_retention_by_day_and_the_default_partition(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url)
    await store.connect()
    try:
        today = math.floor(time.time() / DAY_SECONDS)
        assert set(range(today - 1, today + 3)) <= set(await store.partitions())
        old_day = today - 10
        old = make_events(50, start=old_day * DAY_SECONDS + 100, spread=600, seed=21)
        odd = [msgspec.structs.replace(e, start=-5.0 - i) for i, e in enumerate(make_events(3))]
        assert await store.write_batch(old + odd) == 53
        assert old_day in await store.partitions()
        assert await store.count_events() == 53
        raw, _ = await store.delete_before(raw_before=(old_day + 1) * DAY_SECONDS, rollups_before=0)
        assert raw == 53
        assert old_day not in await store.partitions()
        assert await store.count_events() == 0
    finally:
        await store.close()
