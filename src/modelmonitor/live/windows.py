"""Bucketed sliding windows: the arithmetic shared by every live-state backend."""

from __future__ import annotations

import math
from collections.abc import Iterable

from modelmonitor.events import RequestEvent
from modelmonitor.live.base import WindowStats
from modelmonitor.sketch import LatencySketch

__all__ = [
    "COARSE_SECONDS",
    "FINE_SECONDS",
    "Bucket",
    "bucket_plan",
    "service_status",
    "window_stats",
]

FINE_SECONDS = 1
COARSE_SECONDS = 10


class Bucket:
    """Counts for one time bucket of one series."""

    __slots__ = (
        "errors",
        "latency_sum",
        "request_bytes",
        "requests",
        "response_bytes",
        "sketch",
        "status_classes",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.request_bytes = 0
        self.response_bytes = 0
        self.latency_sum = 0.0
        self.status_classes: dict[str, int] = {}
        self.sketch = LatencySketch()

    def add(self, event: RequestEvent) -> None:
        self.requests += 1
        if event.is_error:
            self.errors += 1
        self.request_bytes += event.request_bytes
        self.response_bytes += event.response_bytes
        self.latency_sum += event.latency_seconds
        status_class = event.status_class
        self.status_classes[status_class] = self.status_classes.get(status_class, 0) + 1
        self.sketch.add(event.latency_seconds)

    def merge(self, other: Bucket) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.request_bytes += other.request_bytes
        self.response_bytes += other.response_bytes
        self.latency_sum += other.latency_sum
        for name, count in other.status_classes.items():
            self.status_classes[name] = self.status_classes.get(name, 0) + count
        self.sketch.merge(other.sketch)


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


def window_stats(buckets: Iterable[Bucket], *, window_seconds: int, covered: float) -> WindowStats:
    total = Bucket()
    for bucket in buckets:
        total.merge(bucket)
    stats = WindowStats(window_seconds=window_seconds)
    stats.requests = total.requests
    stats.errors = total.errors
    stats.rps = total.requests / covered if covered else 0.0
    stats.error_rate = total.errors / total.requests if total.requests else 0.0
    stats.status_classes = total.status_classes
    stats.request_bytes = total.request_bytes
    stats.response_bytes = total.response_bytes
    if total.requests:
        sketch = total.sketch
        stats.p50_seconds = sketch.quantile(0.5)
        stats.p90_seconds = sketch.quantile(0.9)
        stats.p95_seconds = sketch.quantile(0.95)
        stats.p99_seconds = sketch.quantile(0.99)
        stats.mean_seconds = total.latency_sum / total.requests
    return stats


def service_status(minute: WindowStats, *, last_seen: float | None, now: float) -> str:
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
