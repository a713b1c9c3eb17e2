"""The families a lone proxy or worker serves on its own ``/metrics``.

Prometheus scrapes every proxy and worker and sums them; these read the live objects
of this process only (never storage or the bus), so a scrape costs the proxy little.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from modelmonitor.telemetry._exposition import request_families

if TYPE_CHECKING:
    from modelmonitor.pipeline.worker import Worker
    from modelmonitor.proxy import CaptureBuffer, ProxyServer, Shipper
    from modelmonitor.telemetry._otlp import OtlpStats

__all__ = ["otlp_part_families", "proxy_part_families", "worker_part_families"]


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def proxy_part_families(
    proxy: ProxyServer, capture: CaptureBuffer, shipper: Shipper | None
) -> Iterator[Metric]:
    yield _counter("modelmonitor_proxy_captured_events", "Events captured.", capture.captured_total)
    yield _counter(
        "modelmonitor_proxy_dropped_events",
        "Events dropped because the capture buffer was full.",
        capture.dropped_total,
    )
    yield GaugeMetricFamily(
        "modelmonitor_proxy_buffer_events", "Events waiting to be shipped.", value=capture.size
    )
    yield _counter(
        "modelmonitor_proxy_unrouted_requests",
        "Requests no service's path prefix matched (answered 404).",
        proxy.unrouted_total,
    )
    yield GaugeMetricFamily(
        "modelmonitor_proxy_open_tunnels", "Upgraded connections open.", value=proxy.open_tunnels
    )
    in_flight = GaugeMetricFamily(
        "modelmonitor_proxy_in_flight_requests", "Requests being proxied.", labels=["service"]
    )
    for service, count in sorted(proxy.in_flight().items()):
        in_flight.add_metric([service], count)
    yield in_flight
    if shipper is not None:
        yield _counter(
            "modelmonitor_proxy_shipped_events", "Events published to the bus.", shipper.events_sent
        )
        yield _counter(
            "modelmonitor_proxy_shipped_batches", "Batches published.", shipper.batches_sent
        )
        yield _counter(
            "modelmonitor_proxy_publish_failures", "Failed publishes.", shipper.publish_failures
        )
        yield GaugeMetricFamily(
            "modelmonitor_proxy_spooled_events",
            "Events held on disk while the bus is unreachable.",
            value=shipper.stats().spooled,
        )


def worker_part_families(worker: Worker, *, now: float) -> Iterator[Metric]:
    stats = worker.stats
    yield from request_families(worker.request_metrics.snapshot())
    yield _counter("modelmonitor_worker_batches", "Batches handled.", stats.batches_total)
    yield _counter("modelmonitor_worker_events_stored", "Events stored.", stats.events_stored_total)
    yield _counter(
        "modelmonitor_worker_duplicate_events",
        "Redelivered events the store already had.",
        stats.duplicates_total,
    )
    yield _counter(
        "modelmonitor_worker_rejected_messages", "Undecodable bus messages.", stats.rejected_total
    )
    yield _counter(
        "modelmonitor_worker_store_failures", "Failed store writes.", stats.store_failures_total
    )
    yield _counter(
        "modelmonitor_worker_store_writes", "Committed store writes.", stats.store_writes_total
    )
    yield _counter(
        "modelmonitor_worker_store_write_seconds",
        "Seconds spent in committed store writes.",
        stats.store_write_seconds_total,
    )
    lag = now - stats.last_batch_at if stats.last_batch_at is not None else 0.0
    yield GaugeMetricFamily(
        "modelmonitor_worker_seconds_since_last_batch",
        "Seconds since the worker last stored a batch.",
        value=lag,
    )
    yield GaugeMetricFamily(
        "modelmonitor_worker_series",
        "Request series counted.",
        value=worker.request_metrics.series_count,
    )


def otlp_part_families(stats: OtlpStats) -> Iterator[Metric]:
    yield _counter(
        "modelmonitor_otlp_spans_exported", "Spans sent to the collector.", stats.spans_exported
    )
    yield _counter(
        "modelmonitor_otlp_spans_dropped",
        "Spans dropped: the queue was full or the collector refused them.",
        stats.spans_dropped,
    )
    yield _counter(
        "modelmonitor_otlp_export_failures", "Failed OTLP exports.", stats.export_failures
    )
