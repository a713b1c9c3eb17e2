"""Prometheus-native telemetry: counters and histograms of proxied requests, the
cluster-wide totals, and their exposition.

Live objects (:class:`RequestMetrics`), snapshots (:class:`MetricsSnapshot`) and
exposition (:func:`encode`) are kept apart, as in ``prometheus_client``.
"""

from __future__ import annotations

from modelmonitor.telemetry._cluster import ClusterMetrics, create_cluster
from modelmonitor.telemetry._exposition import encode, gauge, request_families
from modelmonitor.telemetry._requests import (
    LATENCY_BUCKETS_SECONDS,
    OTHER,
    MetricsSnapshot,
    RequestMetrics,
)

__all__ = [
    "LATENCY_BUCKETS_SECONDS",
    "OTHER",
    "ClusterMetrics",
    "MetricsSnapshot",
    "RequestMetrics",
    "create_cluster",
    "encode",
    "gauge",
    "request_families",
]
