"""Event stores: pick a backend by URL scheme (``sqlite://``, ``postgresql://``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from modelmonitor.storage.base import (
    ROLLUP_SECONDS,
    EventStore,
    RequestFilter,
    RollupRow,
    RollupTier,
    ServiceSummary,
)

__all__ = [
    "ROLLUP_SECONDS",
    "EventStore",
    "RequestFilter",
    "RollupRow",
    "RollupTier",
    "ServiceSummary",
    "create_store",
]


def create_store(url: str, *, compress_after_seconds: float = 7 * 86400.0) -> EventStore:
    """Build (not connect) the store for ``url``; drivers are imported only when used.
    ``compress_after_seconds`` applies to PostgreSQL with TimescaleDB."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from modelmonitor.storage.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        from modelmonitor.storage.postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]

        store: EventStore = PostgresStore(url, compress_after_seconds=compress_after_seconds)
        return store
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")
