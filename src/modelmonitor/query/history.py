"""Historical series from rollups: counts, rates and merged percentiles.

A series reads the coarsest rollup tier whose buckets tile its step (minute, hour
or day; :meth:`RollupTier.for_step`), so 30 days at a 6-hour step merge 720 hourly
rows per route instead of 43,200 minute rows, and still answer once the minute
tier's shorter retention has removed that past."""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from modelmonitor.aggregate import Aggregate
from modelmonitor.storage.base import ROLLUP_SECONDS, EventStore, RollupRow, RollupTier
from modelmonitor.storage.model_rollups import ModelRollup

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
    # Language models (docs/models.md).
    "prompt_tokens": "tokens",
    "completion_tokens": "tokens",
    "prompt_tokens_per_second": "tokens/s",
    "completion_tokens_per_second": "tokens/s",
    "tokens_per_second": "tokens/s",
    "ttft_p50": "seconds",
    "ttft_p95": "seconds",
    "cost_usd": "usd",
    "cost_per_hour": "usd/h",
    "finish_reason_length_rate": "ratio",
}
#: Metrics that are 0 (not missing) in a step without requests.
_ZERO_WHEN_IDLE = frozenset(
    {
        "requests",
        "rps",
        "errors",
        "request_bytes",
        "response_bytes",
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_per_second",
        "completion_tokens_per_second",
        "cost_usd",
        "cost_per_hour",
    }
)
_TTFT = {"ttft_p50": 0.5, "ttft_p95": 0.95}
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


def _whole(step: float) -> int:
    """``step`` rounded up to whole minutes, or whole hours (days) past an hour (a day),
    so that it is tiled by the coarsest tier it spans."""
    unit = ROLLUP_SECONDS
    for tier in (RollupTier.HOUR, RollupTier.DAY):
        if step > tier:
            unit = tier
    return int(math.ceil(step / unit) * unit)


def choose_step(start: float, end: float, *, requested: float | None, max_points: int) -> int:
    """A whole-minute step giving at most ``max_points`` points (about 120 when not asked)."""
    span = max(end - start, ROLLUP_SECONDS)
    # max_points - 1: aligning the first point down to the step can add one.
    floor = max(ROLLUP_SECONDS, math.ceil(span / max(1, max_points - 1)))
    if requested is not None:
        return _whole(max(requested, floor))
    wanted = max(floor, span / 120)
    return next((s for s in _NICE_STEPS if s >= wanted), _whole(wanted))


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
    return _language_value(slot, metric, step)


def _language_value(slot: Aggregate, metric: str, step: int) -> float | None:
    if metric in ("prompt_tokens", "completion_tokens", "cost_usd"):
        return float(getattr(slot, metric))
    if metric in ("prompt_tokens_per_second", "completion_tokens_per_second"):
        return float(getattr(slot, metric.removesuffix("_per_second"))) / step
    if metric == "cost_per_hour":
        return slot.cost_usd / step * 3600
    if metric == "tokens_per_second":
        return slot.completion_tokens / slot.output_seconds if slot.output_seconds else None
    if metric in _TTFT:
        return slot.ttft.quantile(_TTFT[metric]) if slot.ttft.count else None
    if metric == "finish_reason_length_rate":
        finished = sum(slot.finish_reasons.values())
        return slot.finish_reasons.get("length", 0) / finished if finished else None
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
    tier: RollupTier | None = None,
    model: str | None = None,
    consumer: str | None = None,
) -> list[Series]:
    """One series per metric, a point per step from ``start`` (aligned down) to ``end``,
    read from ``tier`` (by default the coarsest that tiles ``step``).

    With ``model`` or ``consumer``, the series count only those requests (from the
    per-minute model rollups, which do not split by route)."""
    tier = RollupTier.for_step(step) if tier is None else tier
    first = math.floor(start / step) * step
    rows: Sequence[RollupRow | ModelRollup]
    if model is not None or consumer is not None:
        rows = await store.model_rollups(
            start=first, end=end, service=service, model=model, consumer=consumer
        )
    else:
        rows = await store.rollups(start=first, end=end, service=service, route=route, tier=tier)
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
                zero_ok = metric in _ZERO_WHEN_IDLE or metric.startswith("status_")
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
