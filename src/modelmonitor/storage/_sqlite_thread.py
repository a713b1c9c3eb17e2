"""One SQLite connection on one dedicated thread, shared by the SQLite-backed stores.

Every statement runs on that thread, so the event loop never blocks on disk and
the single connection needs no lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["SQLiteThread"]

T = TypeVar("T")


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

    async def open(self) -> None:
        """Open the file (creating its folder) in WAL mode and create the schema."""

        def open_db() -> sqlite3.Connection:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            for pragma in self._pragmas:
                db.execute(pragma)
            for statement in self._schema:
                db.execute(statement)
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

    async def close(self) -> None:
        if self._db is not None:
            await self.run(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)
