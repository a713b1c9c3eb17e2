"""Historical series from per-minute rollups: counts, rates and merged percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from modelmonitor.aggregate import Aggregate
from modelmonitor.storage.base import ROLLUP_SECONDS, EventStore

__all__ = [
    "METRICS",
    "RouteSummary",
    "Series",
    "choose_step",
    "load_series",
    "route_summaries",
]

#: metric name -> unit
METRICS: dict[str, str] = {
    "requests": "count",
    "rps": "1/s",
    "errors": "count",
    "error_rate": "ratio",
    "p50": "seconds",
    "p90": "seconds",
    "p95": "seconds",
    "p99": "seconds",
    "mean_latency": "seconds",
    "status_2xx": "count",
    "status_3xx": "count",
    "status_4xx": "count",
    "status_5xx": "count",
    "status_err": "count",
    "request_bytes": "bytes",
    "response_bytes": "bytes",
}
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
_NICE_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)


class Series(msgspec.Struct):
    metric: str
    unit: str
    points: list[tuple[float, float | None]]


class RouteSummary(msgspec.Struct, kw_only=True):
    method: str
    route: str
    requests: int
    errors: int
    error_rate: float
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None


def choose_step(start: float, end: float, *, requested: float | None, max_points: int) -> int:
    """A whole-minute step giving at most ``max_points`` points (about 120 when not asked)."""
    span = max(end - start, ROLLUP_SECONDS)
    floor = max(ROLLUP_SECONDS, math.ceil(span / max_points))
    if requested is not None:
        step = max(requested, floor)
        return int(math.ceil(step / ROLLUP_SECONDS) * ROLLUP_SECONDS)
    wanted = max(floor, span / 120)
    return next((s for s in _NICE_STEPS if s >= wanted), int(math.ceil(wanted / 86400) * 86400))


def _value(slot: Aggregate, metric: str, step: int) -> float | None:
    """One metric of a step's aggregate."""
    n = slot.requests
    if metric == "requests":
        return float(n)
    if metric == "rps":
        return n / step
    if metric == "errors":
        return float(slot.errors)
    if metric == "error_rate":
        return slot.errors / n if n else None
    if metric in _QUANTILES:
        return slot.latency.quantile(_QUANTILES[metric])
    if metric == "mean_latency":
        return slot.latency.total / n if n else None
    if metric.startswith("status_"):
        return float(slot.status_classes.get(metric.removeprefix("status_"), 0))
    if metric == "request_bytes":
        return float(slot.request_bytes)
    if metric == "response_bytes":
        return float(slot.response_bytes)
    raise ValueError(f"unknown metric {metric!r}")


async def load_series(
    store: EventStore,
    *,
    service: str,
    route: str | None,
    metrics: Sequence[str],
    start: float,
    end: float,
    step: int,
) -> list[Series]:
    """One series per metric, a point per step from ``start`` (aligned down) to ``end``."""
    first = math.floor(start / step) * step
    rows = await store.rollups(start=first, end=end, service=service, route=route)
    slots: dict[int, Aggregate] = {}
    for row in rows:
        index = int((row.bucket - first) // step)
        slot = slots.get(index)
        if slot is None:
            slot = slots[index] = Aggregate()
        slot.merge(row.aggregate())
    count = max(1, math.ceil((end - first) / step))
    empty = Aggregate()
    result = []
    for metric in metrics:
        points: list[tuple[float, float | None]] = []
        for index in range(count):
            slot = slots.get(index)
            if slot is None:
                zero_ok = metric in ("requests", "rps", "errors") or metric.startswith(
                    ("status_", "request_", "response_")
                )
                points.append(
                    (float(first + index * step), _value(empty, metric, step) if zero_ok else None)
                )
            else:
                points.append((float(first + index * step), _value(slot, metric, step)))
        result.append(Series(metric=metric, unit=METRICS[metric], points=points))
    return result


async def route_summaries(
    store: EventStore, *, service: str, start: float, end: float
) -> list[RouteSummary]:
    """Per-route totals over a range, busiest first."""
    rows = await store.rollups(start=start, end=end, service=service)
    by_route: dict[tuple[str, str], Aggregate] = {}
    for row in rows:
        key = (row.method, row.route)
        slot = by_route.get(key)
        if slot is None:
            slot = by_route[key] = Aggregate()
        slot.merge(row.aggregate())
    summaries = [
        RouteSummary(
            method=method,
            route=route,
            requests=slot.requests,
            errors=slot.errors,
            error_rate=slot.errors / slot.requests if slot.requests else 0.0,
            p50_seconds=slot.latency.quantile(0.5),
            p95_seconds=slot.latency.quantile(0.95),
            p99_seconds=slot.latency.quantile(0.99),
        )
        for (method, route), slot in by_route.items()
    ]
    summaries.sort(key=lambda s: s.requests, reverse=True)
    return summaries
