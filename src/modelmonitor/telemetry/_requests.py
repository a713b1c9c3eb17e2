"""Cumulative request counters and histograms: the live object behind Prometheus exposition.

Prometheus wants counters it can ``rate()`` and histograms it can sum across processes,
not gauges of windows computed here. :class:`RequestMetrics` keeps, per series
(service, route, method, status class, model), monotonically growing totals and
fixed-bucket histograms, updated a batch at a time by the worker. It hands out
:class:`MetricsSnapshot` copies (for exposition) and deltas (for the cluster view).

Each series is one flat ``list[float]`` laid out by :data:`LAYOUT`, so adding,
merging and shipping deltas are the same vector addition.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec

from modelmonitor.events import RequestEvent

__all__ = [
    "LATENCY_BUCKETS_SECONDS",
    "LAYOUT",
    "OTHER",
    "MetricsSnapshot",
    "RequestMetrics",
    "SeriesKey",
]

#: Upper bounds (seconds) for the latency and time-to-first-byte histograms. Model APIs
#: answer in milliseconds (a classifier) to minutes (a long LLM generation), so the
#: buckets run roughly 1-2.5-5 per decade from 5 ms to 2 minutes.
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)

#: The label value that series past the cardinality cap fold into.
OTHER = "other"

#: (service, route, method, status class, model)
SeriesKey = tuple[str, str, str, str, str]
LABEL_NAMES = ("service", "route", "method", "status_class", "model")


@dataclass(frozen=True)
class _Layout:
    """Where each measure sits in a series vector."""

    buckets: int = len(LATENCY_BUCKETS_SECONDS) + 1  # the last one is +Inf
    requests: int = 0
    errors: int = 1
    request_bytes: int = 2
    response_bytes: int = 3
    latency_sum: int = 4
    ttfb_sum: int = 5
    latency_buckets: int = 6

    @property
    def ttfb_buckets(self) -> int:
        return self.latency_buckets + self.buckets

    # Language-model measures (docs/models.md): tokens, cost, and a time-to-first-token
    # histogram of the requests that measured one.
    @property
    def prompt_tokens(self) -> int:
        return self.ttfb_buckets + self.buckets

    @property
    def completion_tokens(self) -> int:
        return self.prompt_tokens + 1

    @property
    def cost_usd(self) -> int:
        return self.prompt_tokens + 2

    @property
    def ttft_sum(self) -> int:
        return self.prompt_tokens + 3

    @property
    def ttft_buckets(self) -> int:
        return self.prompt_tokens + 4

    @property
    def size(self) -> int:
        return self.ttft_buckets + self.buckets


LAYOUT = _Layout()


class MetricsSnapshot(msgspec.Struct, frozen=True):
    """A copy of every series' vector, plus how many events were folded per service."""

    series: dict[SeriesKey, list[float]]
    folded: dict[str, int] = {}

    def merged(self, other: MetricsSnapshot) -> MetricsSnapshot:
        series = {key: list(values) for key, values in self.series.items()}
        for key, values in other.series.items():
            _add_into(series.setdefault(key, [0.0] * LAYOUT.size), values)
        folded = dict(self.folded)
        for service, count in other.folded.items():
            folded[service] = folded.get(service, 0) + count
        return MetricsSnapshot(series, folded)


def _observe_language(vector: list[float], event: RequestEvent) -> None:
    vector[LAYOUT.prompt_tokens] += event.prompt_tokens
    vector[LAYOUT.completion_tokens] += event.completion_tokens
    vector[LAYOUT.cost_usd] += event.cost_usd
    if event.ttft_seconds > 0:
        vector[LAYOUT.ttft_sum] += event.ttft_seconds
        vector[LAYOUT.ttft_buckets + bisect_left(LATENCY_BUCKETS_SECONDS, event.ttft_seconds)] += 1


def _add_into(target: list[float], values: Iterable[float]) -> None:
    for index, value in enumerate(values):
        if value:
            target[index] += value


class RequestMetrics:
    """Counters and histograms per series, with a cap on distinct series per service.

    Past ``max_series_per_service`` a new series folds into one whose route and model
    are ``"other"``, and the fold is counted, so hostile or accidental cardinality
    (random paths, one model name per request) costs bounded memory.
    """

    def __init__(self, *, max_series_per_service: int = 2000) -> None:
        self._max_series = max_series_per_service
        #: Settled totals; new counts gather in ``_fresh`` (one vector write per event)
        #: and are added here, and to ``_unshipped``, when someone reads.
        self._series: dict[SeriesKey, list[float]] = {}
        self._fresh: dict[SeriesKey, list[float]] = {}
        self._unshipped: dict[SeriesKey, list[float]] = {}
        self._known: dict[SeriesKey, SeriesKey] = {}
        self._per_service: dict[str, int] = {}
        self._folded: dict[str, int] = {}
        self._unshipped_folded: dict[str, int] = {}

    def observe(self, events: Iterable[RequestEvent]) -> None:
        """Add a batch of events."""
        latency_at = LAYOUT.latency_buckets
        ttfb_at = LAYOUT.ttfb_buckets
        bounds = LATENCY_BUCKETS_SECONDS
        fresh = self._fresh
        known = self._known
        for event in events:
            raw = (event.service, event.route, event.method, event.status_class, event.model)
            key = known.get(raw) or self._admit(raw)
            vector = fresh.get(key)
            if vector is None:
                vector = fresh[key] = [0.0] * LAYOUT.size
            vector[0] += 1
            if event.is_error:
                vector[1] += 1
            vector[2] += event.request_bytes
            vector[3] += event.response_bytes
            vector[4] += event.latency_seconds
            vector[5] += event.ttfb_seconds
            vector[latency_at + bisect_left(bounds, event.latency_seconds)] += 1
            vector[ttfb_at + bisect_left(bounds, event.ttfb_seconds)] += 1
            if event.prompt_tokens or event.completion_tokens or event.ttft_seconds:
                _observe_language(vector, event)

    def _admit(self, raw: SeriesKey) -> SeriesKey:
        """The series a new label set counts in: itself, or its service's fold."""
        service = raw[0]
        count = self._per_service.get(service, 0)
        if count < self._max_series:
            self._per_service[service] = count + 1
            self._known[raw] = raw
            return raw
        # Not remembered: a flood of distinct values must not grow ``_known``.
        self._folded[service] = self._folded.get(service, 0) + 1
        self._unshipped_folded[service] = self._unshipped_folded.get(service, 0) + 1
        folded = (service, OTHER, raw[2], raw[3], OTHER)
        if folded not in self._known:
            # The fold series may pass the cap: one per method and status class.
            self._per_service[service] = count + 1
            self._known[folded] = folded
        return folded

    def _settle(self) -> None:
        for key, values in self._fresh.items():
            for table in (self._series, self._unshipped):
                target = table.get(key)
                if target is None:
                    table[key] = list(values)
                else:
                    _add_into(target, values)
        self._fresh = {}

    def snapshot(self) -> MetricsSnapshot:
        """Everything counted since this object was made."""
        self._settle()
        return MetricsSnapshot(
            {key: list(values) for key, values in self._series.items()}, dict(self._folded)
        )

    def take_delta(self) -> MetricsSnapshot:
        """What was counted since the previous call (for the shared cluster view)."""
        self._settle()
        delta = MetricsSnapshot(self._unshipped, self._unshipped_folded)
        self._unshipped = {}
        self._unshipped_folded = {}
        return delta

    @property
    def series_count(self) -> int:
        return len(self._known)

    def series_per_service(self) -> Mapping[str, int]:
        return dict(self._per_service)
