"""The event-store contract: raw events (idempotent on id) and rollups in three
downsampling tiers (minute, hour, day), each with its own retention.

``write_batch`` stores events and updates the rollups in one transaction, counting
only events it had not stored before, so a redelivered batch changes nothing
(TimescaleDB computes the tiers as continuous aggregates instead).
Series (p95 over time, error rate, ...) are computed from rollups by
:mod:`modelmonitor.query.history`, so backends stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from modelmonitor.aggregate import Aggregate
from modelmonitor.events import RequestEvent

if TYPE_CHECKING:
    from modelmonitor.storage.model_rollups import DimensionCaps, ModelRollup

__all__ = [
    "EVENT_FIELDS",
    "MODEL_FIELDS",
    "ROLLUP_SECONDS",
    "EventStore",
    "RequestFilter",
    "RollupRow",
    "RollupTier",
    "ServiceSummary",
    "event_from_row",
]

ROLLUP_SECONDS = 60

#: Every stored event column, in :class:`RequestEvent` field order.
EVENT_FIELDS: tuple[str, ...] = RequestEvent.__struct_fields__
#: The model-aware fields (issue 13) added after the first schema, with their Python
#: type: stores add them to older tables with a zero default.
MODEL_FIELDS: dict[str, type] = {
    field.name: field.type
    for field in msgspec.structs.fields(RequestEvent)
    if field.name in EVENT_FIELDS[EVENT_FIELDS.index("consumer") :]
}
_BOOL_INDEXES = tuple(
    index for index, field in enumerate(msgspec.structs.fields(RequestEvent)) if field.type is bool
)


def event_from_row(row: Sequence[Any]) -> RequestEvent:
    """An event from a database row in :data:`EVENT_FIELDS` order (booleans stored as
    integers come back as ``bool``)."""
    values = list(row)
    for index in _BOOL_INDEXES:
        values[index] = bool(values[index])
    return RequestEvent(*values)


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
    """One service/method/route/minute aggregate: the columns of
    :meth:`~modelmonitor.aggregate.Aggregate.to_columns` under its key.
    ``latency_sketch`` is a serialised :class:`~modelmonitor.sketch.LatencySketch`;
    ``measures`` holds the measures added after the first schema (tokens, cost, ...)."""

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
    measures: bytes = b""

    def aggregate(self) -> Aggregate:
        """The row's values as an :class:`~modelmonitor.aggregate.Aggregate`."""
        return Aggregate.from_columns(
            (
                self.requests,
                self.errors,
                self.status_classes,
                self.request_bytes,
                self.response_bytes,
                self.latency_sum_seconds,
                self.latency_sketch,
                self.measures,
            )
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
    model: str | None = None
    consumer: str | None = None
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
    #: Distinct models and consumers per service kept in the model rollups.
    caps: DimensionCaps

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

    async def model_rollups(
        self,
        *,
        start: float,
        end: float,
        service: str,
        model: str | None = None,
        consumer: str | None = None,
    ) -> list[ModelRollup]:
        """One service's rollups by model and consumer with ``start <= bucket < end``."""
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
