"""PostgreSQL alert store (asyncpg): ``alert_*`` tables next to the event tables.

Each operation is one transaction on a pooled connection; compare-and-set is a
single conditional ``UPDATE``, and channel counters lock their row first.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from modelmonitor.alerts.store.sql import Session, SqlAlertStore

__all__ = ["PostgresAlertStore"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS alert_rules (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_states (
        rule_id TEXT NOT NULL, service TEXT NOT NULL, version BIGINT NOT NULL,
        status TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (rule_id, service))""",
    """CREATE TABLE IF NOT EXISTS alert_history (
        id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, rule_id TEXT NOT NULL,
        service TEXT NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alert_history_at ON alert_history (at)",
    """CREATE TABLE IF NOT EXISTS alert_silences (
        id TEXT PRIMARY KEY, starts_at DOUBLE PRECISION NOT NULL,
        ends_at DOUBLE PRECISION NOT NULL, doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
        id BIGSERIAL PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, channel TEXT NOT NULL,
        status TEXT NOT NULL, claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0,
        doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_at ON alert_deliveries (created_at)",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_pending ON alert_deliveries (status, channel)",
    "CREATE TABLE IF NOT EXISTS alert_channels (name TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    # Notification channels added at run time (modelmonitor.alerts.runtime_channels).
    """CREATE TABLE IF NOT EXISTS alert_channel_configs (
        name TEXT PRIMARY KEY, updated_at DOUBLE PRECISION NOT NULL, doc TEXT NOT NULL)""",
    # Services added at run time (modelmonitor.catalog), next to the alert tables.
    """CREATE TABLE IF NOT EXISTS service_catalog (
        name TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_anomaly_detectors (
        service TEXT NOT NULL, metric TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        state BYTEA NOT NULL, extra TEXT NOT NULL, PRIMARY KEY (service, metric))""",
    """CREATE TABLE IF NOT EXISTS alert_anomaly_points (
        service TEXT NOT NULL, metric TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        doc TEXT NOT NULL, PRIMARY KEY (service, metric, at))""",
    "CREATE INDEX IF NOT EXISTS alert_anomaly_points_at ON alert_anomaly_points (at)",
]

_PLACEHOLDER = re.compile(r"\?")
#: Serialises schema creation across processes starting at once.
_SCHEMA_LOCK_KEY = 0x4D4D414C  # "MMAL"


def numbered(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$1, $2, ...``."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class _PostgresSession:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = await self._connection.fetch(numbered(sql), *args)
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(numbered(sql), *args)


class PostgresAlertStore(SqlAlertStore):
    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 4) -> None:
        self.url = url
        self._schema = schema
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        settings = {"search_path": self._schema} if self._schema else None
        self._pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=self._pool_size, server_settings=settings
        )
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK_KEY)
            if self._schema:
                await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            for statement in SCHEMA:
                await connection.execute(statement)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        if self._pool is None:
            raise RuntimeError("alert store is not connected")
        async with self._pool.acquire() as connection, connection.transaction():
            yield _PostgresSession(connection)
