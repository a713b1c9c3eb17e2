"""``GET /metrics``: the cluster view in Prometheus format.

Counters and histograms of every proxied request (summed over all workers, so
``rate()`` and ``histogram_quantile()`` work), the proxies' own state as they last
reported it, and the live windows as gauges for dashboards that already use them.
Each proxy and worker also serves its own ``/metrics`` (see ``runtime``).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api.deps import Context
from modelmonitor.live.base import LiveSnapshot
from modelmonitor.telemetry import encode, gauge, request_families

__all__ = ["alert_families", "live_families", "proxy_families", "router"]

router = APIRouter(tags=["metrics"])

#: Window percentiles as a ``percentile`` label: a gauge may not carry ``quantile``
#: (that label belongs to summaries), and these are not summaries a scraper may sum.
_PERCENTILES = (
    ("p50", "p50_seconds"),
    ("p90", "p90_seconds"),
    ("p95", "p95_seconds"),
    ("p99", "p99_seconds"),
)


def live_families(snapshot: LiveSnapshot) -> Iterator[Metric]:
    """The live windows as gauges (kept for dashboards built on them)."""
    window_labels = ["service", "window"]
    rps = GaugeMetricFamily(
        "modelmonitor_requests_per_second",
        "Requests per second over the window.",
        labels=window_labels,
    )
    latency = GaugeMetricFamily(
        "modelmonitor_latency_seconds",
        "Request latency percentiles over the window (for the histogram, see "
        "modelmonitor_request_duration_seconds).",
        labels=[*window_labels, "percentile"],
    )
    errors = GaugeMetricFamily(
        "modelmonitor_error_ratio",
        "Share of requests that failed (5xx or transport error) over the window.",
        labels=window_labels,
    )
    in_flight = GaugeMetricFamily(
        "modelmonitor_in_flight_requests", "Requests being proxied now.", labels=["service"]
    )
    for service in snapshot.services:
        in_flight.add_metric([service.service], service.in_flight)
        for window_name, window in service.windows.items():
            labels = [service.service, window_name]
            rps.add_metric(labels, window.rps)
            errors.add_metric(labels, window.error_rate)
            for percentile, field in _PERCENTILES:
                value = getattr(window, field)
                if value is not None:
                    latency.add_metric([*labels, percentile], value)
    yield from (rps, latency, errors, in_flight)
    yield from _language_gauges(snapshot)
    yield gauge(
        "modelmonitor_ingest_events_per_second",
        "Events stored per second over the last 10 seconds.",
        snapshot.ingest_rate,
    )


def _language_gauges(snapshot: LiveSnapshot) -> Iterator[Metric]:
    """The live windows' language-model figures, for services that carry LLM traffic."""
    window_labels = ["service", "window"]
    tokens = GaugeMetricFamily(
        "modelmonitor_llm_tokens_per_second",
        "Prompt and completion tokens per second over the window.",
        labels=[*window_labels, "kind"],
    )
    speed = GaugeMetricFamily(
        "modelmonitor_llm_generation_tokens_per_second",
        "Completion tokens per second of answering after the first token.",
        labels=window_labels,
    )
    ttft = GaugeMetricFamily(
        "modelmonitor_llm_time_to_first_token_seconds",
        "Time to first token percentiles over the window.",
        labels=[*window_labels, "percentile"],
    )
    cost = GaugeMetricFamily(
        "modelmonitor_llm_cost_per_hour_usd",
        "Spend rate over the window, in US dollars per hour.",
        labels=window_labels,
    )
    for service in snapshot.services:
        for window_name, window in service.windows.items():
            llm = window.llm
            if llm is None:
                continue
            labels = [service.service, window_name]
            tokens.add_metric([*labels, "prompt"], llm.prompt_tokens_per_second)
            tokens.add_metric([*labels, "completion"], llm.completion_tokens_per_second)
            cost.add_metric(labels, llm.cost_per_hour)
            if llm.tokens_per_second is not None:
                speed.add_metric(labels, llm.tokens_per_second)
            for percentile, value in (("p50", llm.ttft_p50_seconds), ("p95", llm.ttft_p95_seconds)):
                if value is not None:
                    ttft.add_metric([*labels, percentile], value)
    yield from (tokens, speed, ttft, cost)


def proxy_families(snapshot: LiveSnapshot) -> Iterator[Metric]:
    """Each proxy's capture counters, as it last reported them."""
    labels = ["proxy"]
    captured = CounterMetricFamily(
        "modelmonitor_captured_events", "Events a proxy captured.", labels=labels
    )
    dropped = CounterMetricFamily(
        "modelmonitor_dropped_events",
        "Events dropped because a proxy's capture buffer was full.",
        labels=labels,
    )
    buffered = GaugeMetricFamily(
        "modelmonitor_buffer_events", "Events waiting in a proxy's capture buffer.", labels=labels
    )
    capacity = GaugeMetricFamily(
        "modelmonitor_buffer_capacity_events", "Size of a proxy's capture buffer.", labels=labels
    )
    spooled = GaugeMetricFamily(
        "modelmonitor_spooled_events",
        "Events a proxy holds on disk while the bus is unreachable.",
        labels=labels,
    )
    refused = CounterMetricFamily(
        "modelmonitor_refused_requests",
        "Requests and upstream answers a proxy refused at its edge, per kind.",
        labels=["proxy", "kind"],
    )
    folded = CounterMetricFamily(
        "modelmonitor_routes_folded_requests",
        "Requests past a service's route cap, counted under the {other} route.",
        labels=labels,
    )
    for proxy in snapshot.proxies:
        label = [proxy.proxy_id]
        captured.add_metric(label, proxy.captured_total)
        dropped.add_metric(label, proxy.dropped_total)
        buffered.add_metric(label, proxy.buffer_size)
        capacity.add_metric(label, proxy.buffer_capacity)
        spooled.add_metric(label, proxy.spooled)
        folded.add_metric(label, proxy.edge.get("routes_folded", 0))
        for kind, count in proxy.edge.items():
            if kind != "routes_folded":
                refused.add_metric([proxy.proxy_id, kind], count)
    yield from (captured, dropped, buffered, capacity, spooled, refused, folded)


async def alert_families(alerts: AlertSystem) -> list[Metric]:
    """Evaluations and notification outcomes of this API's alert system, and firing alerts."""
    engine = alerts.engine
    families: list[Metric] = [
        CounterMetricFamily(
            "modelmonitor_alert_rounds", "Alert evaluation rounds.", value=engine.rounds_total
        ),
        CounterMetricFamily(
            "modelmonitor_alert_evaluations",
            "Rule evaluations (one rule on one service).",
            value=engine.totals.evaluated,
        ),
        CounterMetricFamily(
            "modelmonitor_alert_transitions",
            "Alert state changes (pending, firing, resolved).",
            value=engine.totals.transitions,
        ),
        CounterMetricFamily(
            "modelmonitor_alert_evaluation_errors",
            "Rule evaluations that failed.",
            value=engine.totals.errors,
        ),
    ]
    outcomes = CounterMetricFamily(
        "modelmonitor_notifications",
        "Notifications finished, by channel and outcome (delivered, failed, refused, skipped).",
        labels=["channel", "outcome"],
    )
    for (channel, outcome), count in sorted(alerts.dispatcher.outcomes.items()):
        outcomes.add_metric([channel, outcome], count)
    families.append(outcomes)
    firing = GaugeMetricFamily(
        "modelmonitor_alerts_firing", "Alerts firing now.", labels=["service"]
    )
    counts: dict[str, int] = {}
    for state in await alerts.store.list_states():
        if state.status == "firing":
            counts[state.service] = counts.get(state.service, 0) + 1
    for service, count in sorted(counts.items()):
        firing.add_metric([service], count)
    families.append(firing)
    tracker = alerts.tracker
    if tracker.holding:  # this process feeds the anomaly detectors
        families.append(
            GaugeMetricFamily(
                "modelmonitor_anomaly_detectors",
                "Anomaly detectors fed by this process.",
                value=len(tracker.series()),
            )
        )
        families.append(
            GaugeMetricFamily(
                "modelmonitor_anomaly_state_bytes",
                "Serialised size of the anomaly detectors' states at the last save.",
                value=tracker.state_bytes,
            )
        )
    return families


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus exposition",
    responses={200: {"content": {"text/plain": {}, "application/openmetrics-text": {}}}},
)
async def prometheus_metrics(context: Context, request: Request) -> Response:
    snapshot = await context.read.snapshot()
    families: list[Metric] = [*live_families(snapshot), *proxy_families(snapshot)]
    if context.cluster_metrics is not None:
        families.extend(request_families(await context.cluster_metrics.read()))
    if context.alerts is not None:
        families.extend(await alert_families(context.alerts))
    body, content_type = encode(families, request.headers.get("accept"))
    return Response(body, media_type=content_type)
