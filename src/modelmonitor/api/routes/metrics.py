"""Metrics: realtime windows, historical series (JSON or CSV) and per-route summaries."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Query
from fastapi.responses import Response

from modelmonitor.api._openapi import (
    POSITIVE_DURATION,
    TIME_PATTERN,
    list_pattern,
    schema_response,
)
from modelmonitor.api.deps import ApiContext, Context, invalid, json_response, parse_range
from modelmonitor.live.base import LiveSnapshot
from modelmonitor.query.anomalies import HISTORY_TO_ANOMALY, AnomalySeries
from modelmonitor.query.history import (
    METRICS,
    RouteSummary,
    Series,
    choose_step,
    load_series,
    route_summaries,
)
from modelmonitor.storage.base import RollupTier
from modelmonitor.timeparse import parse_duration

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["metrics"])

DEFAULT_METRICS = "requests,error_rate,p50,p95,p99"


class HistoricalSeries(msgspec.Struct, kw_only=True):
    service: str
    route: str | None
    start: float
    end: float
    step_seconds: int
    #: The rollup tier read: "minute", "hour" or "day" (the coarsest tiling the step).
    tier: str = "minute"
    capped: bool = False
    series: list[Series]
    #: With ``anomaly=true``: scores and expected bands of the requested latency,
    #: error-rate and throughput metrics (p50/p95/p99, error_rate, rps/requests).
    anomalies: list[AnomalySeries] | None = None


class RouteList(msgspec.Struct, kw_only=True):
    start: float
    end: float
    routes: list[RouteSummary]


@router.get(
    "/metrics/realtime",
    responses=schema_response(LiveSnapshot),
    summary="Live windows (1 s, 10 s, 1 min, 5 min) per service and route",
)
async def realtime(
    context: Context,
    service: Annotated[str | None, Query(min_length=1, description="Only this service")] = None,
) -> object:
    if service is not None:
        await context.require_service(service)
    return json_response(await context.read.snapshot(service))


def _time_range(context: ApiContext, start: str, end: str) -> tuple[float, float, bool]:
    start_at, end_at = parse_range(context, start, end)
    capped = False
    settings = context.settings
    # The longest-kept tier bounds how far back a series can go.
    oldest = end_at - max(
        settings.retention_rollups, settings.retention_rollups_hour, settings.retention_rollups_day
    )
    if start_at < oldest:
        start_at, capped = oldest, True
    return start_at, end_at, capped


@router.get(
    "/metrics/historical",
    responses=schema_response(HistoricalSeries, csv=True),
    summary="Series over time from the minute, hour or day rollups (JSON, or CSV)",
)
async def historical(
    context: Context,
    service: Annotated[str, Query(min_length=1)],
    route: Annotated[str | None, Query(min_length=1)] = None,
    model: Annotated[
        str | None, Query(min_length=1, description="Only this model's requests")
    ] = None,
    consumer: Annotated[
        str | None, Query(min_length=1, description="Only this consumer's requests")
    ] = None,
    metric: Annotated[
        str,
        Query(
            description=f"Comma-separated; any of {', '.join(METRICS)}",
            pattern=list_pattern(METRICS),
        ),
    ] = DEFAULT_METRICS,
    start: Annotated[
        str, Query(description="ISO-8601, -1h, now or Unix seconds", pattern=TIME_PATTERN)
    ] = "-1h",
    end: Annotated[
        str, Query(description="ISO-8601, -5m, now or Unix seconds", pattern=TIME_PATTERN)
    ] = "now",
    step: Annotated[
        str | None,
        Query(description="60s, 5m, 1h...; chosen when absent", pattern=POSITIVE_DURATION),
    ] = None,
    format: Literal["json", "csv"] = "json",
    anomaly: Annotated[
        bool, Query(description="Add anomaly scores and expected bands (JSON only)")
    ] = False,
) -> object:
    metrics = [name.strip() for name in metric.split(",") if name.strip()]
    unknown = [name for name in metrics if name not in METRICS]
    if not metrics or unknown:
        invalid(
            "metric", f"unknown metric {', '.join(unknown) or '(none)'}; use {', '.join(METRICS)}"
        )
    if route is not None and (model is not None or consumer is not None):
        invalid("route", "route cannot be combined with model or consumer")
    start_at, end_at, capped = _time_range(context, start, end)
    requested = None
    if step is not None:
        try:
            requested = parse_duration(step)
        except ValueError as exc:
            invalid("step", str(exc))
        if requested <= 0:
            invalid("step", "step must be positive")
    step_seconds = choose_step(
        start_at, end_at, requested=requested, max_points=context.settings.max_history_points
    )
    await context.require_service(service)
    series = await load_series(
        context.store,
        service=service,
        route=route,
        metrics=metrics,
        start=start_at,
        end=end_at,
        step=step_seconds,
        model=model,
        consumer=consumer,
    )
    result = HistoricalSeries(
        service=service,
        route=route,
        start=start_at,
        end=end_at,
        step_seconds=step_seconds,
        tier=RollupTier.for_step(step_seconds).name.lower(),
        capped=capped,
        series=series,
    )
    if anomaly:
        tracked = sorted({HISTORY_TO_ANOMALY[m] for m in metrics if m in HISTORY_TO_ANOMALY})
        result.anomalies = await context.read.anomaly_series(
            service=service, metrics=tracked, start=start_at, end=end_at
        )
    if format == "csv":
        return _csv(result)
    return json_response(result)


def _csv(result: HistoricalSeries) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["timestamp", *[f"{s.metric}_{s.unit}" for s in result.series]])
    if result.series:
        for index, (t, _) in enumerate(result.series[0].points):
            stamp = datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
            values = [s.points[index][1] for s in result.series]
            writer.writerow([stamp, *["" if v is None else repr(v) for v in values]])
    filename = f"{result.service}-{int(result.start)}-{int(result.end)}.csv"
    return Response(
        content=out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/routes",
    responses=schema_response(RouteList),
    summary="Per-route totals and percentiles over a range (slowest, most failing)",
)
async def routes(
    context: Context,
    service: Annotated[str, Query(min_length=1)],
    start: Annotated[str, Query(pattern=TIME_PATTERN)] = "-1h",
    end: Annotated[str, Query(pattern=TIME_PATTERN)] = "now",
) -> object:
    start_at, end_at, _ = _time_range(context, start, end)
    await context.require_service(service)
    summaries = await route_summaries(context.store, service=service, start=start_at, end=end_at)
    return json_response(RouteList(start=start_at, end=end_at, routes=summaries))
