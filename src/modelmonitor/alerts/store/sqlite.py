"""SQLite alert store: ``alert_*`` tables, by default in the events database file.

One connection on one thread (the event loop never blocks on disk); an asyncio
lock makes each operation one ``BEGIN IMMEDIATE`` transaction, and SQLite's own
file locking keeps several processes sharing the file consistent.
"""

from __future__ import annotations

import contextlib

from modelmonitor.alerts.store.sql import Session, SqlAlertStore
from modelmonitor.storage._sqlite_thread import SQLiteThread
from modelmonitor.storage.sqlite import sqlite_path

__all__ = ["SQLiteAlertStore"]

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
    # Notification channels added at run time (modelmonitor.alerts.runtime_channels).
    """CREATE TABLE IF NOT EXISTS alert_channel_configs (
        name TEXT PRIMARY KEY, updated_at REAL NOT NULL, doc TEXT NOT NULL)""",
    # Services added at run time (modelmonitor.catalog), next to the alert tables.
    """CREATE TABLE IF NOT EXISTS service_catalog (
        name TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_anomaly_detectors (
        service TEXT NOT NULL, metric TEXT NOT NULL, updated_at REAL NOT NULL,
        state BLOB NOT NULL, extra TEXT NOT NULL, PRIMARY KEY (service, metric))""",
    """CREATE TABLE IF NOT EXISTS alert_anomaly_points (
        service TEXT NOT NULL, metric TEXT NOT NULL, at REAL NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (service, metric, at))""",
    "CREATE INDEX IF NOT EXISTS alert_anomaly_points_at ON alert_anomaly_points (at)",
]


class SQLiteAlertStore(SqlAlertStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self._path = sqlite_path(url)
        self._sqlite = SQLiteThread(self._path, schema=SCHEMA, name="alert-sqlite")

    async def connect(self) -> None:
        await self._sqlite.open()

    async def close(self) -> None:
        await self._sqlite.close()

    def session(self) -> contextlib.AbstractAsyncContextManager[Session]:
        return self._sqlite.transaction()
