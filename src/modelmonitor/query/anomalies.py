"""Anomaly enrichment: the newest scores on live snapshots, and scored series over a range.

Points come from the anomaly store (the alert store's anomaly repository), where the
one anomaly tracker stores them, so every API replica serves the same scores.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from modelmonitor.alerts.models import AnomalyPoint
from modelmonitor.live.base import LiveAnomaly, LiveSnapshot

__all__ = [
    "HISTORY_TO_ANOMALY",
    "AnomalyEvent",
    "AnomalyPoints",
    "AnomalySeries",
    "add_live_anomalies",
    "anomaly_series",
]

#: Historical metric name -> the anomaly-tracked metric it matches.
HISTORY_TO_ANOMALY = {
    "p50": "latency_p50",
    "p95": "latency_p95",
    "p99": "latency_p99",
    "error_rate": "error_rate",
    "rps": "throughput",
    "requests": "throughput",
    "ttft_p95": "ttft_p95",
    "tokens_per_second": "tokens_per_second",
}
#: Newest points older than this are not shown as live (the tracker stopped).
_LIVE_MAX_AGE = 60.0
_UNITS = {"error_rate": "ratio", "throughput": "1/s"}


class AnomalyPoints(Protocol):
    """What the read model needs of the anomaly store."""

    async def anomaly_points(
        self,
        *,
        start: float,
        end: float,
        service: str | None = None,
        metric: str | None = None,
        limit: int = 100_000,
    ) -> list[AnomalyPoint]: ...


class AnomalyEvent(msgspec.Struct, kw_only=True):
    """The start of an anomaly (``kind: anomaly``) or a detector re-learning after a
    lasting shift (``kind: new_normal``): the member that fired and the band then."""

    at: float
    kind: str
    member: str
    value: float
    score: float
    expected: float
    lower: float
    upper: float


class AnomalySeries(msgspec.Struct, kw_only=True):
    """One metric's scored points. ``points`` rows are
    ``[t, value, score, expected, lower, upper, anomalous]``; with more points than
    ``max_history_points`` in the range, each ``step_seconds`` bucket keeps its
    highest-scoring point. ``events`` are never thinned."""

    service: str
    metric: str
    unit: str
    step_seconds: float
    points: list[tuple[float, float, float, float, float, float, bool]]
    events: list[AnomalyEvent] = []


def _events(points: list[AnomalyPoint]) -> list[AnomalyEvent]:
    """Anomaly starts (first point of an episode) and new-normal points."""
    events = []
    was_anomalous = False
    for p in points:
        kind = ""
        if p.event:
            kind = p.event
        elif p.anomalous and not was_anomalous and p.score > 0.0:
            kind = "anomaly"
        was_anomalous = p.anomalous
        if kind:
            events.append(
                AnomalyEvent(
                    at=p.at,
                    kind=kind,
                    member=p.member,
                    value=p.value,
                    score=p.score,
                    expected=p.expected,
                    lower=p.lower,
                    upper=p.upper,
                )
            )
    return events


async def add_live_anomalies(reader: AnomalyPoints, snapshot: LiveSnapshot) -> None:
    """Fill each service's ``anomalies`` with its newest scored points."""
    points = await reader.anomaly_points(start=snapshot.at - _LIVE_MAX_AGE, end=snapshot.at + 1)
    latest: dict[tuple[str, str], AnomalyPoint] = {}
    for point in points:  # oldest first: the last one wins
        latest[(point.service, point.metric)] = point
    by_service: dict[str, dict[str, LiveAnomaly]] = {}
    for (service, metric), point in sorted(latest.items()):
        by_service.setdefault(service, {})[metric] = LiveAnomaly(
            value=point.value,
            score=point.score,
            expected=point.expected,
            lower=point.lower,
            upper=point.upper,
            at=point.at,
            anomalous=point.anomalous,
            member=point.member,
            event=point.event,
        )
    for entry in snapshot.services:
        found = by_service.get(entry.service)
        if found:
            entry.anomalies = found


async def anomaly_series(
    reader: AnomalyPoints,
    *,
    service: str,
    metrics: list[str],
    start: float,
    end: float,
    limit: int,
) -> list[AnomalySeries]:
    """Scored points of ``metrics`` (tracked names) over ``[start, end)``, thinned to
    ``limit`` per series keeping the highest score of each bucket."""
    result = []
    for metric in metrics:
        points = await reader.anomaly_points(start=start, end=end, service=service, metric=metric)
        events = _events(points)
        step = 0.0
        if len(points) > limit:
            step = (end - start) / limit
            buckets: dict[int, AnomalyPoint] = {}
            for point in points:
                index = int((point.at - start) // step)
                kept = buckets.get(index)
                if kept is None or point.score > kept.score:
                    buckets[index] = point
            points = [buckets[index] for index in sorted(buckets)]
        result.append(
            AnomalySeries(
                service=service,
                metric=metric,
                unit=_UNITS.get(metric, "seconds"),
                step_seconds=step,
                points=[
                    (p.at, p.value, p.score, p.expected, p.lower, p.upper, p.anomalous)
                    for p in points
                ],
                events=events,
            )
        )
    return result
