"""Evaluators: one per rule kind, reading the live windows (never the raw events).

An evaluator answers "does this rule's condition hold for this service now, and
what is the value?". The engine keeps the lifecycle; evaluators keep no alert
state. ``kind: anomaly`` rules read the scores the anomaly tracker stored
(:class:`AnomalyEvaluator`), so every process sees the same ones.
"""

from __future__ import annotations

import abc
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import msgspec

from modelmonitor.alerts.models import AnomalyPoint
from modelmonitor.alerts.rules import AnomalyRule, RuleBase, ThresholdRule, compare
from modelmonitor.alerts.store.base import AlertStore
from modelmonitor.live.base import LiveSnapshot, LiveState, WindowStats

__all__ = [
    "AnomalyEvaluator",
    "DroppedEvents",
    "Evaluation",
    "Evaluator",
    "RoundContext",
    "ThresholdEvaluator",
    "describe_point",
]

#: The service name alerts on fleet-wide metrics (``dropped_events``) carry.
ALL_SERVICES = "*"


class Evaluation(msgspec.Struct, kw_only=True):
    active: bool
    value: float | None = None
    #: Requests in the window, when the metric is request-based.
    requests: int | None = None
    #: One line for notifications, e.g. "p95 412 ms, expected 120-160 ms".
    detail: str = ""


class DroppedEvents:
    """Events dropped by proxies over a window, from the ``dropped_total`` counters
    the proxies send with every batch (summed per proxy, counter resets ignored)."""

    def __init__(self, keep_seconds: float = 900.0) -> None:
        self._samples: deque[tuple[float, dict[str, int]]] = deque()
        self._keep = keep_seconds

    def sample(self, snapshot: LiveSnapshot, now: float) -> None:
        totals = {stats.proxy_id: stats.dropped_total for stats in snapshot.proxies}
        self._samples.append((now, totals))
        while self._samples and self._samples[0][0] < now - self._keep:
            self._samples.popleft()

    def increase(self, seconds: float, now: float) -> float:
        inside = [totals for at, totals in self._samples if at >= now - seconds]
        older = [totals for at, totals in self._samples if at < now - seconds]
        if older:
            inside.insert(0, older[-1])
        dropped = 0
        for before, after in itertools.pairwise(inside):
            for proxy, total in after.items():
                dropped += max(0, total - before.get(proxy, total))
        return float(dropped)


class RoundContext(msgspec.Struct, kw_only=True):
    """What one evaluation round shares between rules."""

    now: float
    services: list[str]


class Evaluator(abc.ABC):
    kind: ClassVar[str]

    def targets(self, rule: RuleBase, context: RoundContext) -> list[str]:
        """The services a rule applies to this round."""
        if rule.service == ALL_SERVICES:
            return list(context.services)
        return [rule.service]

    @abc.abstractmethod
    async def evaluate(self, rule: RuleBase, *, service: str, now: float) -> Evaluation: ...

    @abc.abstractmethod
    def describe(self, rule: RuleBase) -> dict[str, Any]:
        """Condition fields shown in notifications (``AlertNotice``)."""


def metric_value(stats: WindowStats, metric: str) -> float | None:
    if metric.startswith("latency_p"):
        value: float | None = getattr(stats, f"p{metric.removeprefix('latency_p')}_seconds")
        return value
    if metric == "error_rate":
        return stats.error_rate if stats.requests else None
    if metric == "5xx_rate":
        if not stats.requests:
            return None
        return stats.status_classes.get("5xx", 0) / stats.requests
    if metric == "throughput":
        return stats.rps
    if metric in LANGUAGE_METRICS:
        llm = stats.llm
        if llm is None:
            return None
        value = getattr(llm, LANGUAGE_METRICS[metric])
        return None if value is None else float(value)
    raise ValueError(f"metric {metric!r} is not read from a window")


#: Alert metric -> the field of a window's language-model stats.
LANGUAGE_METRICS = {
    "ttft_p50": "ttft_p50_seconds",
    "ttft_p95": "ttft_p95_seconds",
    "tokens_per_second": "tokens_per_second",
    "prompt_tokens_per_second": "prompt_tokens_per_second",
    "completion_tokens_per_second": "completion_tokens_per_second",
    "cost_per_hour": "cost_per_hour",
    "finish_reason_length_rate": "finish_reason_length_rate",
}
#: Metrics that hold on any traffic level (rates of the whole window).
_RATES = frozenset(
    {"throughput", "prompt_tokens_per_second", "completion_tokens_per_second", "cost_per_hour"}
)
#: ``(service, seconds, model, consumer, now)`` -> the window of those requests.
DimensionWindow = Callable[[str, int, str | None, str | None, float], Awaitable[WindowStats]]


class ThresholdEvaluator(Evaluator):
    """``metric comparator threshold`` over a live window.

    Request-based metrics (latency, error rates) need ``min_requests`` requests in
    the window; below that the condition does not hold (and the value is still
    reported). ``throughput`` and ``dropped_events`` hold on any traffic level.
    """

    kind = "threshold"

    def __init__(
        self, live: LiveState, dropped: DroppedEvents, dimensions: DimensionWindow | None = None
    ) -> None:
        self._live = live
        self._dropped = dropped
        #: Windows filtered by model or consumer (from the event store), if available.
        self.dimensions = dimensions

    def targets(self, rule: RuleBase, context: RoundContext) -> list[str]:
        assert isinstance(rule, ThresholdRule)
        if rule.metric == "dropped_events":
            return [ALL_SERVICES]
        return super().targets(rule, context)

    async def evaluate(self, rule: RuleBase, *, service: str, now: float) -> Evaluation:
        assert isinstance(rule, ThresholdRule)
        if rule.metric == "dropped_events":
            value = self._dropped.increase(rule.window_seconds, now)
            return Evaluation(active=compare(value, rule.comparator, rule.threshold), value=value)
        if rule.model is not None or rule.consumer is not None:
            if self.dimensions is None:
                return Evaluation(active=False)
            stats = await self.dimensions(
                service, rule.window_seconds, rule.model, rule.consumer, now
            )
        else:
            stats = await self._live.window(
                service=service, seconds=rule.window_seconds, route=rule.route, now=now
            )
        measured = metric_value(stats, rule.metric)
        if measured is None:
            return Evaluation(active=False, requests=stats.requests)
        enough = rule.metric in _RATES or stats.requests >= rule.min_requests
        active = enough and compare(measured, rule.comparator, rule.threshold)
        return Evaluation(active=active, value=measured, requests=stats.requests)

    def describe(self, rule: RuleBase) -> dict[str, Any]:
        assert isinstance(rule, ThresholdRule)
        return {
            "metric": rule.metric,
            "comparator": rule.comparator,
            "threshold": rule.threshold,
            "window": rule.window,
        }


_LABELS = {
    "latency_p50": "p50",
    "latency_p95": "p95",
    "latency_p99": "p99",
    "error_rate": "error rate",
    "throughput": "throughput",
    "ttft_p95": "TTFT p95",
    "tokens_per_second": "tokens/s",
}


def _format(metric: str, value: float) -> tuple[str, str]:
    if metric.startswith(("latency_", "ttft_")):
        return f"{value * 1000:.0f}", "ms"
    if metric == "tokens_per_second":
        return f"{value:.1f}", "tokens/s"
    if metric == "error_rate":
        return f"{value * 100:.1f}", "%"
    return f"{value:.1f}", "req/s"


def describe_point(point: AnomalyPoint) -> str:
    """``"p95 412 ms, expected 120-160 ms (novelty)"``: the value, the band it was
    judged against and the detector member that fired."""
    value, unit = _format(point.metric, point.value)
    lower, _ = _format(point.metric, max(point.lower, 0.0))
    upper, _ = _format(point.metric, point.upper)
    name = _LABELS.get(point.metric, point.metric)
    fired = f" ({point.member})" if point.member else ""
    return f"{name} {value} {unit}, expected {lower}-{upper} {unit}{fired}"


class AnomalyEvaluator(Evaluator):
    """``kind: anomaly``: the scores the tracker stored for the rule's metric.

    Holds while a point in the last ``window`` scored at least the rule's score
    threshold, or while the newest point is still outside the band frozen when an
    anomaly that scored that high began. Series whose detector has seen fewer than
    the rule's ``learning_period`` points never hold. Points are read from the
    store once per round (every process sees what the one tracker stored).
    """

    kind = "anomaly"

    def __init__(self, store: AlertStore, *, step_seconds: float = 10.0) -> None:
        self._store = store
        self.step_seconds = step_seconds
        self._round_at: float | None = None
        self._points: dict[tuple[str, str], list[AnomalyPoint]] = {}

    async def _recent(self, service: str, metric: str, now: float) -> list[AnomalyPoint]:
        if self._round_at != now:
            points = await self._store.anomaly_points(
                start=now - 900.0 - self.step_seconds, end=now + 1e-6
            )
            grouped: dict[tuple[str, str], list[AnomalyPoint]] = {}
            for point in points:
                grouped.setdefault((point.service, point.metric), []).append(point)
            self._points, self._round_at = grouped, now
        return self._points.get((service, metric), [])

    async def evaluate(self, rule: RuleBase, *, service: str, now: float) -> Evaluation:
        assert isinstance(rule, AnomalyRule)
        points = await self._recent(service, rule.metric, now)
        if not points:
            return Evaluation(active=False)
        latest = points[-1]
        threshold = rule.score_threshold
        if latest.count < rule.learning_points(self.step_seconds):
            return Evaluation(active=False, value=latest.value)
        recent = [p for p in points if p.at > now - rule.window]
        peak = max(recent, key=lambda p: p.score, default=None)
        if peak is not None and peak.score >= threshold:
            return Evaluation(active=True, value=latest.value, detail=describe_point(peak))
        if latest.anomalous and latest.episode_score >= threshold and latest.at > now - rule.window:
            return Evaluation(active=True, value=latest.value, detail=describe_point(latest))
        return Evaluation(active=False, value=latest.value, detail=describe_point(latest))

    def describe(self, rule: RuleBase) -> dict[str, Any]:
        assert isinstance(rule, AnomalyRule)
        return {
            "kind": "anomaly",
            "metric": rule.metric,
            "comparator": ">=",
            "threshold": rule.score_threshold,
            "window": f"{rule.window:g}s",
        }
