"""SQLite quality store: ``quality_*`` tables in the events database file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from modelmonitor.quality.store.sql import Session, SqlQualityStore
from modelmonitor.storage._sqlite_thread import SQLiteThread
from modelmonitor.storage.sqlite import sqlite_path

__all__ = ["SQLiteQualityStore"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS quality_samples (
        event_id TEXT PRIMARY KEY, service TEXT NOT NULL, at REAL NOT NULL,
        body TEXT NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS quality_samples_at ON quality_samples (service, at)",
    """CREATE TABLE IF NOT EXISTS quality_profiles (
        id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, bucket REAL NOT NULL,
        profile BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS quality_profiles_bucket ON quality_profiles (service, bucket)",
    """CREATE TABLE IF NOT EXISTS quality_references (
        service TEXT NOT NULL, name TEXT NOT NULL, created_at REAL NOT NULL,
        source TEXT NOT NULL, profile BLOB NOT NULL, PRIMARY KEY (service, name))""",
]


class _Session:
    def __init__(self, sqlite: SQLiteThread) -> None:
        self._sqlite = sqlite

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        return await self._sqlite.run(lambda db: db.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> None:
        await self._sqlite.run(lambda db: db.execute(sql, args))


class SQLiteQualityStore(SqlQualityStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite = SQLiteThread(sqlite_path(url), schema=SCHEMA, name="quality-sqlite")
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        await self._sqlite.open()

    async def close(self) -> None:
        await self._sqlite.close()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        # As in the SQLite alert store: the transaction always ends on the thread,
        # even when the awaiting task is cancelled.
        async with self._lock:
            try:
                await self._sqlite.run(lambda db: db.execute("BEGIN IMMEDIATE"))
            except asyncio.CancelledError:
                self._sqlite.run_later(_end(rollback=True))
                raise
            try:
                yield _Session(self._sqlite)
            except BaseException:
                self._sqlite.run_later(_end(rollback=True))
                raise
            try:
                await self._sqlite.run(_end(rollback=False))
            except asyncio.CancelledError:
                self._sqlite.run_later(_end(rollback=False))
                raise


def _end(*, rollback: bool) -> Callable[[sqlite3.Connection], None]:
    def end(db: sqlite3.Connection) -> None:
        if db.in_transaction:
            db.execute("ROLLBACK" if rollback else "COMMIT")

    return end
