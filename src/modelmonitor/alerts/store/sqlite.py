"""SQLite alert store: ``alert_*`` tables, by default in the events database file.

One connection on one thread (the event loop never blocks on disk); an asyncio
lock makes each operation one ``BEGIN IMMEDIATE`` transaction, and SQLite's own
file locking keeps several processes sharing the file consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from modelmonitor.alerts.store.sql import Session, SqlAlertStore
from modelmonitor.storage.sqlite import sqlite_path

__all__ = ["SQLiteAlertStore"]

T = TypeVar("T")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS alert_rules (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL, doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_states (
        rule_id TEXT NOT NULL, service TEXT NOT NULL, version INTEGER NOT NULL,
        status TEXT NOT NULL, updated_at REAL NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (rule_id, service))""",
    """CREATE TABLE IF NOT EXISTS alert_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, rule_id TEXT NOT NULL,
        service TEXT NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alert_history_at ON alert_history (at)",
    """CREATE TABLE IF NOT EXISTS alert_silences (
        id TEXT PRIMARY KEY, starts_at REAL NOT NULL, ends_at REAL NOT NULL, doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, channel TEXT NOT NULL,
        status TEXT NOT NULL, claimed_until REAL NOT NULL DEFAULT 0, doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_at ON alert_deliveries (created_at)",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_pending ON alert_deliveries (status, channel)",
    """CREATE TABLE IF NOT EXISTS alert_channels (name TEXT PRIMARY KEY, doc TEXT NOT NULL)""",
]


class _SQLiteSession:
    def __init__(self, store: SQLiteAlertStore) -> None:
        self._store = store

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        return await self._store._run(lambda db: db.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> None:
        await self._store._run(lambda db: db.execute(sql, args))


class SQLiteAlertStore(SqlAlertStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self._path = sqlite_path(url)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-sqlite")
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise RuntimeError("alert store is not connected")
        db = self._db
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, db)

    async def connect(self) -> None:
        def open_db() -> sqlite3.Connection:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            for statement in SCHEMA:
                db.execute(statement)
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._executor, open_db)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        async with self._lock:
            await self._run(lambda db: db.execute("BEGIN IMMEDIATE"))
            try:
                yield _SQLiteSession(self)
            except BaseException:
                await self._run(lambda db: db.execute("ROLLBACK"))
                raise
            await self._run(lambda db: db.execute("COMMIT"))
