"""The event-store contract: raw events (idempotent on id) and rollups in three
downsampling tiers (minute, hour, day), each with its own retention.

``write_batch`` stores events and updates the rollups in one transaction, counting
only events it had not stored before, so a redelivered batch changes nothing
(TimescaleDB computes the tiers as continuous aggregates instead).
Series (p95 over time, error rate, ...) are computed from rollups by
:mod:`modelmonitor.pipeline.history`, so backends stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable

import msgspec

from modelmonitor.events import RequestEvent

__all__ = [
    "ROLLUP_SECONDS",
    "EventStore",
    "RequestFilter",
    "RollupRow",
    "RollupTier",
    "ServiceSummary",
    "rollup_from_row",
    "rollup_values",
]

ROLLUP_SECONDS = 60


class RollupTier(IntEnum):
    """A downsampling tier: the width of its buckets in seconds."""

    MINUTE = 60
    HOUR = 3600
    DAY = 86400

    @property
    def table(self) -> str:
        """The table (or TimescaleDB continuous aggregate) holding this tier."""
        return _TIER_TABLES[self]

    @classmethod
    def for_step(cls, step: float) -> RollupTier:
        """The coarsest tier whose buckets tile ``step`` exactly."""
        for tier in (cls.DAY, cls.HOUR):
            if step >= tier and step % tier == 0:
                return tier
        return cls.MINUTE


_TIER_TABLES = {
    RollupTier.MINUTE: "rollups",
    RollupTier.HOUR: "rollups_hour",
    RollupTier.DAY: "rollups_day",
}


class RollupRow(msgspec.Struct, kw_only=True):
    """One service/method/route/minute aggregate. ``latency_sketch`` is a serialised
    :class:`~modelmonitor.sketch.LatencySketch`."""

    bucket: float  # start of the minute, Unix seconds
    service: str
    method: str
    route: str
    requests: int
    errors: int
    status_classes: dict[str, int]
    request_bytes: int
    response_bytes: int
    latency_sum_seconds: float
    latency_sketch: bytes


_classes_decoder = msgspec.json.Decoder(dict[str, int])


def rollup_from_row(row: Sequence[Any]) -> RollupRow:
    """A rollup from a database row in ``RollupRow`` field order (status classes as JSON)."""
    return RollupRow(
        bucket=row[0],
        service=row[1],
        method=row[2],
        route=row[3],
        requests=row[4],
        errors=row[5],
        status_classes=_classes_decoder.decode(row[6]),
        request_bytes=row[7],
        response_bytes=row[8],
        latency_sum_seconds=row[9],
        latency_sketch=bytes(row[10]),
    )


def rollup_values(row: RollupRow) -> tuple[Any, ...]:
    """A rollup as database values in ``RollupRow`` field order (the inverse of
    :func:`rollup_from_row`)."""
    return (
        row.bucket,
        row.service,
        row.method,
        row.route,
        row.requests,
        row.errors,
        msgspec.json.encode(row.status_classes).decode(),
        row.request_bytes,
        row.response_bytes,
        row.latency_sum_seconds,
        row.latency_sketch,
    )


class ServiceSummary(msgspec.Struct, kw_only=True):
    name: str
    first_seen: float
    last_seen: float
    requests: int


class RequestFilter(msgspec.Struct, kw_only=True):
    service: str | None = None
    route: str | None = None
    method: str | None = None
    status_class: str | None = None  # "2xx" .. "5xx" or "err"
    errors_only: bool = False
    min_latency_seconds: float | None = None
    start: float | None = None
    end: float | None = None
    #: Cursor: only events strictly older than (start, id).
    before: tuple[float, str] | None = None
    limit: int = 100


@runtime_checkable
class EventStore(Protocol):
    url: str

    async def connect(self) -> None:
        """Open, and create or migrate the schema."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    async def write_batch(self, events: Sequence[RequestEvent]) -> int:
        """Store events and update rollups atomically; return how many were new."""
        ...

    async def count_events(self, *, service: str | None = None) -> int: ...

    async def services(self) -> list[ServiceSummary]: ...

    async def rollups(
        self,
        *,
        start: float,
        end: float,
        service: str | None = None,
        route: str | None = None,
        tier: RollupTier = RollupTier.MINUTE,
    ) -> list[RollupRow]:
        """Rows of ``tier`` with ``start <= bucket < end``, ordered by bucket."""
        ...

    async def recent_requests(self, query: RequestFilter) -> list[RequestEvent]:
        """Newest first, at most ``query.limit``."""
        ...

    async def delete_before(
        self,
        *,
        raw_before: float,
        rollups_before: float,
        tiers_before: Mapping[RollupTier, float] | None = None,
    ) -> tuple[int, int]:
        """Retention: delete older raw events and rollups (``rollups_before`` for the
        minute tier, ``tiers_before`` for the hour and day tiers; 0 or absent keeps
        everything); return the events and rollup rows deleted."""
        ...
