"""SQLite event store (``sqlite:///path``): WAL mode, batched inserts, one writer thread.

All statements run on one dedicated thread, so the event loop never blocks on
disk and the single connection needs no lock. Meant for one process (the
embedded ``modelmonitor up``); use PostgreSQL for many workers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from modelmonitor.events import SQL_IS_ERROR, RequestEvent
from modelmonitor.storage._sqlite_thread import SQLiteThread
from modelmonitor.storage.base import (
    EVENT_FIELDS,
    MODEL_FIELDS,
    RequestFilter,
    RollupRow,
    ServiceSummary,
    event_from_row,
)
from modelmonitor.storage.model_rollups import (
    MODEL_ROLLUP_COLUMNS,
    DimensionCaps,
    ModelRollup,
    aggregate_model_rollups,
    model_rollup_from_row,
    model_rollup_values,
)
from modelmonitor.storage.rollups import (
    ROLLUP_COLUMNS,
    aggregate_rollups,
    merge_row,
    rollup_from_row,
    rollup_values,
)

__all__ = ["SQLiteStore"]

T = TypeVar("T")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        start REAL NOT NULL,
        service TEXT NOT NULL,
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        latency_seconds REAL NOT NULL,
        ttfb_seconds REAL NOT NULL,
        request_bytes INTEGER NOT NULL,
        response_bytes INTEGER NOT NULL,
        error TEXT NOT NULL,
        model TEXT NOT NULL,
        client TEXT NOT NULL
    ) WITHOUT ROWID""",
    # Files created before the model-aware fields get them in _add_model_columns.
    "CREATE INDEX IF NOT EXISTS events_service_start ON events (service, start)",
    "CREATE INDEX IF NOT EXISTS events_start ON events (start)",
    """CREATE TABLE IF NOT EXISTS rollups (
        bucket REAL NOT NULL,
        service TEXT NOT NULL,
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        status_classes TEXT NOT NULL,
        request_bytes INTEGER NOT NULL,
        response_bytes INTEGER NOT NULL,
        latency_sum_seconds REAL NOT NULL,
        latency_sketch BLOB NOT NULL,
        measures BLOB NOT NULL DEFAULT x'',
        PRIMARY KEY (service, bucket, method, route)
    )""",
    "CREATE INDEX IF NOT EXISTS rollups_bucket ON rollups (bucket)",
    """CREATE TABLE IF NOT EXISTS model_rollups (
        bucket REAL NOT NULL,
        service TEXT NOT NULL,
        model TEXT NOT NULL,
        consumer TEXT NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        status_classes TEXT NOT NULL,
        request_bytes INTEGER NOT NULL,
        response_bytes INTEGER NOT NULL,
        latency_sum_seconds REAL NOT NULL,
        latency_sketch BLOB NOT NULL,
        measures BLOB NOT NULL,
        PRIMARY KEY (service, bucket, model, consumer)
    )""",
    "CREATE INDEX IF NOT EXISTS model_rollups_bucket ON model_rollups (bucket)",
    """CREATE TABLE IF NOT EXISTS services (
        name TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        requests INTEGER NOT NULL
    )""",
]

_EVENT_COLUMNS = ", ".join(EVENT_FIELDS)
_SQLITE_TYPES = {
    str: "TEXT NOT NULL DEFAULT ''",
    int: "INTEGER NOT NULL DEFAULT 0",
    float: "REAL NOT NULL DEFAULT 0",
    bool: "INTEGER NOT NULL DEFAULT 0",
}
_ROLLUP_COLUMNS = ", ".join(ROLLUP_COLUMNS)
_INSERT_EVENT = (
    f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({','.join('?' * len(EVENT_FIELDS))})"
)


def _add_model_columns(db: sqlite3.Connection) -> None:
    """Add the model-aware columns a file created by an older version lacks."""
    present = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    for name, kind in MODEL_FIELDS.items():
        if name not in present:
            db.execute(f"ALTER TABLE events ADD COLUMN {name} {_SQLITE_TYPES[kind]}")


def _add_rollup_measures(db: sqlite3.Connection) -> None:
    """Files written before rollups kept the measures blob gain its column."""
    present = {row[1] for row in db.execute("PRAGMA table_info(rollups)")}
    if "measures" not in present:
        db.execute("ALTER TABLE rollups ADD COLUMN measures BLOB NOT NULL DEFAULT x''")


def sqlite_path(url: str) -> str:
    """``sqlite:///relative/path.db``, ``sqlite:////abs/path.db`` or ``sqlite://:memory:``.

    The query may set ``busy_timeout_ms`` (how long to wait for another writer)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {url!r}")
    if parts.netloc == ":memory:" or parts.path in ("/:memory:", ""):
        return ":memory:"
    return parts.path[1:] if parts.path.startswith("/") else parts.path


_MODEL_COLUMNS = ", ".join(MODEL_ROLLUP_COLUMNS)


class SQLiteStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.caps = DimensionCaps()
        self._path = sqlite_path(url)
        query = parse_qs(urlsplit(url).query)
        self._sqlite = SQLiteThread(
            self._path,
            schema=_SCHEMA,
            busy_timeout_ms=int(query.get("busy_timeout_ms", ["10000"])[0]),
            synchronous="NORMAL",
        )

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._sqlite.run(fn)

    async def connect(self) -> None:
        await self._sqlite.open()
        await self._run(_add_model_columns)
        await self._run(_add_rollup_measures)
        self.caps.seed(
            await self._run(
                lambda db: db.execute(
                    "SELECT DISTINCT service, model, consumer FROM model_rollups"
                ).fetchall()
            )
        )

    async def close(self) -> None:
        await self._sqlite.close()

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def write_batch(self, events: Sequence[RequestEvent]) -> int:
        if not events:
            return 0
        return await self._run(lambda db: self._write(db, events))

    def _write(self, db: sqlite3.Connection, events: Sequence[RequestEvent]) -> int:
        db.execute("BEGIN IMMEDIATE")
        try:
            fresh = SQLiteStore._insert_new(db, events)
            if fresh:
                SQLiteStore._update_rollups(db, fresh)
                self._update_model_rollups(db, fresh)
                SQLiteStore._update_services(db, fresh)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(fresh)

    @staticmethod
    def _insert_new(db: sqlite3.Connection, events: Sequence[RequestEvent]) -> list[RequestEvent]:
        """Insert the events not stored yet and return them.

        Ids are unique per proxy, so a batch is almost always new: try it whole
        first and look for duplicates only when that fails (a redelivery).
        """
        rows = [msgspec.structs.astuple(event) for event in events]
        db.execute("SAVEPOINT fresh_batch")
        try:
            db.executemany(_INSERT_EVENT, rows)
            db.execute("RELEASE fresh_batch")
            if len({event.id for event in events}) == len(events):
                return list(events)
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK TO fresh_batch")
            db.execute("RELEASE fresh_batch")
        else:
            raise AssertionError("a batch with repeated ids cannot insert without conflict")
        seen: set[str] = set()
        ids = [event.id for event in events]
        for offset in range(0, len(ids), 500):
            chunk = ids[offset : offset + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(
                row[0] for row in db.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
            )
        fresh: list[RequestEvent] = []
        for event in events:
            if event.id not in seen:
                seen.add(event.id)  # duplicates inside one batch count once
                fresh.append(event)
        db.executemany(
            _INSERT_EVENT,
            [msgspec.structs.astuple(event) for event in fresh],
        )
        return fresh

    @staticmethod
    def _update_rollups(db: sqlite3.Connection, events: Sequence[RequestEvent]) -> None:
        marks = ",".join("?" * len(ROLLUP_COLUMNS))
        for key, aggregate in aggregate_rollups(events).items():
            found = db.execute(
                f"SELECT {_ROLLUP_COLUMNS} FROM rollups"
                " WHERE bucket = ? AND service = ? AND method = ? AND route = ?",
                key,
            ).fetchone()
            merged = merge_row(rollup_from_row(found) if found else None, key, aggregate)
            db.execute(
                f"INSERT OR REPLACE INTO rollups ({_ROLLUP_COLUMNS}) VALUES ({marks})",
                rollup_values(merged),
            )

    def _update_model_rollups(self, db: sqlite3.Connection, events: Sequence[RequestEvent]) -> None:
        marks = ",".join("?" * len(MODEL_ROLLUP_COLUMNS))
        for key, aggregate in aggregate_model_rollups(events, self.caps).items():
            found = db.execute(
                f"SELECT {_MODEL_COLUMNS} FROM model_rollups"
                " WHERE bucket = ? AND service = ? AND model = ? AND consumer = ?",
                key,
            ).fetchone()
            if found:
                total = model_rollup_from_row(found).aggregate()
                total.merge(aggregate)
                aggregate = total
            db.execute(
                f"INSERT OR REPLACE INTO model_rollups ({_MODEL_COLUMNS}) VALUES ({marks})",
                model_rollup_values(key, aggregate),
            )

    @staticmethod
    def _update_services(db: sqlite3.Connection, events: Sequence[RequestEvent]) -> None:
        summary: dict[str, list[float]] = {}
        for event in events:
            entry = summary.get(event.service)
            if entry is None:
                summary[event.service] = [event.start, event.start, 1]
            else:
                entry[0] = min(entry[0], event.start)
                entry[1] = max(entry[1], event.start)
                entry[2] += 1
        db.executemany(
            "INSERT INTO services (name, first_seen, last_seen, requests) VALUES (?,?,?,?)"
            " ON CONFLICT (name) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),"
            " last_seen = max(last_seen, excluded.last_seen),"
            " requests = requests + excluded.requests",
            [(name, first, last, int(count)) for name, (first, last, count) in summary.items()],
        )

    async def count_events(self, *, service: str | None = None) -> int:
        def count(db: sqlite3.Connection) -> int:
            if service is None:
                row = db.execute("SELECT count(*) FROM events").fetchone()
            else:
                row = db.execute(
                    "SELECT count(*) FROM events WHERE service = ?", (service,)
                ).fetchone()
            return int(row[0])

        return await self._run(count)

    async def services(self) -> list[ServiceSummary]:
        def fetch(db: sqlite3.Connection) -> list[ServiceSummary]:
            rows = db.execute(
                "SELECT name, first_seen, last_seen, requests FROM services ORDER BY name"
            ).fetchall()
            return [
                ServiceSummary(name=r[0], first_seen=r[1], last_seen=r[2], requests=r[3])
                for r in rows
            ]

        return await self._run(fetch)

    async def rollups(
        self, *, start: float, end: float, service: str | None = None, route: str | None = None
    ) -> list[RollupRow]:
        clauses = ["bucket >= ?", "bucket < ?"]
        params: list[Any] = [start, end]
        if service is not None:
            clauses.append("service = ?")
            params.append(service)
        if route is not None:
            clauses.append("route = ?")
            params.append(route)
        sql = f"SELECT {_ROLLUP_COLUMNS} FROM rollups WHERE {' AND '.join(clauses)} ORDER BY bucket"

        def fetch(db: sqlite3.Connection) -> list[RollupRow]:
            return [rollup_from_row(row) for row in db.execute(sql, params)]

        return await self._run(fetch)

    async def model_rollups(
        self,
        *,
        start: float,
        end: float,
        service: str,
        model: str | None = None,
        consumer: str | None = None,
    ) -> list[ModelRollup]:
        clauses = ["service = ?", "bucket >= ?", "bucket < ?"]
        params: list[Any] = [service, start, end]
        for column, value in (("model", model), ("consumer", consumer)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = (
            f"SELECT {_MODEL_COLUMNS} FROM model_rollups WHERE {' AND '.join(clauses)}"
            " ORDER BY bucket"
        )

        def fetch(db: sqlite3.Connection) -> list[ModelRollup]:
            return [model_rollup_from_row(row) for row in db.execute(sql, params)]

        return await self._run(fetch)

    async def recent_requests(self, query: RequestFilter) -> list[RequestEvent]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("service", query.service),
            ("route", query.route),
            ("method", query.method),
            ("model", query.model),
            ("consumer", query.consumer),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.status_class is not None:
            if query.status_class == "err":
                clauses.append("status = 0")
            else:
                low = int(query.status_class[0]) * 100
                clauses.append("status >= ? AND status < ?")
                params.extend([low, low + 100])
        if query.errors_only:
            clauses.append(SQL_IS_ERROR)
        if query.min_latency_seconds is not None:
            clauses.append("latency_seconds >= ?")
            params.append(query.min_latency_seconds)
        if query.start is not None:
            clauses.append("start >= ?")
            params.append(query.start)
        if query.end is not None:
            clauses.append("start < ?")
            params.append(query.end)
        if query.before is not None:
            clauses.append("(start < ? OR (start = ? AND id < ?))")
            params.extend([query.before[0], query.before[0], query.before[1]])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_EVENT_COLUMNS} FROM events {where} ORDER BY start DESC, id DESC LIMIT ?"
        params.append(query.limit)

        def fetch(db: sqlite3.Connection) -> list[RequestEvent]:
            return [event_from_row(row) for row in db.execute(sql, params)]

        return await self._run(fetch)

    async def delete_before(self, *, raw_before: float, rollups_before: float) -> tuple[int, int]:
        def delete(db: sqlite3.Connection) -> tuple[int, int]:
            raw = db.execute("DELETE FROM events WHERE start < ?", (raw_before,)).rowcount
            rolled = db.execute("DELETE FROM rollups WHERE bucket < ?", (rollups_before,)).rowcount
            db.execute("DELETE FROM model_rollups WHERE bucket < ?", (rollups_before,))
            return raw, rolled

        return await self._run(delete)
