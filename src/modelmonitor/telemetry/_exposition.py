"""Prometheus exposition: snapshots in, text out (classic text format or OpenMetrics).

Written with ``prometheus_client``'s metric families and writers, so names, escaping,
``_total``/``_bucket`` suffixes and content negotiation follow the reference client.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from modelmonitor.telemetry._requests import (
    LABEL_NAMES,
    LATENCY_BUCKETS_SECONDS,
    LAYOUT,
    MetricsSnapshot,
)

__all__ = ["encode", "gauge", "request_families"]

_LE = [repr(bound) for bound in LATENCY_BUCKETS_SECONDS] + ["+Inf"]


def _histogram_buckets(values: Sequence[float], start: int) -> list[tuple[str, float]]:
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for index, le in enumerate(_LE):
        running += values[start + index]
        buckets.append((le, running))
    return buckets


def request_families(snapshot: MetricsSnapshot) -> Iterator[Metric]:
    """Counters and histograms of proxied requests, one series per label set."""
    labels = list(LABEL_NAMES)
    requests = CounterMetricFamily(
        "modelmonitor_requests", "Requests proxied, by outcome.", labels=labels
    )
    errors = CounterMetricFamily(
        "modelmonitor_errors", "Requests that failed (5xx or transport error).", labels=labels
    )
    sent = CounterMetricFamily(
        "modelmonitor_request_bytes", "Request body bytes sent upstream.", labels=labels
    )
    received = CounterMetricFamily(
        "modelmonitor_response_bytes", "Response body bytes returned to clients.", labels=labels
    )
    latency = HistogramMetricFamily(
        "modelmonitor_request_duration_seconds",
        "Time from the request's first byte to the response's last byte.",
        labels=labels,
    )
    ttfb = HistogramMetricFamily(
        "modelmonitor_time_to_first_byte_seconds",
        "Time from the request's first byte to the response's first byte.",
        labels=labels,
    )
    for key, values in sorted(snapshot.series.items()):
        label_values = list(key)
        requests.add_metric(label_values, values[LAYOUT.requests])
        errors.add_metric(label_values, values[LAYOUT.errors])
        sent.add_metric(label_values, values[LAYOUT.request_bytes])
        received.add_metric(label_values, values[LAYOUT.response_bytes])
        latency.add_metric(
            label_values,
            _histogram_buckets(values, LAYOUT.latency_buckets),
            values[LAYOUT.latency_sum],
        )
        ttfb.add_metric(
            label_values, _histogram_buckets(values, LAYOUT.ttfb_buckets), values[LAYOUT.ttfb_sum]
        )
    folded = CounterMetricFamily(
        "modelmonitor_series_folded",
        "Requests counted under route and model 'other' because the service reached its cap "
        "on distinct series.",
        labels=["service"],
    )
    for service, count in sorted(snapshot.folded.items()):
        folded.add_metric([service], count)
    yield from (requests, errors, sent, received, latency, ttfb, folded)
    yield from language_families(snapshot)


def language_families(snapshot: MetricsSnapshot) -> Iterator[Metric]:
    """Tokens, cost and time to first token of the series that carried any."""
    labels = list(LABEL_NAMES)
    prompt = CounterMetricFamily(
        "modelmonitor_prompt_tokens",
        "Prompt (input) tokens of language-model calls.",
        labels=labels,
    )
    completion = CounterMetricFamily(
        "modelmonitor_completion_tokens",
        "Completion (output) tokens of language-model calls.",
        labels=labels,
    )
    cost = CounterMetricFamily(
        "modelmonitor_cost_usd", "Cost of language-model calls (price table).", labels=labels
    )
    ttft = HistogramMetricFamily(
        "modelmonitor_time_to_first_token_seconds",
        "Time from the request's first byte to the first streamed content token.",
        labels=labels,
    )
    for key, values in sorted(snapshot.series.items()):
        if len(values) < LAYOUT.size:
            continue  # a vector from a version without these measures
        used = values[LAYOUT.prompt_tokens] or values[LAYOUT.completion_tokens]
        if not used and not values[LAYOUT.ttft_sum]:
            continue
        label_values = list(key)
        prompt.add_metric(label_values, values[LAYOUT.prompt_tokens])
        completion.add_metric(label_values, values[LAYOUT.completion_tokens])
        cost.add_metric(label_values, values[LAYOUT.cost_usd])
        if values[LAYOUT.ttft_sum]:
            ttft.add_metric(
                label_values,
                _histogram_buckets(values, LAYOUT.ttft_buckets),
                values[LAYOUT.ttft_sum],
            )
    yield from (prompt, completion, cost, ttft)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def encode(families: Iterable[Metric], accept: str | None) -> tuple[bytes, str]:
    """Encode for a scraper's ``Accept`` header: (body, content type)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
