"""Auth stores: pick a backend by the database URL (``sqlite://``, ``postgresql://``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from modelmonitor.auth.store.base import AuthStore

__all__ = ["AuthStore", "create_auth_store"]


def create_auth_store(url: str) -> AuthStore:
    """Build (not connect) the auth store for ``url``; drivers are imported only when used."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from modelmonitor.auth.store.sqlite import SQLiteAuthStore

        return SQLiteAuthStore(url)
    if scheme in ("postgresql", "postgres"):
        from modelmonitor.auth.store.postgres import PostgresAuthStore

        return PostgresAuthStore(url)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")
