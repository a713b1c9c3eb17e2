"""PostgreSQL quality store (asyncpg): ``quality_*`` tables from the numbered migrations."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from modelmonitor.quality.store.sql import Session, SqlQualityStore
from modelmonitor.storage.pg_migrations import apply_migrations

__all__ = ["PostgresQualityStore"]

_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class _Session:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = await self._connection.fetch(_numbered(sql), *args)
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(_numbered(sql), *args)


class PostgresQualityStore(SqlQualityStore):
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
        async with self._pool.acquire() as connection:
            if self._schema:
                await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            await apply_migrations(connection)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        if self._pool is None:
            raise RuntimeError("quality store is not connected")
        async with self._pool.acquire() as connection, connection.transaction():
            yield _Session(connection)
