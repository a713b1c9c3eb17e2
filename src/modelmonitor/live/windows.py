"""Bucketed sliding windows: the arithmetic shared by every live-state backend."""

from __future__ import annotations

import math
from collections.abc import Iterable

from modelmonitor.aggregate import Aggregate, Columns, WindowStats
from modelmonitor.types import ServiceStatus

__all__ = [
    "COARSE_SECONDS",
    "FINE_SECONDS",
    "bucket_plan",
    "last_seen_by_service",
    "service_status",
    "window_stats",
]

FINE_SECONDS = 1
COARSE_SECONDS = 10


def bucket_plan(seconds: int, now: float) -> tuple[list[int], list[int], float]:
    """Which buckets make a window ending at ``now``.

    Returns (fine bucket starts, coarse bucket starts, covered seconds). A window
    is the last ``seconds`` whole seconds plus the current second so far, so a
    request shows up as soon as it is recorded; rates divide by the time
    actually covered. Windows of 10 s or less use 1-second buckets; longer ones
    use whole 10-second buckets and then the 1-second buckets of the current
    10-second bucket.
    """
    current = math.floor(now)
    partial = now - current
    if seconds <= COARSE_SECONDS:
        fine = list(range(current - seconds, current + 1))
        return fine, [], seconds + partial
    coarse_now = current - current % COARSE_SECONDS
    fine = list(range(coarse_now, current + 1))
    whole = (seconds - (current - coarse_now)) // COARSE_SECONDS
    coarse = [coarse_now - COARSE_SECONDS * (i + 1) for i in range(whole)]
    return fine, coarse, (current - coarse_now) + whole * COARSE_SECONDS + partial


def window_stats(
    buckets: Iterable[Aggregate], *, window_seconds: int, covered: float
) -> WindowStats:
    """The stats of a window made of these buckets."""
    return Aggregate.total(buckets).to_stats(window_seconds=window_seconds, covered=covered)


def last_seen_by_service(columns: Columns) -> dict[str, float]:
    """When each service's newest request of a batch finished."""
    seen: dict[str, float] = {}
    finished = (columns["start"] + columns["latency_seconds"]).tolist()
    for service, at in zip(columns.raw("service"), finished, strict=True):
        if at > seen.get(service, 0.0):
            seen[service] = at
    return seen


def service_status(minute: WindowStats, *, last_seen: float | None, now: float) -> ServiceStatus:
    """healthy / degraded / down / idle, from the 1-minute window."""
    if minute.requests == 0:
        if last_seen is None or now - last_seen > 300:
            return "idle"
        return "healthy"
    if minute.requests >= 3 and minute.error_rate >= 0.5:
        return "down"
    if minute.error_rate >= 0.05:
        return "degraded"
    return "healthy"
