"""SQLite event store (``sqlite:///path``): WAL mode, batched inserts, one writer thread.

All statements run on one dedicated thread, so the event loop never blocks on
disk and the single connection needs no lock. Meant for one process (the
embedded ``modelmonitor up``); use PostgreSQL for many workers.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from modelmonitor.aggregate import Aggregate
from modelmonitor.events import SQL_IS_ERROR, RequestEvent
from modelmonitor.storage._sqlite_thread import SQLiteThread
from modelmonitor.storage.base import (
    EVENT_FIELDS,
    MODEL_FIELDS,
    RequestFilter,
    RollupRow,
    RollupTier,
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
    RollupKey,
    aggregate_rollups,
    downsample,
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
    """CREATE TABLE IF NOT EXISTS services (
        name TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        requests INTEGER NOT NULL
    )""",
]

# One table per downsampling tier, the same columns.
_SCHEMA.extend(
    statement
    for tier in RollupTier
    for statement in (
        f"""CREATE TABLE IF NOT EXISTS {tier.table} (
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
        f"CREATE INDEX IF NOT EXISTS {tier.table}_bucket ON {tier.table} (bucket)",
    )
)

# Set once the hour and day tiers were filled from the minute rows of a database made
# before they existed.
_SCHEMA.append("CREATE TABLE IF NOT EXISTS rollup_backfill (done_at REAL NOT NULL)")
# Per-minute rollups by model and consumer (storage/model_rollups.py).
_SCHEMA += [
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
        await self._run(self._backfill_tiers)

    @staticmethod
    def _backfill_tiers(db: sqlite3.Connection) -> None:
        """Once: fill the hour and day tiers from minute rows stored before they existed
        (this store has one process, so nothing writes meanwhile)."""
        if db.execute("SELECT count(*) FROM rollup_backfill").fetchone()[0]:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            first = db.execute("SELECT min(bucket) FROM rollups").fetchone()[0]
            last = db.execute("SELECT max(bucket) FROM rollups").fetchone()[0]
            day = RollupTier.DAY
            start = math.floor(first / day) * day if first is not None else 0
            while last is not None and start <= last:
                minutes = [
                    rollup_from_row(row)
                    for row in db.execute(
                        f"SELECT {_ROLLUP_COLUMNS} FROM rollups WHERE bucket >= ? AND bucket < ?",
                        (start, start + day),
                    )
                ]
                for tier in (RollupTier.HOUR, RollupTier.DAY):
                    SQLiteStore._merge_into(db, downsample(minutes, seconds=tier), tier)
                start += day
            db.execute("INSERT INTO rollup_backfill VALUES (?)", (time.time(),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

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
        for tier in RollupTier:
            SQLiteStore._merge_into(db, aggregate_rollups(events, seconds=tier), tier)

    @staticmethod
    def _merge_into(
        db: sqlite3.Connection, new: dict[RollupKey, Aggregate], tier: RollupTier
    ) -> None:
        marks = ",".join("?" * len(ROLLUP_COLUMNS))
        for key, aggregate in new.items():
            found = db.execute(
                f"SELECT {_ROLLUP_COLUMNS} FROM {tier.table}"
                " WHERE bucket = ? AND service = ? AND method = ? AND route = ?",
                key,
            ).fetchone()
            merged = merge_row(rollup_from_row(found) if found else None, key, aggregate)
            db.execute(
                f"INSERT OR REPLACE INTO {tier.table} ({_ROLLUP_COLUMNS}) VALUES ({marks})",
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
        self,
        *,
        start: float,
        end: float,
        service: str | None = None,
        route: str | None = None,
        tier: RollupTier = RollupTier.MINUTE,
    ) -> list[RollupRow]:
        clauses = ["bucket >= ?", "bucket < ?"]
        params: list[Any] = [start, end]
        if service is not None:
            clauses.append("service = ?")
            params.append(service)
        if route is not None:
            clauses.append("route = ?")
            params.append(route)
        sql = (
            f"SELECT {_ROLLUP_COLUMNS} FROM {RollupTier(tier).table}"
            f" WHERE {' AND '.join(clauses)} ORDER BY bucket"
        )

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

    async def delete_before(
        self,
        *,
        raw_before: float,
        rollups_before: float,
        tiers_before: Mapping[RollupTier, float] | None = None,
    ) -> tuple[int, int]:
        limits = {**(tiers_before or {}), RollupTier.MINUTE: rollups_before}

        def delete(db: sqlite3.Connection) -> tuple[int, int]:
            raw = db.execute("DELETE FROM events WHERE start < ?", (raw_before,)).rowcount
            rolled = 0
            for tier, before in limits.items():
                if before:
                    rolled += db.execute(
                        f"DELETE FROM {tier.table} WHERE bucket < ?", (before,)
                    ).rowcount
            if rollups_before:
                db.execute("DELETE FROM model_rollups WHERE bucket < ?", (rollups_before,))
            return raw, rolled

        return await self._run(delete)
