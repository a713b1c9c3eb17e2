"""Quality stores: pick a backend by the database URL (``sqlite://``, ``postgresql://``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from modelmonitor.quality.store.base import QualityStore, Reference, SampleFilter, StoredSample

__all__ = ["QualityStore", "Reference", "SampleFilter", "StoredSample", "create_quality_store"]


def create_quality_store(url: str, *, schema: str | None = None) -> QualityStore:
    """Build (not connect) the quality store for ``url``; drivers are imported only when used."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from modelmonitor.quality.store.sqlite import SQLiteQualityStore

        return SQLiteQualityStore(url)
    if scheme in ("postgresql", "postgres"):
        from modelmonitor.quality.store.postgres import PostgresQualityStore

        return PostgresQualityStore(url, schema=schema)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")
