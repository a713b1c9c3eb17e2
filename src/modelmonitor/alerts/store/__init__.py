"""Alert stores: pick a backend by the database URL (``sqlite://``, ``postgresql://``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from modelmonitor.alerts.store.base import AlertStore

__all__ = ["AlertStore", "create_alert_store"]


def create_alert_store(url: str) -> AlertStore:
    """Build (not connect) the alert store for ``url``; drivers are imported only when used."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from modelmonitor.alerts.store.sqlite import SQLiteAlertStore

        return SQLiteAlertStore(url)
    if scheme in ("postgresql", "postgres"):
        from modelmonitor.alerts.store.postgres import PostgresAlertStore

        return PostgresAlertStore(url)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")
