"""The live-state contract: sliding windows per service and route, and a snapshot feed.

Workers ``record`` every stored batch; the API reads ``snapshot`` and relays
``updates`` to WebSocket clients; alerting and anomaly detection read ``window``.
Windows are 1 s, 10 s, 1 min and 5 min. The 1 s and 10 s windows are made of
1-second buckets, the 1 min and 5 min windows of 10-second buckets, so their
edges move in 10-second steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

from modelmonitor.aggregate import LanguageStats, WindowStats
from modelmonitor.events import EventBatch, ProxyStats
from modelmonitor.types import ServiceStatus

__all__ = [
    "WINDOWS",
    "LanguageStats",
    "LiveAnomaly",
    "LiveSnapshot",
    "LiveState",
    "ProxyStatus",
    "RouteLive",
    "ServiceLive",
    "WindowStats",
]

#: Window name -> length in seconds.
WINDOWS: dict[str, int] = {"1s": 1, "10s": 10, "1m": 60, "5m": 300}


class RouteLive(msgspec.Struct, kw_only=True):
    method: str
    route: str
    window: WindowStats  # the 1-minute window


class LiveAnomaly(msgspec.Struct, kw_only=True):
    """The newest anomaly score of one metric (filled in by the API, not by the backends)."""

    value: float
    score: float
    expected: float
    lower: float
    upper: float
    at: float
    anomalous: bool
    #: The detector member that fired ("" when none did) and "new_normal" on re-learning.
    member: str = ""
    event: str = ""


class ServiceLive(msgspec.Struct, kw_only=True):
    service: str
    #: "healthy", "degraded" (errors >= 5 % or slow), "down" (errors >= 50 % or
    #: upstream unreachable) or "idle" (no requests in 5 minutes), from the 1 min window.
    status: ServiceStatus = "idle"
    in_flight: int = 0
    last_seen: float | None = None
    windows: dict[str, WindowStats]
    routes: list[RouteLive] = []
    #: Metric -> newest anomaly score and expected band, when anomaly detection runs
    #: (``latency_p50``, ``latency_p95``, ``latency_p99``, ``error_rate``, ``throughput``).
    anomalies: dict[str, LiveAnomaly] | None = None


class ProxyStatus(msgspec.Struct, kw_only=True):
    """A proxy's last reported state, as the API shows it (named fields)."""

    proxy_id: str
    sent_at: float
    buffer_size: int
    buffer_capacity: int
    dropped_total: int
    captured_total: int
    in_flight: dict[str, int]
    bus_state: str
    spooled: int
    #: Edge refusals per kind and ``routes_folded`` (see ``ProxyStats.edge``).
    edge: dict[str, int] = msgspec.field(default_factory=dict)

    @classmethod
    def from_stats(cls, stats: ProxyStats) -> ProxyStatus:
        return cls(**msgspec.structs.asdict(stats))


class LiveSnapshot(msgspec.Struct, kw_only=True):
    at: float
    services: list[ServiceLive]
    proxies: list[ProxyStatus] = []
    #: Events recorded per second over the last 10 seconds, all services.
    ingest_rate: float = 0.0


@runtime_checkable
class LiveState(Protocol):
    url: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def record(self, batch: EventBatch) -> None:
        """Add a stored batch's events to the windows and remember its proxy stats."""
        ...

    async def snapshot(
        self, *, service: str | None = None, now: float | None = None
    ) -> LiveSnapshot: ...

    async def window(
        self, *, service: str, seconds: int, route: str | None = None, now: float | None = None
    ) -> WindowStats:
        """One service's (or route's) stats over the last ``seconds`` (rounded to buckets)."""
        ...

    def updates(self, *, interval: float) -> AsyncIterator[LiveSnapshot]:
        """A snapshot every ``interval`` seconds, the same for every subscriber."""
        ...
