"""PostgreSQL event store (``postgresql://user@host:5432/db``) on asyncpg.

- Schema from versioned migrations, applied at connect (see :mod:`.pg_migrations`).
- Batches go in with COPY into a per-connection temporary staging table, then one
  ``INSERT ... SELECT ... ON CONFLICT (start, id) DO NOTHING RETURNING id``; only
  the rows that statement returns update rollups and services, in the same
  transaction, so storage and rollups are exactly-once however many workers
  receive the same batch.
- Rollups are read-merge-written under row locks taken in key order (missing
  rows are inserted first, then every row is ``SELECT ... FOR UPDATE``-ed), so
  concurrent workers merge latency sketches without losing counts.
- Raw events are partitioned by day; the store creates partitions ahead and
  drops whole days for retention.
- Rollups come in three tiers (minute, hour, day: ``rollups``, ``rollups_hour``,
  ``rollups_day``), each updated in the same transaction.
- Where the timescaledb extension is installed in the database, raw events are a
  hypertable compressed after ``compress_after_seconds`` and the three tiers are
  continuous aggregates (see :mod:`._timescale`); the store then writes events only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from modelmonitor._tasks import Supervisor
from modelmonitor.aggregate import Aggregate
from modelmonitor.events import SQL_IS_ERROR, RequestEvent
from modelmonitor.storage import _timescale
from modelmonitor.storage.base import (
    EVENT_FIELDS,
    MODEL_FIELDS,
    ROLLUP_SECONDS,
    RequestFilter,
    RollupRow,
    RollupTier,
    ServiceSummary,
    event_from_row,
)
from modelmonitor.storage.model_rollups import (
    MODEL_ROLLUP_COLUMNS,
    DimensionCaps,
    ModelRollup,
    aggregate_model_rollups,
    model_rollup_from_row,
    model_rollup_values,
)
from modelmonitor.storage.pg_migrations import Migration, apply_migrations
from modelmonitor.storage.rollups import (
    ROLLUP_COLUMNS,
    RollupKey,
    aggregate_rollups,
    downsample,
    merge_row,
    rollup_from_row,
    rollup_values,
)
from modelmonitor.types import Clock

__all__ = ["DAY_SECONDS", "PostgresStore", "partition_name"]

log = logging.getLogger("modelmonitor.storage.postgres")

DAY_SECONDS = 86_400
#: pg_advisory_xact_lock key serialising partition DDL ("mmpart").
_PARTITION_LOCK = 0x6D6D70617274
#: The migration that created the hour and day tiers (010_rollup_tiers).
_TIERS_MIGRATION = 10
#: pg_advisory_xact_lock key serialising the one-time tier backfill ("mmtier").
_BACKFILL_LOCK = 0x6D6D74696572
_DAYS_AHEAD = 2
_DAYS_ACCEPTED_AHEAD = 7

_EVENT_FIELDS = EVENT_FIELDS
_EVENT_COLUMNS = ", ".join(_EVENT_FIELDS)
_PG_TYPES = {str: "text", int: "int8", float: "float8", bool: "bool"}
_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS mm_staging ("
    ' id text COLLATE "C", start float8, service text COLLATE "C", method text, route text,'
    " path text,"
    " status int4, latency_seconds float8, ttfb_seconds float8, request_bytes int8,"
    " response_bytes int8, error text, model text, client text"
    + "".join(f", {name} {_PG_TYPES[kind]}" for name, kind in MODEL_FIELDS.items())
    + ") ON COMMIT DELETE ROWS"
)
_ROLLUP_COLUMNS = ", ".join(ROLLUP_COLUMNS)
_MODEL_COLUMNS = ", ".join(MODEL_ROLLUP_COLUMNS)
_KEYS = (
    "unnest($1::float8[], $2::text[], $3::text[], $4::text[]) AS k(bucket, service, method, route)"
)


def partition_name(day: int) -> str:
    """The raw-events partition holding Unix day ``day``."""
    return f"events_d{day}"


async def _init_connection(connection: Any) -> None:
    await connection.execute(_STAGING)


class PostgresStore:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        maintenance_every_seconds: float = 3600.0,
        compress_after_seconds: float = 7 * 86400.0,
        clock: Clock = time.time,
    ) -> None:
        self.url = url
        self._compress_after = compress_after_seconds
        #: TimescaleDB: events are a hypertable, the tiers continuous aggregates.
        self.timescale = False
        self._pool_size = pool_size
        self._maintenance_every = maintenance_every_seconds
        self._clock = clock
        #: Distinct models and consumers per service in the model rollups.
        self.caps = DimensionCaps()
        self._pool: Any = None
        self._partitioned = False
        self._known_days: set[int] = set()
        self._outside: set[int] = set()  # days left to the default partition
        self._maintenance = Supervisor("store")

    async def upgrade(self) -> list[Migration]:
        """Apply pending schema migrations (``modelmonitor db upgrade``); return them."""
        import asyncpg  # type: ignore[import-untyped,unused-ignore]

        connection = await asyncpg.connect(self.url)
        try:
            return await apply_migrations(connection)
        finally:
            await connection.close()

    async def connect(self) -> None:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]

        applied = await self.upgrade()
        for migration in applied:
            log.info("applied migration %03d_%s", migration.version, migration.name)
        self._pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=self._pool_size, init=_init_connection
        )
        self._partitioned = bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table"
                " WHERE partrelid = 'events'::regclass)"
            )
        )
        self.caps.seed(
            (row[0], row[1], row[2])
            for row in await self._pool.fetch(
                "SELECT DISTINCT service, model, consumer FROM model_rollups"
            )
        )
        self.timescale = await _timescale.is_timescale(self._pool)
        if self.timescale:
            await _timescale.set_compression(
                self._pool, compress_after_seconds=self._compress_after
            )
        else:
            await self._backfill_tiers()
        await self.maintain_partitions()
        self._maintenance.spawn("partitions", self._maintain_forever)

    async def close(self) -> None:
        await self._maintenance.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("store is not connected")
        return self._pool

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def _backfill_tiers(self) -> None:
        """Once per database: fill the hour and day tiers from the minute rows stored
        before migration 010 created them (later writes update every tier)."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _BACKFILL_LOCK)
            if await connection.fetchval("SELECT count(*) FROM rollup_backfill"):
                return
            applied = await connection.fetchval(
                "SELECT extract(epoch FROM applied_at)::float8 FROM schema_migrations"
                " WHERE version = $1",
                _TIERS_MIGRATION,
            )
            # Minutes from the upgrade on were written to every tier already.
            cutover = math.floor(applied / ROLLUP_SECONDS) * ROLLUP_SECONDS
            first = await connection.fetchval(
                "SELECT min(bucket) FROM rollups WHERE bucket < $1", cutover
            )
            day = math.floor(first / DAY_SECONDS) * DAY_SECONDS if first is not None else cutover
            while day < cutover:
                found = await connection.fetch(
                    f"SELECT {_ROLLUP_COLUMNS} FROM rollups WHERE bucket >= $1 AND bucket < $2",
                    day,
                    min(day + DAY_SECONDS, cutover),
                )
                minutes = [rollup_from_row(row) for row in found]
                for tier in (RollupTier.HOUR, RollupTier.DAY):
                    rows = downsample(minutes, seconds=tier)
                    if rows:
                        await self._merge_into(connection, rows, tier)
                day += DAY_SECONDS
            await connection.execute("INSERT INTO rollup_backfill VALUES ($1)", self._clock())

    # -- partitions ---------------------------------------------------------------

    async def partitions(self) -> list[int]:
        """The days that have their own raw-events partition."""
        rows = await self.pool.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_d[0-9]+$'"
        )
        return sorted(int(row[0].removeprefix("events_d")) for row in rows)

    async def maintain_partitions(self) -> None:
        """Create partitions from yesterday to ``_DAYS_AHEAD`` days ahead."""
        if not self._partitioned:
            return
        self._known_days = set(await self.partitions())
        self._outside.clear()
        today = math.floor(self._clock() / DAY_SECONDS)
        await self._ensure_partitions(range(today - 1, today + _DAYS_AHEAD + 1))

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self._maintenance_every)
            try:
                await self.maintain_partitions()
            except Exception as exc:  # noqa: BLE001 - retried on the next round
                log.warning("partition maintenance failed: %s", exc)

    async def _ensure_partitions(self, days: Iterable[int]) -> None:
        """Create the missing daily partitions. Days more than a year old or more than
        a week ahead (a client with a broken clock) stay in the default partition."""
        today = math.floor(self._clock() / DAY_SECONDS)
        plausible = {day for day in days if today - 366 <= day <= today + _DAYS_ACCEPTED_AHEAD}
        missing = sorted(plausible - self._known_days)
        if not missing or not self._partitioned:
            return
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _PARTITION_LOCK)
            for day in missing:
                try:
                    async with connection.transaction():
                        await connection.execute(
                            f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF events"
                            f" FOR VALUES FROM ({day * DAY_SECONDS}) TO ({(day + 1) * DAY_SECONDS})"
                        )
                except Exception as exc:  # noqa: BLE001 - its rows stay in the default partition
                    log.warning("cannot create partition for day %d: %s", day, exc)
        self._known_days.update(missing)

    # -- writes -------------------------------------------------------------------

    async def write_batch(self, events: Sequence[RequestEvent]) -> int:
        if not events:
            return 0
        unique: dict[str, RequestEvent] = {}
        for event in events:
            unique.setdefault(event.id, event)  # duplicates inside one batch count once
        days = {math.floor(event.start / DAY_SECONDS) for event in unique.values()}
        if not days <= self._known_days | self._outside:
            await self._ensure_partitions(days)
            self._outside.update(days - self._known_days)
        records = [msgspec.structs.astuple(event) for event in unique.values()]
        # TimescaleDB: the hypertable's time column is a timestamptz copy of start.
        columns, values = _EVENT_COLUMNS, _EVENT_COLUMNS
        if self.timescale:
            columns, values = f"{_EVENT_COLUMNS}, ts", f"{_EVENT_COLUMNS}, to_timestamp(start)"
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.copy_records_to_table(
                "mm_staging", records=records, columns=_EVENT_FIELDS
            )
            # One statement: insert the new events, and add them (only them) to the
            # services' totals, locking service rows in name order.
            rows = await connection.fetch(
                f"WITH fresh AS (INSERT INTO events ({columns})"
                f" SELECT {values} FROM mm_staging ORDER BY start, id"
                " ON CONFLICT DO NOTHING RETURNING id, start, service),"
                " summary AS (INSERT INTO services (name, first_seen, last_seen, requests)"
                " SELECT service, min(start), max(start), count(*) FROM fresh"
                " GROUP BY service ORDER BY service"
                " ON CONFLICT (name) DO UPDATE SET"
                " first_seen = LEAST(services.first_seen, excluded.first_seen),"
                " last_seen = GREATEST(services.last_seen, excluded.last_seen),"
                " requests = services.requests + excluded.requests)"
                " SELECT id FROM fresh"
            )
            if not rows:
                return 0
            fresh = [unique[row[0]] for row in rows]
            if not self.timescale:
                for tier in RollupTier:
                    await self._update_rollups(connection, fresh, tier)
            await self._update_model_rollups(connection, fresh)
        if self.timescale:
            await _timescale.refresh_after_write(
                self.pool,
                oldest=min(event.start for event in fresh),
                newest=max(event.start for event in fresh),
                now=self._clock(),
            )
        return len(fresh)

    @staticmethod
    async def _update_rollups(
        connection: Any, events: Sequence[RequestEvent], tier: RollupTier
    ) -> None:
        await PostgresStore._merge_into(connection, aggregate_rollups(events, seconds=tier), tier)

    @staticmethod
    async def _merge_into(
        connection: Any, new: dict[RollupKey, Aggregate], tier: RollupTier
    ) -> None:
        """Add aggregates into a tier's table (row locks in key order, as in write_batch)."""
        table = tier.table
        keys = sorted(new, key=lambda key: (key[1], key[0], key[2], key[3]))
        columns = (
            [key[0] for key in keys],
            [key[1] for key in keys],
            [key[2] for key in keys],
            [key[3] for key in keys],
        )
        # Take every row lock in primary-key order: first create the missing rows
        # (empty placeholders), then lock them all.
        await connection.execute(
            f"INSERT INTO {table} ({_ROLLUP_COLUMNS})"
            " SELECT bucket, service, method, route, 0, 0, '{}', 0, 0, 0, ''::bytea, ''::bytea"
            f" FROM {_KEYS} ORDER BY service, bucket, method, route"
            " ON CONFLICT (service, bucket, method, route) DO NOTHING",
            *columns,
        )
        existing = await connection.fetch(
            f"SELECT {', '.join('r.' + c for c in ROLLUP_COLUMNS)}"
            f" FROM {table} r JOIN {_KEYS} USING (bucket, service, method, route)"
            " ORDER BY r.service, r.bucket, r.method, r.route FOR UPDATE OF r",
            *columns,
        )
        merged: list[RollupRow] = []
        for found in existing:
            current = rollup_from_row(found)
            key = (current.bucket, current.service, current.method, current.route)
            merged.append(merge_row(current, key, new[key]))
        await connection.executemany(
            f"UPDATE {table} SET requests = $5, errors = $6, status_classes = $7::jsonb,"
            " request_bytes = $8, response_bytes = $9, latency_sum_seconds = $10,"
            " latency_sketch = $11, measures = $12"
            " WHERE bucket = $1 AND service = $2 AND method = $3 AND route = $4",
            [rollup_values(row) for row in merged],
        )

    async def _update_model_rollups(self, connection: Any, events: Sequence[RequestEvent]) -> None:
        new = aggregate_model_rollups(events, self.caps)
        if not new:
            return
        keys = sorted(new, key=lambda key: (key[1], key[0], key[2], key[3]))
        columns = [[key[i] for key in keys] for i in range(4)]
        unnest = (
            "unnest($1::float8[], $2::text[], $3::text[], $4::text[])"
            " AS k(bucket, service, model, consumer)"
        )
        # Same locking as the route rollups: placeholders first, then every row in
        # primary-key order.
        await connection.execute(
            f"INSERT INTO model_rollups ({_MODEL_COLUMNS})"
            " SELECT bucket, service, model, consumer, 0, 0, '{}', 0, 0, 0, ''::bytea, ''::bytea"
            f" FROM {unnest} ORDER BY service, bucket, model, consumer"
            " ON CONFLICT (service, bucket, model, consumer) DO NOTHING",
            *columns,
        )
        existing = await connection.fetch(
            f"SELECT {', '.join('r.' + c for c in MODEL_ROLLUP_COLUMNS)}"
            f" FROM model_rollups r JOIN {unnest} USING (bucket, service, model, consumer)"
            " ORDER BY r.service, r.bucket, r.model, r.consumer FOR UPDATE OF r",
            *columns,
        )
        values = []
        for found in existing:
            current = model_rollup_from_row(found)
            key = (current.bucket, current.service, current.model, current.consumer)
            total = current.aggregate()
            total.merge(new[key])
            values.append(model_rollup_values(key, total))
        await connection.executemany(
            "UPDATE model_rollups SET requests = $5, errors = $6, status_classes = $7::jsonb,"
            " request_bytes = $8, response_bytes = $9, latency_sum_seconds = $10,"
            " latency_sketch = $11, measures = $12"
            " WHERE bucket = $1 AND service = $2 AND model = $3 AND consumer = $4",
            values,
        )

    # -- reads --------------------------------------------------------------------

    async def model_rollups(
        self,
        *,
        start: float,
        end: float,
        service: str,
        model: str | None = None,
        consumer: str | None = None,
    ) -> list[ModelRollup]:
        clauses = ["service = $1", "bucket >= $2", "bucket < $3"]
        params: list[Any] = [service, start, end]
        for column, value in (("model", model), ("consumer", consumer)):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        rows = await self.pool.fetch(
            f"SELECT {_MODEL_COLUMNS} FROM model_rollups WHERE {' AND '.join(clauses)}"
            " ORDER BY bucket, model, consumer",
            *params,
        )
        return [model_rollup_from_row(row) for row in rows]

    async def count_events(self, *, service: str | None = None) -> int:
        if service is None:
            value = await self.pool.fetchval("SELECT count(*) FROM events")
        else:
            value = await self.pool.fetchval(
                "SELECT count(*) FROM events WHERE service = $1", service
            )
        return int(value)

    async def services(self) -> list[ServiceSummary]:
        rows = await self.pool.fetch(
            "SELECT name, first_seen, last_seen, requests FROM services ORDER BY name"
        )
        return [
            ServiceSummary(name=r[0], first_seen=r[1], last_seen=r[2], requests=r[3]) for r in rows
        ]

    async def rollups(
        self,
        *,
        start: float,
        end: float,
        service: str | None = None,
        route: str | None = None,
        tier: RollupTier = RollupTier.MINUTE,
    ) -> list[RollupRow]:
        tier = RollupTier(tier)
        if self.timescale:
            return await _timescale.read_rollups(
                self.pool, tier=tier, start=start, end=end, service=service, route=route
            )
        clauses = ["bucket >= $1", "bucket < $2"]
        params: list[Any] = [start, end]
        for column, value in (("service", service), ("route", route)):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        rows = await self.pool.fetch(
            f"SELECT {_ROLLUP_COLUMNS} FROM {tier.table} WHERE {' AND '.join(clauses)}"
            " ORDER BY bucket, service, method, route",
            *params,
        )
        return [rollup_from_row(row) for row in rows]

    async def recent_requests(self, query: RequestFilter) -> list[RequestEvent]:
        clauses: list[str] = []
        params: list[Any] = []

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        for column, value in (
            ("service", query.service),
            ("route", query.route),
            ("method", query.method),
            ("model", query.model),
            ("consumer", query.consumer),
        ):
            if value is not None:
                clauses.append(f"{column} = {param(value)}")
        if query.status_class is not None:
            if query.status_class == "err":
                clauses.append("status = 0")
            else:
                low = int(query.status_class[0]) * 100
                clauses.append(f"status >= {param(low)} AND status < {param(low + 100)}")
        if query.errors_only:
            clauses.append(SQL_IS_ERROR)
        if query.min_latency_seconds is not None:
            clauses.append(f"latency_seconds >= {param(query.min_latency_seconds)}")
        if query.start is not None:
            clauses.append(f"start >= {param(query.start)}")
        if query.end is not None:
            clauses.append(f"start < {param(query.end)}")
        if query.before is not None:
            clauses.append(f"(start, id) < ({param(query.before[0])}, {param(query.before[1])})")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.pool.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events {where}"
            f" ORDER BY start DESC, id DESC LIMIT {param(query.limit)}",
            *params,
        )
        return [event_from_row(row) for row in rows]

    # -- retention ----------------------------------------------------------------

    async def delete_before(
        self,
        *,
        raw_before: float,
        rollups_before: float,
        tiers_before: Mapping[RollupTier, float] | None = None,
    ) -> tuple[int, int]:
        """Drop whole days older than ``raw_before``, then delete the remaining older rows."""
        limits = {**(tiers_before or {}), RollupTier.MINUTE: rollups_before}
        if rollups_before:
            await self.pool.execute("DELETE FROM model_rollups WHERE bucket < $1", rollups_before)
        if self.timescale:
            return await _timescale.delete_before(
                self.pool, raw_before=raw_before, tiers_before=limits
            )
        raw = 0
        if self._partitioned:
            for day in await self.partitions():
                if (day + 1) * DAY_SECONDS > raw_before:
                    continue
                async with self.pool.acquire() as connection, connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", _PARTITION_LOCK)
                    name = partition_name(day)
                    exists = await connection.fetchval("SELECT to_regclass($1)", name)
                    if exists is None:
                        continue
                    raw += int(await connection.fetchval(f"SELECT count(*) FROM {name}"))
                    await connection.execute(f"DROP TABLE {name}")
                self._known_days.discard(day)
        async with self.pool.acquire() as connection, connection.transaction():
            status = await connection.execute("DELETE FROM events WHERE start < $1", raw_before)
            raw += int(status.split()[-1])
            rolled = 0
            for tier, before in limits.items():
                if before:
                    status = await connection.execute(
                        f"DELETE FROM {tier.table} WHERE bucket < $1", before
                    )
                    rolled += int(status.split()[-1])
        return raw, rolled
