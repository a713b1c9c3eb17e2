"""SQLite auth store: ``auth_*`` tables, by default in the events database file."""

from __future__ import annotations

import contextlib

from modelmonitor.auth.store.sql import Session, SqlAuthStore, schema
from modelmonitor.storage._sqlite_thread import SQLiteThread
from modelmonitor.storage.sqlite import sqlite_path

__all__ = ["SQLiteAuthStore"]


class SQLiteAuthStore(SqlAuthStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite = SQLiteThread(
            sqlite_path(url), schema=schema("REAL", "INTEGER"), name="auth-sqlite"
        )

    async def connect(self) -> None:
        await self._sqlite.open()

    async def close(self) -> None:
        await self._sqlite.close()

    def session(self) -> contextlib.AbstractAsyncContextManager[Session]:
        return self._sqlite.transaction()
