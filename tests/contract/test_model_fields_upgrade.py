"""Stores created before the model-aware event fields keep their rows and gain the fields."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from modelmonitor.events import RequestEvent
from modelmonitor.storage import RequestFilter, create_store
from modelmonitor.storage.pg_migrations import load_migrations
from tests.contract.test_store_contract import BASE, make_events

_OLD_SQLITE_EVENTS = """CREATE TABLE events (
    id TEXT PRIMARY KEY, start REAL NOT NULL, service TEXT NOT NULL, method TEXT NOT NULL,
    route TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
    latency_seconds REAL NOT NULL, ttfb_seconds REAL NOT NULL, request_bytes INTEGER NOT NULL,
    response_bytes INTEGER NOT NULL, error TEXT NOT NULL, model TEXT NOT NULL,
    client TEXT NOT NULL) WITHOUT ROWID"""
_OLD_ROW = ("old1", BASE, "alpha", "POST", "/p", "/p", 200, 0.1, 0.01, 10, 20, "", "m", "c")


def _old_event() -> RequestEvent:
    return RequestEvent(*_OLD_ROW)


async def _check_upgraded(url: str) -> None:
    store = create_store(url)
    await store.connect()
    try:
        assert await store.recent_requests(RequestFilter()) == [_old_event()]
        new = make_events(40)
        assert await store.write_batch(new) == 40
        found = await store.recent_requests(RequestFilter(limit=1000, start=BASE + 0.5))
        assert sorted(found, key=lambda e: e.id) == sorted(
            (e for e in new if e.start >= BASE + 0.5), key=lambda e: e.id
        )
        assert any(e.tokens_estimated for e in found) and any(e.streamed for e in found)
    finally:
        await store.close()


async def test_an_older_sqlite_file_gains_the_model_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(_OLD_SQLITE_EVENTS)
    db.execute(f"INSERT INTO events VALUES ({','.join('?' * len(_OLD_ROW))})", _OLD_ROW)
    db.commit()
    db.close()
    await _check_upgraded(f"sqlite:///{path}")


async def test_an_older_postgres_schema_is_migrated(postgres_url: str) -> None:
    first = load_migrations()[0]
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await connection.execute(first.sql)
        await connection.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            first.version,
            first.name,
        )
        marks = ", ".join(f"${i + 1}" for i in range(len(_OLD_ROW)))
        await connection.execute(f"INSERT INTO events VALUES ({marks})", *_OLD_ROW)
    finally:
        await connection.close()
    await _check_upgraded(postgres_url)
