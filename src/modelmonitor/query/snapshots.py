"""Realtime read model: enriched live snapshots, and the feeds' views of them.

One :class:`ReadModel` per API process. ``GET /api/v1/metrics/realtime``,
``/metrics`` and the WebSocket feed all render what it returns: the live state's
snapshot with configured services that saw no traffic listed as idle, sorted, and
the newest anomaly scores attached. The feed enriches the snapshot the live
state pushes (in Redis mode, the one the leader published) instead of building
its own.
"""

from __future__ import annotations

import enum
import time

import msgspec

from modelmonitor.live.base import WINDOWS, LiveSnapshot, LiveState, ServiceLive, WindowStats
from modelmonitor.live.windows import service_status
from modelmonitor.query.anomalies import (
    AnomalyPoints,
    AnomalySeries,
    add_live_anomalies,
    anomaly_series,
)
from modelmonitor.settings import Settings
from modelmonitor.storage.base import EventStore
from modelmonitor.types import Clock, ServiceStatus

__all__ = [
    "OVERVIEW_WINDOWS",
    "FeedView",
    "OverviewSnapshot",
    "OverviewWindow",
    "ReadModel",
    "ServiceOverview",
    "overview",
    "service_only",
]

#: What the overview shows of each window: the 10 s window's figures, the 1 min rate
#: (its sparkline) and the 5 min request count.
OVERVIEW_WINDOWS: dict[str, tuple[str, ...]] = {
    "10s": (
        "requests",
        "errors",
        "rps",
        "error_rate",
        "status_classes",
        "p50_seconds",
        "p95_seconds",
        "p99_seconds",
    ),
    "1m": ("rps",),
    "5m": ("requests",),
}


class FeedView(enum.Enum):
    """What a WebSocket client receives each interval."""

    FULL = "full"  #: every service with every window and route (the REST snapshot)
    OVERVIEW = "overview"  #: what the overview page shows of every service
    SERVICE = "service"  #: one service, complete


class OverviewWindow(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The figures of one window the overview shows; figures it does not show of that
    window are left out (the 1 min window only carries ``rps``, the 5 min one only
    ``requests``)."""

    requests: int | None = None
    errors: int | None = None
    rps: float | None = None
    error_rate: float | None = None
    status_classes: dict[str, int] | None = None
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    p99_seconds: float | None = None

    @classmethod
    def of(cls, stats: WindowStats, fields: tuple[str, ...]) -> OverviewWindow:
        return cls(**{name: getattr(stats, name) for name in fields})


class ServiceOverview(msgspec.Struct, kw_only=True):
    """One service on the overview: its state and :data:`OVERVIEW_WINDOWS`."""

    service: str
    status: ServiceStatus
    in_flight: int
    last_seen: float | None
    windows: dict[str, OverviewWindow]


class OverviewSnapshot(msgspec.Struct, kw_only=True):
    at: float
    services: list[ServiceOverview]


def overview(snapshot: LiveSnapshot) -> OverviewSnapshot:
    """The overview feed's view of an enriched snapshot."""
    return OverviewSnapshot(
        at=snapshot.at,
        services=[
            ServiceOverview(
                service=entry.service,
                status=entry.status,
                in_flight=entry.in_flight,
                last_seen=entry.last_seen,
                windows={
                    name: OverviewWindow.of(entry.windows[name], fields)
                    for name, fields in OVERVIEW_WINDOWS.items()
                    if name in entry.windows
                },
            )
            for entry in snapshot.services
        ],
    )


def service_only(snapshot: LiveSnapshot, service: str) -> LiveSnapshot:
    """The per-service feed's view: the snapshot with one service."""
    return msgspec.structs.replace(
        snapshot, services=[entry for entry in snapshot.services if entry.service == service]
    )


class ReadModel:
    """Builds what the API shows from the store, the live state and the anomaly store."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: EventStore,
        live: LiveState,
        anomalies: AnomalyPoints | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.live = live
        self.anomalies = anomalies
        self.clock = clock

    async def snapshot(self, service: str | None = None) -> LiveSnapshot:
        """The live snapshot now, enriched (see :meth:`enrich`)."""
        return await self.enrich(await self.live.snapshot(service=service), service=service)

    async def enrich(self, snapshot: LiveSnapshot, *, service: str | None = None) -> LiveSnapshot:
        """A copy of ``snapshot`` with configured services that saw no traffic listed as
        idle (only ``service`` when given), sorted by name, with anomaly scores."""
        services = [msgspec.structs.replace(entry) for entry in snapshot.services]
        present = {entry.service for entry in services}
        for name in (s.name for s in self.settings.effective_services):
            if name in present or service not in (None, name):
                continue
            windows = {
                label: WindowStats(window_seconds=seconds) for label, seconds in WINDOWS.items()
            }
            services.append(
                ServiceLive(
                    service=name,
                    status=service_status(windows["1m"], last_seen=None, now=snapshot.at),
                    windows=windows,
                )
            )
        services.sort(key=lambda entry: entry.service)
        enriched = msgspec.structs.replace(snapshot, services=services)
        if self.anomalies is not None:
            await add_live_anomalies(self.anomalies, enriched)
        return enriched

    async def anomaly_series(
        self, *, service: str, metrics: list[str], start: float, end: float
    ) -> list[AnomalySeries]:
        """Scored series of ``metrics`` over ``[start, end)`` (none without an anomaly
        store), at most ``max_history_points`` points each."""
        if self.anomalies is None:
            return []
        return await anomaly_series(
            self.anomalies,
            service=service,
            metrics=metrics,
            start=start,
            end=end,
            limit=self.settings.max_history_points,
        )

    async def known_services(self) -> set[str]:
        """Configured, stored and live service names."""
        names = {service.name for service in self.settings.effective_services}
        names.update(summary.name for summary in await self.store.services())
        names.update(entry.service for entry in (await self.live.snapshot()).services)
        return names
