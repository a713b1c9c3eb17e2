"""``GET /metrics``: the live windows in Prometheus text format, for existing dashboards."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api.deps import Context
from modelmonitor.api.routes.metrics import realtime_snapshot
from modelmonitor.live.base import LiveSnapshot

__all__ = ["render", "router"]

router = APIRouter(tags=["metrics"])

_QUANTILES = (
    ("0.5", "p50_seconds"),
    ("0.9", "p90_seconds"),
    ("0.95", "p95_seconds"),
    ("0.99", "p99_seconds"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(snapshot: LiveSnapshot) -> str:
    """Gauges over the 1-minute window, plus proxy buffer and drop counters."""
    lines = [
        "# HELP modelmonitor_requests_per_second Requests per second over the window.",
        "# TYPE modelmonitor_requests_per_second gauge",
    ]
    latency = [
        "# HELP modelmonitor_latency_seconds Request latency quantiles over the window.",
        "# TYPE modelmonitor_latency_seconds gauge",
    ]
    errors = [
        "# HELP modelmonitor_error_ratio Share of requests that failed (5xx or transport error).",
        "# TYPE modelmonitor_error_ratio gauge",
    ]
    in_flight = [
        "# HELP modelmonitor_in_flight_requests Requests being proxied now.",
        "# TYPE modelmonitor_in_flight_requests gauge",
    ]
    for service in snapshot.services:
        name = _label(service.service)
        in_flight.append(f'modelmonitor_in_flight_requests{{service="{name}"}} {service.in_flight}')
        for window_name, window in service.windows.items():
            labels = f'service="{name}",window="{window_name}"'
            lines.append(f"modelmonitor_requests_per_second{{{labels}}} {window.rps}")
            errors.append(f"modelmonitor_error_ratio{{{labels}}} {window.error_rate}")
            for quantile, field in _QUANTILES:
                value = getattr(window, field)
                if value is not None:
                    latency.append(
                        f'modelmonitor_latency_seconds{{{labels},quantile="{quantile}"}} {value}'
                    )
    proxies = [
        "# HELP modelmonitor_dropped_events_total Events dropped because a proxy buffer was full.",
        "# TYPE modelmonitor_dropped_events_total counter",
    ]
    buffers = [
        "# HELP modelmonitor_buffer_events Events waiting in a proxy's capture buffer.",
        "# TYPE modelmonitor_buffer_events gauge",
    ]
    for proxy in snapshot.proxies:
        label = f'proxy="{_label(proxy.proxy_id)}"'
        proxies.append(f"modelmonitor_dropped_events_total{{{label}}} {proxy.dropped_total}")
        buffers.append(f"modelmonitor_buffer_events{{{label}}} {proxy.buffer_size}")
    ingest = [
        "# HELP modelmonitor_ingest_events_per_second Events stored per second (last 10 s).",
        "# TYPE modelmonitor_ingest_events_per_second gauge",
        f"modelmonitor_ingest_events_per_second {snapshot.ingest_rate}",
    ]
    return "\n".join([*lines, *latency, *errors, *in_flight, *proxies, *buffers, *ingest]) + "\n"


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus exposition")
async def prometheus_metrics(context: Context) -> PlainTextResponse:
    snapshot = await realtime_snapshot(context, None)
    text = render(snapshot)
    alerts = context.extras.get("alerts")
    if isinstance(alerts, AlertSystem):  # anomaly detectors fed here, and their state size
        text += "".join(f"{line}\n" for line in alerts.tracker.exposition())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
