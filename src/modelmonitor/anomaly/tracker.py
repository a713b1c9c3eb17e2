"""The anomaly tracker: one streaming detector per (service, metric), fed from live windows.

Every ``step_seconds`` (10 s by default) the tracker reads each service's live
window of the same length (the 10-second window: consecutive points do not
overlap, so a sudden change shows in full in one point instead of ramping up over
a minute) and feeds one value per metric (p50, p95, p99 latency, error rate,
throughput) to that series' :class:`~modelmonitor.anomaly.detector.AnomalyDetector`.
Request-based metrics skip steps with fewer than ``min_requests`` requests in the
window. Memory per series is constant (the detector's state plus a few floats).

Exactly one process feeds the detectors: the tracker runs where the alert engine
runs and holds a lease row in the alert store (renewed every step, taken over
when it expires). The holder saves the detector states every ``save_interval``
and on stop, so a restart (or the next holder) carries on with the same scores,
and stores every scored point (kept ``retention_seconds``) so that every API
replica and every alert engine read the same scores.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.alerts.evaluators import metric_value
from modelmonitor.alerts.models import AnomalyPoint, DetectorRecord
from modelmonitor.alerts.store.base import AlertStore
from modelmonitor.anomaly.detector import AnomalyDetector
from modelmonitor.live.base import LiveState
from modelmonitor.types import Clock

__all__ = ["LEASE_NAME", "TRACKED_METRICS", "AnomalyTracker", "TrackerConfig"]

log = logging.getLogger("modelmonitor.anomaly")

#: Metrics with a detector per service.
TRACKED_METRICS = (
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "error_rate",
    "throughput",
    # Language-model services only (no value elsewhere): see docs/models.md.
    "ttft_p95",
    "tokens_per_second",
)
#: The lease that makes one process the feeder.
LEASE_NAME = "anomaly-tracker"
#: A detector alarm (score >= this) starts an anomaly episode.
_ALARM = 0.5


@dataclass(frozen=True)
class TrackerConfig:
    step_seconds: float = 10.0
    #: The live window each step samples (10 s, 1 min or 5 min).
    window_seconds: int = 10
    #: Requests the window needs before latency and error metrics are fed.
    min_requests: int = 10
    learning_period: int = 600
    sensitivity: float = 0.5
    refractory: int = 60
    save_interval_seconds: float = 60.0
    retention_seconds: float = 7 * 86400.0
    #: An anomaly episode (value judged against the band frozen at its start) ends
    #: when the value is back inside that band, or after this long.
    episode_seconds: float = 1800.0
    lease_seconds: float = 30.0
    #: The loop scores a step this long after it ends, so that the events of its last
    #: seconds have reached the live windows (which are read as of the step's end).
    lag_seconds: float = 2.0


@dataclass
class _Series:
    detector: AnomalyDetector
    #: Band after the last point (what the next value is judged against).
    lower: float = math.nan
    upper: float = math.nan
    #: The current episode: band frozen at its start, start time, highest score.
    episode_lower: float = math.nan
    episode_upper: float = math.nan
    episode_started: float = 0.0
    episode_score: float = 0.0

    @property
    def in_episode(self) -> bool:
        return self.episode_score > 0.0

    def extra(self) -> dict[str, float]:
        """The tracker's own data, finite values only (JSON has no NaN)."""
        values = {
            "lower": self.lower,
            "upper": self.upper,
            "episode_lower": self.episode_lower,
            "episode_upper": self.episode_upper,
            "episode_started": self.episode_started,
            "episode_score": self.episode_score,
        }
        return {key: value for key, value in values.items() if math.isfinite(value)}

    @classmethod
    def restore(cls, record: DetectorRecord) -> _Series:
        extra = record.extra
        return cls(
            detector=AnomalyDetector.from_state(record.state),
            lower=extra.get("lower", math.nan),
            upper=extra.get("upper", math.nan),
            episode_lower=extra.get("episode_lower", math.nan),
            episode_upper=extra.get("episode_upper", math.nan),
            episode_started=extra.get("episode_started", 0.0),
            episode_score=extra.get("episode_score", 0.0),
        )


class AnomalyTracker:
    def __init__(
        self,
        *,
        store: AlertStore,
        live: LiveState,
        clock: Clock = time.time,
        config: TrackerConfig | None = None,
        configured_services: list[str] | None = None,
        holder: str | None = None,
    ) -> None:
        self._store = store
        self._live = live
        self._clock = clock
        self.config = config or TrackerConfig()
        self._configured = list(configured_services or [])
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._series: dict[tuple[str, str], _Series] = {}
        self._holding = False
        self._last_step = -math.inf
        self._last_save = -math.inf
        self._last_prune = -math.inf
        self._known: set[str] = set()
        self._known_at = -math.inf
        self._task: asyncio.Task[None] | None = None
        self.last_error = ""

    @property
    def holding(self) -> bool:
        """True while this process holds the lease (feeds the detectors)."""
        return self._holding

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def series(self) -> list[tuple[str, str]]:
        return sorted(self._series)

    def detector(self, service: str, metric: str) -> AnomalyDetector | None:
        found = self._series.get((service, metric))
        return found.detector if found is not None else None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="anomaly-tracker")

    async def stop(self) -> None:
        """Stop the loop; save the states and give up the lease if held."""
        await cancel_and_wait([self._task])
        self._task = None
        if self._holding:
            await self.save()
            await self._store.release_lease(LEASE_NAME, holder=self.holder)
            self._holding = False

    async def _run(self) -> None:
        step = self.config.step_seconds
        while True:
            try:
                await self.step(self._clock() - self.config.lag_seconds)
                self.last_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed step (store down) is retried next step
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("anomaly tracking failed: %s", self.last_error)
            now = self._clock() - self.config.lag_seconds
            await asyncio.sleep(max(0.05, step - now % step + 0.01))

    async def step(self, now: float | None = None) -> list[AnomalyPoint]:
        """Feed the step that ``now`` falls in, once; returns the points scored (none
        when that step was done already or another process holds the lease)."""
        now = self._clock() if now is None else now
        step = self.config.step_seconds
        at = math.floor(now / step) * step
        if at <= self._last_step:
            return []
        held = await self._store.acquire_lease(
            LEASE_NAME, holder=self.holder, now=now, until=now + self.config.lease_seconds
        )
        if not held:
            self._holding = False
            self._series.clear()  # the holder's states are newer; reload when taking over
            return []
        if not self._holding:
            await self._load()
            self._holding = True
        self._last_step = at
        points = await self._feed(at)
        await self._store.add_anomaly_points(points)
        if at - self._last_save >= self.config.save_interval_seconds:
            await self.save(now=at)
        if at - self._last_prune >= 3600.0:
            self._last_prune = at
            await self._store.prune_anomaly_points(before=at - self.config.retention_seconds)
        return points

    async def _load(self) -> None:
        self._series = {}
        records = await self._store.load_detectors()
        for record in records:
            try:
                self._series[(record.service, record.metric)] = _Series.restore(record)
            except ValueError as exc:  # an unreadable state starts a new detector
                log.warning("dropping detector %s/%s: %s", record.service, record.metric, exc)
        self._last_step = max((r.updated_at for r in records), default=self._last_step)

    async def save(self, *, now: float | None = None) -> None:
        """Store every detector's state (done every ``save_interval`` and on stop)."""
        at = self._last_step if now is None else now
        self._last_save = at
        await self._store.save_detectors(
            [
                DetectorRecord(
                    service=service,
                    metric=metric,
                    updated_at=self._last_step,
                    state=series.detector.to_state(),
                    extra=series.extra(),
                )
                for (service, metric), series in sorted(self._series.items())
            ]
        )

    async def _services(self, at: float) -> list[str]:
        # A snapshot is costly (every window of every service); services appear rarely.
        if at - self._known_at >= 60.0:
            snapshot = await self._live.snapshot(now=at)
            self._known.update(entry.service for entry in snapshot.services)
            self._known_at = at
        return sorted(self._known | set(self._configured))

    async def _feed(self, at: float) -> list[AnomalyPoint]:
        points = []
        for service in await self._services(at):
            stats = await self._live.window(
                service=service, seconds=self.config.window_seconds, now=at
            )
            for metric in TRACKED_METRICS:
                if metric != "throughput" and stats.requests < self.config.min_requests:
                    continue
                value = metric_value(stats, metric)
                if value is None:
                    continue
                points.append(self._score(service, metric, at, value))
        return points

    def _score(self, service: str, metric: str, at: float, value: float) -> AnomalyPoint:
        config = self.config
        series = self._series.get((service, metric))
        if series is None:
            detector = AnomalyDetector(
                sensitivity=config.sensitivity,
                learning_period=config.learning_period,
                refractory=config.refractory,
            )
            series = self._series[(service, metric)] = _Series(detector=detector)
        result = series.detector.update(at, value)
        # Judge the value against the band learned before it (the detector's band
        # already includes the value).
        lower = result.lower if math.isnan(series.lower) else series.lower
        upper = result.upper if math.isnan(series.upper) else series.upper
        series.lower, series.upper = result.lower, result.upper
        if series.in_episode:
            outside = not series.episode_lower <= value <= series.episode_upper
            expired = at - series.episode_started >= config.episode_seconds
            if outside and not expired:
                series.episode_score = max(series.episode_score, result.score)
            else:
                series.episode_score = 0.0
        if not series.in_episode and result.score >= _ALARM:
            series.episode_lower, series.episode_upper = lower, upper
            series.episode_started = at
            series.episode_score = result.score
        if series.in_episode:
            lower, upper = series.episode_lower, series.episode_upper
        return AnomalyPoint(
            service=service,
            metric=metric,
            at=at,
            value=value,
            score=result.score,
            expected=min(max(result.expected, lower), upper),
            lower=lower,
            upper=upper,
            count=series.detector.count,
            anomalous=series.in_episode,
            episode_score=series.episode_score,
        )
