"""The event-store contract: raw events (idempotent on id) and per-minute rollups.

``write_batch`` stores events and updates the rollups in one transaction, counting
only events it had not stored before, so a redelivered batch changes nothing.
Series (p95 over time, error rate, ...) are computed from rollups by
:mod:`modelmonitor.query.history`, so backends stay thin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

from modelmonitor.aggregate import Aggregate
from modelmonitor.events import RequestEvent

__all__ = [
    "ROLLUP_SECONDS",
    "EventStore",
    "RequestFilter",
    "RollupRow",
    "ServiceSummary",
]

ROLLUP_SECONDS = 60


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
        self, *, start: float, end: float, service: str | None = None, route: str | None = None
    ) -> list[RollupRow]:
        """Rows with ``start <= bucket < end``, ordered by bucket."""
        ...

    async def recent_requests(self, query: RequestFilter) -> list[RequestEvent]:
        """Newest first, at most ``query.limit``."""
        ...

    async def delete_before(self, *, raw_before: float, rollups_before: float) -> tuple[int, int]:
        """Retention: delete older raw events and rollups; return both counts."""
        ...
