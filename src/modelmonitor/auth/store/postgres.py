"""PostgreSQL auth store (asyncpg): ``auth_*`` tables next to the event tables."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from modelmonitor.alerts.store.postgres import numbered
from modelmonitor.auth.store.sql import Session, SqlAuthStore, schema

__all__ = ["PostgresAuthStore"]

#: Serialises schema creation across processes starting at once.
_SCHEMA_LOCK_KEY = 0x4D4D4155  # "MMAU"


class _Connection:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = await self._connection.fetch(numbered(sql), *args)
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(numbered(sql), *args)


class PostgresAuthStore(SqlAuthStore):
    def __init__(self, url: str, *, schema_name: str | None = None, pool_size: int = 2) -> None:
        self.url = url
        self._schema = schema_name
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
            for statement in schema("DOUBLE PRECISION", "BIGSERIAL"):
                await connection.execute(statement)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        if self._pool is None:
            raise RuntimeError("auth store is not connected")
        async with self._pool.acquire() as connection, connection.transaction():
            yield _Connection(connection)
