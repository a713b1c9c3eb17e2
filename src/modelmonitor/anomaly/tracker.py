"""The anomaly tracker: one streaming detector per (service, metric), fed from live windows.

Every ``step_seconds`` (10 s by default) the tracker reads each service's live
window of the same length (consecutive points do not overlap, so a sudden change
shows in full in one point) and feeds one value per metric (p50, p95, p99 latency,
error rate, throughput) to that series'
:class:`~modelmonitor.anomaly.detector.AnomalyDetector`. Request-based metrics skip
steps with fewer than ``min_requests`` requests in the window.

A new detector (first start, or a service that appears) learns first from the
per-minute rollups already in the event store, so it scores from its first live
points, conservatively until its calibration window fills. An anomaly that lasts
``episode_seconds`` with the value still outside the band is a *new normal*: the
detector re-learns from the values since the shift and a ``new_normal`` point is
stored. Detectors of series without traffic for ``prune_after_seconds`` are dropped.

Exactly one process feeds the detectors: the tracker runs where the alert engine
runs and holds a lease row in the alert store (renewed every step, taken over
when it expires). The holder saves the detector states every ``save_interval``
and on stop, and stores every scored point (kept ``retention_seconds``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.alerts.evaluators import metric_value
from modelmonitor.alerts.models import AnomalyPoint, DetectorRecord
from modelmonitor.alerts.store.base import AlertStore
from modelmonitor.anomaly._history import history_points
from modelmonitor.anomaly.detector import MEMBERS, AnomalyDetector
from modelmonitor.live.base import LiveState
from modelmonitor.storage.base import ROLLUP_SECONDS, EventStore
from modelmonitor.types import Clock

__all__ = [
    "LEASE_NAME",
    "NEW_NORMAL",
    "TRACKED_METRICS",
    "AnomalyTracker",
    "TrackerConfig",
    "window_for",
]

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
#: ``AnomalyPoint.event`` of the point where a detector re-learned after a lasting shift.
NEW_NORMAL = "new_normal"
#: A detector alarm (score >= this) starts an anomaly episode.
_ALARM = 0.5


#: Live windows a step can sample, in seconds.
_WINDOWS = (10, 60, 300)


def window_for(step_seconds: float) -> int:
    """The longest live window that fits in a step (consecutive points do not overlap)."""
    return max((w for w in _WINDOWS if w <= step_seconds), default=_WINDOWS[0])


@dataclass(frozen=True)
class TrackerConfig:
    #: One point per minute: the resolution of the stored rollups, so that a new
    #: detector learns from history of the same kind as its live points.
    step_seconds: float = 60.0
    #: The live window each step samples (10 s, 1 min or 5 min).
    window_seconds: int = 60
    #: Requests the window needs before latency and error metrics are fed.
    min_requests: int = 10
    #: The calibration window: how many recent points a value is judged against
    #: (600 = 10 hours); also how much rollup history warms a new detector.
    learning_period: int = 600
    #: Without history, points before a detector's first score (10 = 10 minutes).
    first_points: int = 10
    sensitivity: float = 0.5
    refractory: int = 120
    save_interval_seconds: float = 60.0
    retention_seconds: float = 7 * 86400.0
    #: An anomaly episode (value judged against the band frozen at its start) ends
    #: when the value is back inside that band; still outside after this long, the
    #: level is a new normal and the detector re-learns.
    episode_seconds: float = 1800.0
    lease_seconds: float = 30.0
    #: The loop scores a step this long after it ends, so that the events of its last
    #: seconds have reached the live windows (which are read as of the step's end).
    lag_seconds: float = 2.0
    #: A series without traffic this long (a day: one daily cycle) has vanished.
    prune_after_seconds: float = 86400.0


@dataclass
class _Series:
    detector: AnomalyDetector
    #: Last time the series was fed a value with traffic behind it.
    active_at: float = 0.0
    #: The current episode: band frozen at its start, start time, highest score, member.
    episode_lower: float = math.nan
    episode_upper: float = math.nan
    episode_started: float = 0.0
    episode_score: float = 0.0
    episode_member: str = ""
    #: Values since the episode began (what the detector re-learns from if it lasts).
    shift: list[float] = field(default_factory=list)

    @property
    def in_episode(self) -> bool:
        return self.episode_score > 0.0

    def end_episode(self) -> None:
        self.episode_score = 0.0
        self.episode_member = ""
        self.shift = []

    def extra(self) -> dict[str, float]:
        """The tracker's own data, finite values only (JSON has no NaN)."""
        values = {
            "active_at": self.active_at,
            "episode_lower": self.episode_lower,
            "episode_upper": self.episode_upper,
            "episode_started": self.episode_started,
            "episode_score": self.episode_score,
        }
        if self.episode_member in MEMBERS:
            values["episode_member"] = float(MEMBERS.index(self.episode_member))
        return {key: value for key, value in values.items() if math.isfinite(value)}

    @classmethod
    def restore(cls, record: DetectorRecord) -> _Series:
        extra = record.extra
        member = int(extra.get("episode_member", -1))
        return cls(
            detector=AnomalyDetector.from_state(record.state),
            active_at=extra.get("active_at", record.updated_at),
            episode_lower=extra.get("episode_lower", math.nan),
            episode_upper=extra.get("episode_upper", math.nan),
            episode_started=extra.get("episode_started", 0.0),
            episode_score=extra.get("episode_score", 0.0),
            episode_member=MEMBERS[member] if 0 <= member < len(MEMBERS) else "",
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
        history: EventStore | None = None,
    ) -> None:
        self._store = store
        self._live = live
        self._clock = clock
        self._history = history
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
        #: Bytes of all detector states at the last save (reported on ``/metrics``).
        self.state_bytes = 0

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
            await self.prune(at)
        return points

    async def prune(self, at: float) -> list[tuple[str, str]]:
        """Drop the detectors (and stored states) of series without traffic for
        ``prune_after_seconds``; a service left without detectors is no longer fed."""
        cutoff = at - self.config.prune_after_seconds
        stale = sorted(key for key, series in self._series.items() if series.active_at < cutoff)
        for key in stale:
            del self._series[key]
        if stale:
            await self._store.delete_detectors(stale)
            self._known &= {service for service, _ in self._series}
        return stale

    async def _load(self) -> None:
        self._series = {}
        records = await self._store.load_detectors()
        for record in records:
            try:
                self._series[(record.service, record.metric)] = _Series.restore(record)
            except ValueError as exc:  # an unreadable or older state: learn anew
                log.warning("dropping detector %s/%s: %s", record.service, record.metric, exc)
        self._known.update(service for service, _ in self._series)
        self._last_step = max((r.updated_at for r in records), default=self._last_step)

    async def save(self, *, now: float | None = None) -> None:
        """Store every detector's state (done every ``save_interval`` and on stop)."""
        at = self._last_step if now is None else now
        self._last_save = at
        records = [
            DetectorRecord(
                service=service,
                metric=metric,
                updated_at=self._last_step,
                state=series.detector.to_state(),
                extra=series.extra(),
            )
            for (service, metric), series in sorted(self._series.items())
        ]
        self.state_bytes = sum(len(record.state) for record in records)
        await self._store.save_detectors(records)

    async def _services(self, at: float) -> list[str]:
        # A snapshot is costly (every window of every service); services appear rarely.
        if at - self._known_at >= 60.0:
            snapshot = await self._live.snapshot(now=at)
            self._known.update(entry.service for entry in snapshot.services)
            self._known_at = at
        return sorted(self._known | set(self._configured))

    def _new_detector(self) -> AnomalyDetector:
        config = self.config
        return AnomalyDetector(
            sensitivity=config.sensitivity,
            learning_period=config.first_points,
            window=config.learning_period,
            refractory=config.refractory,
        )

    async def _create(self, service: str, metrics: list[str], at: float) -> None:
        """New detectors for ``metrics``, warmed from the service's stored rollups."""
        found: dict[str, list[tuple[float, float]]] = {}
        config = self.config
        # Rollups are per minute: a detector fed finer steps would judge their noise
        # against smoother history, so only whole-minute steps warm from it.
        if self._history is not None and config.window_seconds % ROLLUP_SECONDS == 0:
            found = await history_points(
                self._history,
                service=service,
                metrics=metrics,
                start=at - config.learning_period * config.step_seconds,
                end=at,
                step=int(config.window_seconds),
                min_requests=config.min_requests,
            )
        for metric in metrics:
            detector = self._new_detector()
            detector.warm(found.get(metric, []))
            self._series[(service, metric)] = _Series(detector=detector, active_at=at)

    async def _feed(self, at: float) -> list[AnomalyPoint]:
        points = []
        for service in await self._services(at):
            stats = await self._live.window(
                service=service, seconds=self.config.window_seconds, now=at
            )
            values: dict[str, float] = {}
            for metric in TRACKED_METRICS:
                if metric != "throughput" and stats.requests < self.config.min_requests:
                    continue
                value = metric_value(stats, metric)
                if value is not None:
                    values[metric] = value
            # A series starts with traffic (a silent service is not a new series).
            active = {m for m, v in values.items() if m != "throughput" or v > 0.0}
            missing = [m for m in sorted(active) if (service, m) not in self._series]
            if missing:
                await self._create(service, missing, at)
            for metric, value in values.items():
                series = self._series.get((service, metric))
                if series is None:
                    continue
                if metric in active:
                    series.active_at = at
                points.append(self._score(service, metric, series, at, value))
        return points

    def _score(
        self, service: str, metric: str, series: _Series, at: float, value: float
    ) -> AnomalyPoint:
        result = series.detector.update(at, value)
        expected, lower, upper = result.expected, result.lower, result.upper
        member = result.member if result.score >= _ALARM else ""
        event = ""
        if series.in_episode:
            outside = not series.episode_lower <= value <= series.episode_upper
            if not outside:
                series.end_episode()
            elif at - series.episode_started >= self.config.episode_seconds:
                self._relearn(series, at, value)
                expected, lower, upper = series.detector.band()
                event = NEW_NORMAL
            else:
                series.episode_score = max(series.episode_score, result.score)
                if len(series.shift) < self.config.episode_seconds / self.config.step_seconds:
                    series.shift.append(value)
        if not series.in_episode and not event and result.score >= _ALARM:
            series.episode_lower, series.episode_upper = lower, upper
            series.episode_started = at
            series.episode_score = result.score
            series.episode_member = result.member
            series.shift = [value]
        if series.in_episode:
            lower, upper = series.episode_lower, series.episode_upper
            member = member or series.episode_member
        return AnomalyPoint(
            service=service,
            metric=metric,
            at=at,
            value=value,
            score=result.score,
            expected=min(max(expected, lower), upper),
            lower=lower,
            upper=upper,
            count=series.detector.count,
            anomalous=series.in_episode,
            episode_score=series.episode_score,
            member=member,
            event=event,
        )

    def _relearn(self, series: _Series, at: float, value: float) -> None:
        """The shift lasted: a new detector learns the new level from the values since."""
        values = [*series.shift, value]
        step = self.config.step_seconds
        detector = self._new_detector()
        detector.warm((at - step * (len(values) - 1 - i), v) for i, v in enumerate(values))
        series.detector = detector
        series.end_episode()
        log.info("anomaly: new normal after a lasting shift")
