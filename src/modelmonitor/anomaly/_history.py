"""Warm-up data for a new detector: the service's per-minute rollups already stored."""

from __future__ import annotations

from modelmonitor.query.history import load_series
from modelmonitor.storage.base import EventStore

__all__ = ["history_points"]

#: Tracked metric -> the historical metric holding it.
_FROM_HISTORY = {
    "latency_p50": "p50",
    "latency_p95": "p95",
    "latency_p99": "p99",
    "error_rate": "error_rate",
    "throughput": "rps",
}


async def history_points(
    store: EventStore,
    *,
    service: str,
    metrics: list[str],
    start: float,
    end: float,
    step: int,
    min_requests: int,
) -> dict[str, list[tuple[float, float]]]:
    """``(end of step, value)`` points of ``metrics`` over ``[start, end)``, one per
    ``step`` seconds (a whole number of minutes, the rollups' resolution).

    Latency and error metrics keep minutes with at least ``min_requests`` requests;
    throughput starts at the first minute with traffic (before it the service did
    not exist, which is not a throughput of 0).
    """
    wanted = [m for m in metrics if m in _FROM_HISTORY]
    if not wanted or end <= start:
        return {}
    names = ["requests", *(_FROM_HISTORY[m] for m in wanted)]
    series = await load_series(
        store,
        service=service,
        route=None,
        metrics=names,
        start=start,
        end=end,
        step=step,
    )
    requests = [value or 0.0 for _, value in series[0].points]
    first = next((i for i, n in enumerate(requests) if n > 0), len(requests))
    out: dict[str, list[tuple[float, float]]] = {}
    for metric, found in zip(wanted, series[1:], strict=True):
        points = []
        for i, (at, value) in enumerate(found.points):
            if i < first or value is None or at + step > end:
                continue
            if metric != "throughput" and requests[i] < min_requests:
                continue
            points.append((at + step, value))
        out[metric] = points
    return out
