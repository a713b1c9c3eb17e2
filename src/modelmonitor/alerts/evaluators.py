"""Evaluators: one per rule kind, reading the live windows (never the raw events).

An evaluator answers "does this rule's condition hold for this service now, and
what is the value?". The engine keeps the lifecycle; evaluators keep no alert
state. The anomaly work adds an ``AnomalyEvaluator`` for ``kind: anomaly``.
"""

from __future__ import annotations

import abc
import itertools
from collections import deque
from typing import Any, ClassVar

import msgspec

from modelmonitor.alerts.rules import RuleBase, ThresholdRule, compare
from modelmonitor.live.base import LiveSnapshot, LiveState, WindowStats

__all__ = ["DroppedEvents", "Evaluation", "Evaluator", "RoundContext", "ThresholdEvaluator"]

#: The service name alerts on fleet-wide metrics (``dropped_events``) carry.
ALL_SERVICES = "*"


class Evaluation(msgspec.Struct, kw_only=True):
    active: bool
    value: float | None = None
    #: Requests in the window, when the metric is request-based.
    requests: int | None = None


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
    raise ValueError(f"metric {metric!r} is not read from a window")


class ThresholdEvaluator(Evaluator):
    """``metric comparator threshold`` over a live window.

    Request-based metrics (latency, error rates) need ``min_requests`` requests in
    the window; below that the condition does not hold (and the value is still
    reported). ``throughput`` and ``dropped_events`` hold on any traffic level.
    """

    kind = "threshold"

    def __init__(self, live: LiveState, dropped: DroppedEvents) -> None:
        self._live = live
        self._dropped = dropped

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
        stats = await self._live.window(
            service=service, seconds=rule.window_seconds, route=rule.route, now=now
        )
        measured = metric_value(stats, rule.metric)
        if measured is None:
            return Evaluation(active=False, requests=stats.requests)
        enough = rule.metric == "throughput" or stats.requests >= rule.min_requests
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
