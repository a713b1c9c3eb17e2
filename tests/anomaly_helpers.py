"""Demo-like traffic in simulated time, recorded into a real live state, with the
anomaly tracker and the alert engine stepping along."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from modelmonitor.alerts.engine import AlertEngine
from modelmonitor.alerts.models import AlertNotice, AnomalyPoint
from modelmonitor.anomaly.tracker import AnomalyTracker
from modelmonitor.events import EventIdFactory, RequestEvent
from modelmonitor.live.base import LiveState
from modelmonitor.storage.base import EventStore
from tests.alert_helpers import SimClock, batch

__all__ = ["Shape", "Traffic", "daily"]

_ids = EventIdFactory()
_ROUTES = ("/v1/models/iris/predict", "/v1/models/wine/predict", "/predict")


@dataclass
class Shape:
    """Traffic at one moment: requests per second, a latency factor, an error fraction."""

    rps: float = 20.0
    latency_factor: float = 1.0
    error_rate: float = 0.005


def steady(_: float) -> Shape:
    return Shape()


def daily(period: float = 86_400.0) -> Callable[[float], Shape]:
    """rps 20 +- 50 % and latency +- 15 % on a sinusoid of ``period`` seconds."""

    def shape(t: float) -> Shape:
        phase = math.sin(2 * math.pi * t / period)
        return Shape(rps=20.0 * (1 + 0.5 * phase), latency_factor=1 + 0.15 * phase)

    return shape


@dataclass
class Traffic:
    """Like the demo model API (``lognormal(0, 0.5) * 12 ms`` plus 2 ms of proxying,
    Poisson-like arrivals, 0.5 % errors), recorded second by second."""

    live: LiveState
    clock: SimClock
    tracker: AnomalyTracker | None = None
    engine: AlertEngine | None = None
    #: Also stored here (rollups: the history a new detector warms from).
    events: EventStore | None = None
    service: str = "svc"
    seed: int = 1
    points: list[AnomalyPoint] = field(default_factory=list)
    notices: list[tuple[float, AlertNotice]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _events(self, second: float, shape: Shape) -> list[RequestEvent]:
        rng = self._rng
        count = max(0, round(rng.gauss(shape.rps, math.sqrt(shape.rps))))
        events = []
        for index in range(count):
            finished = second + (index + 0.5) / count
            latency = (rng.lognormvariate(0.0, 0.5) * 0.012 + 0.002) * shape.latency_factor
            failed = rng.random() < shape.error_rate
            route = rng.choice(_ROUTES)
            events.append(
                RequestEvent(
                    id=_ids(),
                    start=finished - latency,
                    service=self.service,
                    method="POST",
                    route=route,
                    path=route,
                    status=500 if failed else 200,
                    latency_seconds=latency,
                    ttfb_seconds=latency / 2,
                    request_bytes=100,
                    response_bytes=200,
                )
            )
        return events

    async def run(
        self, seconds: int, shape: Callable[[float], Shape] = steady, *, evaluate_every: int = 10
    ) -> None:
        """Record ``seconds`` of traffic; every 10 s step the tracker; evaluate the rules
        every ``evaluate_every`` seconds (a multiple of 10)."""
        for _ in range(seconds // 10):
            events: list[RequestEvent] = []
            for _ in range(10):
                events.extend(self._events(self.clock.now, shape(self.clock.now)))
                self.clock.advance(1.0)
            await self.live.record(batch(events, sent_at=self.clock.now))
            if self.events is not None:
                await self.events.write_batch(events)
            if self.tracker is not None:
                self.points.extend(await self.tracker.step())
            if self.engine is not None and self.clock.now % evaluate_every == 0:
                report = await self.engine.evaluate()
                self.notices.extend((report.at, notice) for notice in report.notices)

    def firing(self) -> list[tuple[float, AlertNotice]]:
        return [(at, n) for at, n in self.notices if n.reason == "firing"]
