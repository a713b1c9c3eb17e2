"""The quality store in portable SQL; the SQLite and PostgreSQL adapters supply a session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import msgspec

from modelmonitor.quality.store.base import Reference, SampleFilter, StoredSample

__all__ = ["Session", "SqlQualityStore"]

_sample_decoder = msgspec.json.Decoder(StoredSample)
_source_decoder = msgspec.json.Decoder(dict[str, str | float])


class Session(Protocol):
    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]: ...

    async def execute(self, sql: str, *args: Any) -> None: ...


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SqlQualityStore:
    """Everything but the connection: subclasses implement ``session``."""

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def write_samples(self, samples: list[StoredSample]) -> int:
        fresh = 0
        async with self.session() as s:
            for sample in samples:
                rows = await s.fetch(
                    "INSERT INTO quality_samples (event_id, service, at, body, doc) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                    sample.event.id,
                    sample.event.service,
                    sample.event.start,
                    sample.request + "\n" + sample.response,
                    msgspec.json.encode(sample).decode(),
                )
                fresh += len(rows)
        return fresh

    async def get_sample(self, event_id: str) -> StoredSample | None:
        async with self.session() as s:
            rows = await s.fetch("SELECT doc FROM quality_samples WHERE event_id = ?", event_id)
        return _sample_decoder.decode(rows[0][0]) if rows else None

    async def samples(self, query: SampleFilter) -> list[StoredSample]:
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("service = ?", query.service),
            ("at >= ?", query.start),
            ("at < ?", query.end),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        if query.contains:
            where.append("body LIKE ? ESCAPE '\\'")
            args.append(_like(query.contains))
        if query.before is not None:
            where.append("(at < ? OR (at = ? AND event_id < ?))")
            args.extend([query.before[0], query.before[0], query.before[1]])
        sql = "SELECT doc FROM quality_samples"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, event_id DESC LIMIT ?"
        async with self.session() as s:
            rows = await s.fetch(sql, *args, query.limit)
        return [_sample_decoder.decode(row[0]) for row in rows]

    async def write_profiles(self, rows: list[tuple[str, float, bytes]]) -> None:
        if not rows:
            return
        async with self.session() as s:
            for service, bucket, profile in rows:
                await s.execute(
                    "INSERT INTO quality_profiles (service, bucket, profile) VALUES (?, ?, ?)",
                    service,
                    bucket,
                    profile,
                )

    async def profiles(self, service: str, start: float, end: float) -> list[tuple[float, bytes]]:
        async with self.session() as s:
            rows = await s.fetch(
                "SELECT bucket, profile FROM quality_profiles "
                "WHERE service = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, id",
                service,
                start,
                end,
            )
        return [(float(r[0]), bytes(r[1])) for r in rows]

    async def profiled_services(self) -> list[str]:
        async with self.session() as s:
            rows = await s.fetch("SELECT DISTINCT service FROM quality_profiles ORDER BY service")
        return [str(r[0]) for r in rows]

    async def first_profile(self, service: str) -> float | None:
        async with self.session() as s:
            rows = await s.fetch(
                "SELECT MIN(bucket) FROM quality_profiles WHERE service = ?", service
            )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def put_reference(self, reference: Reference) -> None:
        async with self.session() as s:
            await s.execute(
                "DELETE FROM quality_references WHERE service = ? AND name = ?",
                reference.service,
                reference.name,
            )
            await s.execute(
                "INSERT INTO quality_references (service, name, created_at, source, profile) "
                "VALUES (?, ?, ?, ?, ?)",
                reference.service,
                reference.name,
                reference.created_at,
                msgspec.json.encode(reference.source).decode(),
                reference.profile,
            )

    async def get_reference(self, service: str, name: str) -> Reference | None:
        async with self.session() as s:
            rows = await s.fetch(
                "SELECT service, name, created_at, source, profile FROM quality_references "
                "WHERE service = ? AND name = ?",
                service,
                name,
            )
        return _reference(rows[0]) if rows else None

    async def references(self, service: str) -> list[Reference]:
        async with self.session() as s:
            rows = await s.fetch(
                "SELECT service, name, created_at, source, profile FROM quality_references "
                "WHERE service = ? ORDER BY name",
                service,
            )
        return [_reference(r) for r in rows]

    async def delete_reference(self, service: str, name: str) -> bool:
        async with self.session() as s:
            rows = await s.fetch(
                "DELETE FROM quality_references WHERE service = ? AND name = ? RETURNING name",
                service,
                name,
            )
        return bool(rows)

    async def delete_before(
        self, *, samples_before: float, profiles_before: float
    ) -> tuple[int, int]:
        async with self.session() as s:
            samples = await s.fetch(
                "DELETE FROM quality_samples WHERE at < ? RETURNING event_id", samples_before
            )
            profiles = await s.fetch(
                "DELETE FROM quality_profiles WHERE bucket < ? RETURNING id", profiles_before
            )
        return len(samples), len(profiles)


def _reference(row: Sequence[Any]) -> Reference:
    return Reference(
        service=str(row[0]),
        name=str(row[1]),
        created_at=float(row[2]),
        source=_source_decoder.decode(row[3]),
        profile=bytes(row[4]),
    )
