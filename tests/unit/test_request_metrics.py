"""Cumulative request counters and histograms (the live object behind /metrics)."""

from __future__ import annotations

from modelmonitor.events import RequestEvent
from modelmonitor.telemetry import LATENCY_BUCKETS_SECONDS, OTHER, RequestMetrics
from modelmonitor.telemetry._requests import LAYOUT


def event(
    *, route: str = "/predict", status: int = 200, latency: float = 0.03, service: str = "svc"
) -> RequestEvent:
    return RequestEvent(
        id="e",
        start=0.0,
        service=service,
        method="POST",
        route=route,
        path=route,
        status=status,
        latency_seconds=latency,
        ttfb_seconds=latency / 2,
        request_bytes=10,
        response_bytes=100,
    )


def test_counts_errors_bytes_and_buckets() -> None:
    metrics = RequestMetrics()
    metrics.observe([event(latency=0.003), event(latency=0.03), event(status=503, latency=7.0)])
    series = metrics.snapshot().series
    ok = series[("svc", "/predict", "POST", "2xx", "")]
    failed = series[("svc", "/predict", "POST", "5xx", "")]
    assert ok[LAYOUT.requests] == 2 and ok[LAYOUT.errors] == 0
    assert failed[LAYOUT.requests] == 1 and failed[LAYOUT.errors] == 1
    assert ok[LAYOUT.request_bytes] == 20 and ok[LAYOUT.response_bytes] == 200
    assert ok[LAYOUT.latency_sum] == 0.033
    buckets = ok[LAYOUT.latency_buckets : LAYOUT.latency_buckets + LAYOUT.buckets]
    # 3 ms falls in the first bucket (le=0.005), 30 ms in le=0.05.
    assert buckets[0] == 1 and buckets[LATENCY_BUCKETS_SECONDS.index(0.05)] == 1
    slow = failed[LAYOUT.latency_buckets : LAYOUT.latency_buckets + LAYOUT.buckets]
    assert slow[LATENCY_BUCKETS_SECONDS.index(10.0)] == 1
    # A latency past the last bound lands in +Inf.
    metrics.observe([event(latency=500.0)])
    ok = metrics.snapshot().series[("svc", "/predict", "POST", "2xx", "")]
    assert ok[LAYOUT.latency_buckets + LAYOUT.buckets - 1] == 1


def test_totals_only_grow_and_deltas_add_up_to_them() -> None:
    metrics = RequestMetrics()
    metrics.observe([event()] * 3)
    first = metrics.take_delta()
    metrics.observe([event()] * 2)
    assert metrics.snapshot().series[("svc", "/predict", "POST", "2xx", "")][0] == 5
    second = metrics.take_delta()
    assert first.series[("svc", "/predict", "POST", "2xx", "")][0] == 3
    assert second.series[("svc", "/predict", "POST", "2xx", "")][0] == 2
    assert metrics.take_delta().series == {}
    assert first.merged(second).series == metrics.snapshot().series


def test_distinct_routes_past_the_cap_fold_into_other_and_are_counted() -> None:
    metrics = RequestMetrics(max_series_per_service=10)
    metrics.observe(event(route=f"/r/{index}") for index in range(10_000))
    snapshot = metrics.snapshot()
    assert len(snapshot.series) == 11  # ten routes and the fold
    other = snapshot.series[("svc", OTHER, "POST", "2xx", OTHER)]
    assert other[LAYOUT.requests] == 9_990
    assert snapshot.folded == {"svc": 9_990}
    assert metrics.series_count == 11
    # Another service has its own budget.
    metrics.observe([event(service="other-svc", route="/x")])
    assert ("other-svc", "/x", "POST", "2xx", "") in metrics.snapshot().series
