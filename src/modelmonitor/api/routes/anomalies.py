"""Anomaly scores and expected bands: ``GET /api/v1/anomalies`` and the helpers the
realtime and historical metric routes use to add them.

Points come from the alert store, where the one anomaly tracker stores them, so
every API replica serves the same scores.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Query

from modelmonitor.alerts.models import AnomalyPoint
from modelmonitor.alerts.rules import ANOMALY_METRICS, LANGUAGE_ANOMALY_METRICS
from modelmonitor.alerts.store.base import AlertStore
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import ApiContext, Context, invalid, json_response, parse_range
from modelmonitor.live.base import LiveAnomaly, LiveSnapshot

__all__ = [
    "HISTORY_TO_ANOMALY",
    "AnomalyEvent",
    "AnomalySeries",
    "add_live_anomalies",
    "anomaly_series",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["anomalies"])

#: Historical metric name -> the anomaly-tracked metric it matches.
HISTORY_TO_ANOMALY = {
    "p50": "latency_p50",
    "p95": "latency_p95",
    "p99": "latency_p99",
    "error_rate": "error_rate",
    "rps": "throughput",
    "requests": "throughput",
    "ttft_p95": "ttft_p95",
    "tokens_per_second": "tokens_per_second",
}
#: Newest points older than this are not shown as live (the tracker stopped).
_LIVE_MAX_AGE = 60.0


class AnomalyEvent(msgspec.Struct, kw_only=True):
    """The start of an anomaly (``kind: anomaly``) or a detector re-learning after a
    lasting shift (``kind: new_normal``): the member that fired and the band then."""

    at: float
    kind: str
    member: str
    value: float
    score: float
    expected: float
    lower: float
    upper: float


class AnomalySeries(msgspec.Struct, kw_only=True):
    """One metric's scored points. ``points`` rows are
    ``[t, value, score, expected, lower, upper, anomalous]``; with more points than
    ``max_history_points`` in the range, each ``step_seconds`` bucket keeps its
    highest-scoring point. ``events`` are never thinned."""

    service: str
    metric: str
    unit: str
    step_seconds: float
    points: list[tuple[float, float, float, float, float, float, bool]]
    events: list[AnomalyEvent] = []


def _events(points: list[AnomalyPoint]) -> list[AnomalyEvent]:
    """Anomaly starts (first point of an episode) and new-normal points."""
    events = []
    was_anomalous = False
    for p in points:
        kind = ""
        if p.event:
            kind = p.event
        elif p.anomalous and not was_anomalous and p.score > 0.0:
            kind = "anomaly"
        was_anomalous = p.anomalous
        if kind:
            events.append(
                AnomalyEvent(
                    at=p.at,
                    kind=kind,
                    member=p.member,
                    value=p.value,
                    score=p.score,
                    expected=p.expected,
                    lower=p.lower,
                    upper=p.upper,
                )
            )
    return events


class AnomalyList(msgspec.Struct, kw_only=True):
    start: float
    end: float
    #: The score at which a detector alarms (rules choose their own, see docs/anomaly.md).
    alarm_score: float = 0.5
    series: list[AnomalySeries]


_UNITS = {"error_rate": "ratio", "throughput": "1/s"}


def _store(context: ApiContext) -> AlertStore | None:
    system = context.extras.get("alerts")
    return system.store if isinstance(system, AlertSystem) else None


async def add_live_anomalies(context: ApiContext, snapshot: LiveSnapshot) -> None:
    """Fill each service's ``anomalies`` with its newest scored points."""
    store = _store(context)
    if store is None:
        return
    points = await store.anomaly_points(start=snapshot.at - _LIVE_MAX_AGE, end=snapshot.at + 1)
    latest: dict[tuple[str, str], AnomalyPoint] = {}
    for point in points:  # oldest first: the last one wins
        latest[(point.service, point.metric)] = point
    for entry in snapshot.services:
        found = {
            metric: LiveAnomaly(
                value=point.value,
                score=point.score,
                expected=point.expected,
                lower=point.lower,
                upper=point.upper,
                at=point.at,
                anomalous=point.anomalous,
                member=point.member,
                event=point.event,
            )
            for (service, metric), point in sorted(latest.items())
            if service == entry.service
        }
        if found:
            entry.anomalies = found


async def anomaly_series(
    context: ApiContext,
    *,
    service: str,
    metrics: list[str],
    start: float,
    end: float,
) -> list[AnomalySeries]:
    """Scored points of ``metrics`` (tracked names) over ``[start, end)``, thinned to
    ``max_history_points`` per series keeping the highest score of each bucket."""
    store = _store(context)
    if store is None:
        return []
    limit = context.settings.max_history_points
    result = []
    for metric in metrics:
        points = await store.anomaly_points(start=start, end=end, service=service, metric=metric)
        events = _events(points)
        step = 0.0
        if len(points) > limit:
            step = (end - start) / limit
            buckets: dict[int, AnomalyPoint] = {}
            for point in points:
                index = int((point.at - start) // step)
                kept = buckets.get(index)
                if kept is None or point.score > kept.score:
                    buckets[index] = point
            points = [buckets[index] for index in sorted(buckets)]
        result.append(
            AnomalySeries(
                service=service,
                metric=metric,
                unit=_UNITS.get(metric, "seconds"),
                step_seconds=step,
                points=[
                    (p.at, p.value, p.score, p.expected, p.lower, p.upper, p.anomalous)
                    for p in points
                ],
                events=events,
            )
        )
    return result


@router.get(
    "/anomalies",
    responses=schema_response(AnomalyList),
    summary="Anomaly scores and expected bands of a service's metrics over a range",
)
async def anomalies(
    context: Context,
    service: Annotated[str, Query(min_length=1)],
    metric: Annotated[
        str | None, Query(description=f"Comma-separated; any of {', '.join(ANOMALY_METRICS)}")
    ] = None,
    start: Annotated[str, Query(description="ISO-8601, -1h, now or Unix seconds")] = "-1h",
    end: Annotated[str, Query(description="ISO-8601, -5m, now or Unix seconds")] = "now",
) -> object:
    metrics = list(ANOMALY_METRICS)
    if metric is not None:
        metrics = [name.strip() for name in metric.split(",") if name.strip()]
        unknown = [name for name in metrics if name not in ANOMALY_METRICS]
        if not metrics or unknown:
            invalid(
                "metric",
                f"unknown metric {', '.join(unknown) or '(none)'}; "
                f"use {', '.join(ANOMALY_METRICS)}",
            )
    start_at, end_at = parse_range(context, start, end)
    await context.require_service(service)
    series = await anomaly_series(
        context, service=service, metrics=metrics, start=start_at, end=end_at
    )
    if metric is None:  # language-model metrics only where the service has them
        series = [s for s in series if s.points or s.metric not in LANGUAGE_ANOMALY_METRICS]
    return json_response(AnomalyList(start=start_at, end=end_at, series=series))
