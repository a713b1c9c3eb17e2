"""``GET /api/v1/anomalies``: anomaly scores and expected bands of a service's metrics
(built by :mod:`modelmonitor.query.anomalies`)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Query

from modelmonitor.alerts.rules import ANOMALY_METRICS, LANGUAGE_ANOMALY_METRICS
from modelmonitor.api._openapi import TIME_PATTERN, list_pattern, schema_response
from modelmonitor.api.deps import Context, invalid, json_response, parse_range
from modelmonitor.query.anomalies import AnomalySeries

__all__ = ["AnomalyList", "router"]

router = APIRouter(prefix="/api/v1", tags=["anomalies"])


class AnomalyList(msgspec.Struct, kw_only=True):
    start: float
    end: float
    #: The score at which a detector alarms (rules choose their own, see docs/anomaly.md).
    alarm_score: float = 0.5
    series: list[AnomalySeries]


@router.get(
    "/anomalies",
    responses=schema_response(AnomalyList),
    summary="Anomaly scores and expected bands of a service's metrics over a range",
)
async def anomalies(
    context: Context,
    service: Annotated[str, Query(min_length=1)],
    metric: Annotated[
        str | None,
        Query(
            description=f"Comma-separated; any of {', '.join(ANOMALY_METRICS)}",
            pattern=list_pattern(ANOMALY_METRICS),
        ),
    ] = None,
    start: Annotated[
        str, Query(description="ISO-8601, -1h, now or Unix seconds", pattern=TIME_PATTERN)
    ] = "-1h",
    end: Annotated[
        str, Query(description="ISO-8601, -5m, now or Unix seconds", pattern=TIME_PATTERN)
    ] = "now",
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
    series = await context.read.anomaly_series(
        service=service, metrics=metrics, start=start_at, end=end_at
    )
    if metric is None:  # language-model metrics only where the service has them
        series = [s for s in series if s.points or s.metric not in LANGUAGE_ANOMALY_METRICS]
    return json_response(AnomalyList(start=start_at, end=end_at, series=series))
