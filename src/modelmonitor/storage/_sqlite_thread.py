"""One SQLite connection on one dedicated thread, shared by the SQLite-backed stores.

Every statement runs on that thread, so the event loop never blocks on disk and
the single connection needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["SQLiteSession", "SQLiteThread", "UnreadableDatabaseError"]

T = TypeVar("T")


class UnreadableDatabaseError(RuntimeError):
    """The file exists but is not a usable SQLite database (truncated, corrupt, foreign)."""


def _unreadable(path: str, exc: sqlite3.DatabaseError) -> UnreadableDatabaseError:
    return UnreadableDatabaseError(
        f"{path} is not a usable SQLite database ({exc}): restore it from a backup, or move "
        "it aside (ModelMonitor then starts with an empty one)"
    )


class SQLiteSession:
    """``fetch``/``execute`` inside one transaction on the connection's thread."""

    def __init__(self, sqlite: SQLiteThread) -> None:
        self._sqlite = sqlite

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        return await self._sqlite.run(lambda db: db.execute(sql, args).fetchall())

    async def execute(self, sql: str, *args: Any) -> None:
        await self._sqlite.run(lambda db: db.execute(sql, args))


class SQLiteThread:
    def __init__(
        self,
        path: str,
        *,
        schema: Sequence[str],
        busy_timeout_ms: int = 10_000,
        synchronous: str | None = None,
        name: str = "sqlite",
    ) -> None:
        self._path = path
        self._schema = schema
        self._pragmas = ["PRAGMA journal_mode=WAL", f"PRAGMA busy_timeout={busy_timeout_ms}"]
        if synchronous is not None:
            self._pragmas.append(f"PRAGMA synchronous={synchronous}")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open the file (creating its folder) in WAL mode and create the schema."""

        def open_db() -> sqlite3.Connection:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            try:
                for pragma in self._pragmas:
                    db.execute(pragma)
                for statement in self._schema:
                    db.execute(statement)
            except sqlite3.DatabaseError as exc:
                db.close()
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                raise _unreadable(self._path, exc) from None
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._executor, open_db)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the connection's thread."""
        if self._db is None:
            raise RuntimeError("the SQLite store is not connected")
        db = self._db
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, db)

    def run_later(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        """Queue ``fn(connection)`` behind whatever runs now, without waiting for it
        (cleanup after a cancelled ``run`` whose statement still executes)."""
        if self._db is not None:
            self._executor.submit(fn, self._db)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteSession]:
        """One ``BEGIN IMMEDIATE`` transaction, committed when the block ends.

        A cancelled await does not stop a statement already running on the thread
        (a BEGIN waiting for another process's lock, say), and a queued COMMIT or
        ROLLBACK would never run: the transaction is ended on the thread, in order,
        so this connection never keeps the database locked.
        """
        async with self._lock:
            try:
                await self.run(lambda db: db.execute("BEGIN IMMEDIATE"))
            except asyncio.CancelledError:
                self.run_later(_rollback_if_open)
                raise
            try:
                yield SQLiteSession(self)
            except BaseException:
                self.run_later(_rollback_if_open)
                raise
            try:
                await self.run(_commit_if_open)
            except asyncio.CancelledError:
                self.run_later(_commit_if_open)
                raise

    async def close(self) -> None:
        if self._db is not None:
            await self.run(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)


def _rollback_if_open(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")


def _commit_if_open(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("COMMIT")
