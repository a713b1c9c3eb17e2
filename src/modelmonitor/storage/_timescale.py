"""The TimescaleDB parts of the PostgreSQL store (used when the extension is installed
in the database): compression policy, reading the continuous aggregates, refreshing
them after writes to the older past, and per-tier retention.

The schema (hypertable, continuous aggregates ``rollups``, ``rollups_hour`` and
``rollups_day``, their refresh policies) is in migrations 001 and 002.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import msgspec

from modelmonitor.aggregate import Aggregate
from modelmonitor.sketch import LatencySketch
from modelmonitor.storage.base import RollupRow, RollupTier
from modelmonitor.storage.rollups import to_row

__all__ = [
    "REFRESHED_BY_POLICY_SECONDS",
    "delete_before",
    "is_timescale",
    "read_rollups",
    "refresh_after_write",
    "set_compression",
]

#: The minute aggregate's policy refreshes the last 3 hours every minute; events
#: older than this (less a margin) are refreshed by the writer itself.
REFRESHED_BY_POLICY_SECONDS = 2.5 * 3600
_REFRESH_ATTEMPTS = 40
#: pg_advisory_xact_lock key serialising policy changes ("mmtsdb").
_POLICY_LOCK = 0x6D6D74736462
_counts = msgspec.json.Decoder(dict[str, int])
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "err")
_COLUMNS = (
    "extract(epoch FROM bucket)::float8, service, method, route, requests, errors, "
    + ", ".join(f"status_{name}" for name in _CLASSES)
    + ", request_bytes, response_bytes, latency_sum_seconds, latency_min, latency_max,"
    " latency_sketch::text, prompt_tokens, completion_tokens, tokens_estimated, streamed,"
    " cost_usd, ttft_sum, ttft_min, ttft_max, ttft_sketch::text, finish_reasons::text"
)


async def is_timescale(pool: Any) -> bool:
    """Whether ``events`` is a hypertable (the extension was installed at migration)."""
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
            " AND to_regclass('rollup_retention') IS NOT NULL"
        )
    )


async def set_compression(pool: Any, *, compress_after_seconds: float) -> None:
    """Make the compression policy on raw events match ``compress_after_seconds``
    (0 removes it); several processes may do this at once."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _POLICY_LOCK)
        current = await connection.fetchval(
            "SELECT config->>'compress_after' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_compression' AND hypertable_name = 'events'"
            " AND hypertable_schema = current_schema()"
        )
        wanted = float(compress_after_seconds) or None
        if current is not None and wanted is not None:
            same = await connection.fetchval(
                "SELECT $1::text::interval = make_interval(secs => $2)", current, wanted
            )
            if same:
                return
        if current is not None:
            await connection.execute(
                "SELECT remove_compression_policy('events', if_exists => true)"
            )
        if wanted is not None:
            await connection.execute(
                "SELECT add_compression_policy('events',"
                " compress_after => make_interval(secs => $1))",
                wanted,
            )


def _sketch(counts_json: str | None, total: Any, minimum: Any, maximum: Any) -> LatencySketch:
    sketch = LatencySketch()
    counts = _counts.decode(counts_json or "{}")
    zero = counts.pop("z", 0)
    if zero or counts:
        sketch.absorb(
            zero=zero,
            bins={int(key): value for key, value in counts.items()},
            total=float(total or 0.0),
            minimum=None if minimum is None else float(minimum),
            maximum=None if maximum is None else float(maximum),
        )
    return sketch


def _row(record: Any) -> RollupRow:
    """A continuous aggregate's row (in :data:`_COLUMNS` order) as a rollup row."""
    aggregate = Aggregate()
    aggregate.requests = int(record[4])
    aggregate.errors = int(record[5])
    aggregate.status_classes = {
        name: int(count) for name, count in zip(_CLASSES, record[6:12], strict=True) if count
    }
    aggregate.request_bytes = int(record[12])
    aggregate.response_bytes = int(record[13])
    aggregate.latency = _sketch(record[17], record[14], record[15], record[16])
    aggregate.latency.total = float(record[14])
    aggregate.prompt_tokens = int(record[18])
    aggregate.completion_tokens = int(record[19])
    aggregate.tokens_estimated = int(record[20])
    aggregate.streamed = int(record[21])
    aggregate.cost_usd = float(record[22])
    aggregate.ttft = _sketch(record[26], record[23], record[24], record[25])
    aggregate.finish_reasons = _counts.decode(record[27] or "{}")
    return to_row((float(record[0]), record[1], record[2], record[3]), aggregate)


async def read_rollups(
    pool: Any,
    *,
    tier: RollupTier,
    start: float,
    end: float,
    service: str | None,
    route: str | None,
) -> list[RollupRow]:
    hidden = await pool.fetchval("SELECT before FROM rollup_retention WHERE tier = $1", tier.name)
    clauses = ["bucket >= to_timestamp($1)", "bucket < to_timestamp($2)"]
    params: list[Any] = [max(start, hidden or start), end]
    for column, value in (("service", service), ("route", route)):
        if value is not None:
            params.append(value)
            clauses.append(f"{column} = ${len(params)}")
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM {tier.table} WHERE {' AND '.join(clauses)}"
        " ORDER BY bucket, service, method, route",
        *params,
    )
    return [_row(row) for row in rows]


async def refresh_after_write(pool: Any, *, oldest: float, newest: float, now: float) -> None:
    """Refresh the aggregates over events just written to a past the policies no longer
    refresh, tier by tier (minute, then hour, then day: each reads the one below)."""
    if oldest >= now - REFRESHED_BY_POLICY_SECONDS:
        return
    import asyncpg  # type: ignore[import-untyped,unused-ignore]

    for tier in RollupTier:
        start = math.floor(oldest / tier) * tier
        end = (math.floor(newest / tier) + 1) * tier
        # CALL refresh_continuous_aggregate cannot run inside a transaction block.
        # One pass over the window: batching by buckets (the default) takes a
        # statement per few buckets, minutes for days of minute buckets.
        statement = (
            f"CALL refresh_continuous_aggregate('{tier.table}',"
            f" to_timestamp({start}), to_timestamp({end}),"
            """ options => '{"buckets_per_batch": 0}')"""
        )
        for attempt in range(1, _REFRESH_ATTEMPTS + 1):
            try:
                await pool.execute(statement)
                break
            except asyncpg.exceptions.LockNotAvailableError:
                # Another writer refreshes an overlapping window; it may have started
                # before our commit, so refresh again once it is done.
                if attempt == _REFRESH_ATTEMPTS:
                    raise
                await asyncio.sleep(0.05 * attempt)


async def delete_before(
    pool: Any, *, raw_before: float, tiers_before: Mapping[RollupTier, float]
) -> tuple[int, int]:
    """Drop raw chunks (and delete older rows in the chunk that straddles the cutoff);
    hide older rollups at once and drop their whole chunks."""
    raw = 0
    if raw_before:
        raw = int(
            await pool.fetchval(
                "SELECT count(*) FROM events WHERE ts < to_timestamp($1)", raw_before
            )
        )
        await pool.execute(
            "SELECT drop_chunks('events', older_than => to_timestamp($1))", raw_before
        )
        await pool.execute("DELETE FROM events WHERE ts < to_timestamp($1)", raw_before)
    rolled = 0
    for tier, before in tiers_before.items():
        if not before:
            continue
        async with pool.acquire() as connection, connection.transaction():
            previous = await connection.fetchval(
                "SELECT before FROM rollup_retention WHERE tier = $1 FOR UPDATE", tier.name
            )
            if previous is not None and previous >= before:
                continue
            rolled += int(
                await connection.fetchval(
                    f"SELECT count(*) FROM {tier.table}"
                    " WHERE bucket >= to_timestamp($1) AND bucket < to_timestamp($2)",
                    previous or 0.0,
                    before,
                )
            )
            await connection.execute(
                "INSERT INTO rollup_retention (tier, before) VALUES ($1, $2)"
                " ON CONFLICT (tier) DO UPDATE SET before = excluded.before",
                tier.name,
                before,
            )
        await pool.execute(
            f"SELECT drop_chunks('{tier.table}', older_than => to_timestamp($1))", before
        )
    return raw, rolled
