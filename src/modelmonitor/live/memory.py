"""In-process live state (``memory://``): windows kept in this process's memory."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterator

from modelmonitor._tasks import Supervisor
from modelmonitor.aggregate import Aggregate, Columns, aggregate_batch, finished_second
from modelmonitor.events import EventBatch, ProxyStats
from modelmonitor.live.base import (
    WINDOWS,
    LiveSnapshot,
    ProxyStatus,
    RouteLive,
    ServiceLive,
    WindowStats,
)
from modelmonitor.live.broadcast import Broadcast
from modelmonitor.live.windows import (
    COARSE_SECONDS,
    bucket_plan,
    last_seen_by_service,
    service_status,
    window_stats,
)
from modelmonitor.types import Clock

__all__ = ["MemoryLiveState", "SnapshotTicker"]

_FINE_KEEP = 2 * COARSE_SECONDS
_COARSE_KEEP = max(WINDOWS.values()) + 2 * COARSE_SECONDS
_PROXY_STALE_SECONDS = 30.0


class _Series:
    __slots__ = ("coarse", "fine", "last_seen")

    def __init__(self) -> None:
        self.fine: dict[int, Aggregate] = {}
        self.coarse: dict[int, Aggregate] = {}
        self.last_seen = 0.0

    def add(self, second: int, bucket: Aggregate, finished: float) -> None:
        """Merge a batch's aggregate for one second into this series."""
        fine = self.fine.get(second)
        if fine is None:
            fine = self.fine[second] = Aggregate()
        fine.merge(bucket)
        tens = second - second % COARSE_SECONDS
        coarse = self.coarse.get(tens)
        if coarse is None:
            coarse = self.coarse[tens] = Aggregate()
        coarse.merge(bucket)
        if finished > self.last_seen:
            self.last_seen = finished

    def prune(self, now: float) -> None:
        for buckets, keep in ((self.fine, _FINE_KEEP), (self.coarse, _COARSE_KEEP)):
            oldest = now - keep
            for start in [start for start in buckets if start < oldest]:
                del buckets[start]

    def window(self, seconds: int, now: float) -> WindowStats:
        fine, coarse, covered = bucket_plan(seconds, now)
        chosen = [self.fine[s] for s in fine if s in self.fine]
        chosen.extend(self.coarse[s] for s in coarse if s in self.coarse)
        return window_stats(chosen, window_seconds=seconds, covered=covered)


class SnapshotTicker:
    """Computes one snapshot per interval and fans it out to every subscriber."""

    def __init__(self, live: MemoryLiveState, clock: Clock) -> None:
        self._live = live
        self._clock = clock
        self._broadcasts: dict[float, Broadcast[LiveSnapshot]] = {}
        self._supervisor = Supervisor("live-feed")

    def subscribe(self, interval: float) -> AsyncIterator[LiveSnapshot]:
        broadcast = self._broadcasts.get(interval)
        if broadcast is None:
            broadcast = self._broadcasts[interval] = Broadcast()
            self._supervisor.spawn(
                f"ticker-{interval:g}s", functools.partial(self._tick, interval, broadcast)
            )
        return broadcast.subscribe()

    async def _tick(self, interval: float, broadcast: Broadcast[LiveSnapshot]) -> None:
        while True:
            now = self._clock()
            await asyncio.sleep(interval - now % interval if interval > 0 else 1.0)
            await broadcast.publish(await self._live.snapshot())

    async def close(self) -> None:
        await self._supervisor.stop()
        for broadcast in self._broadcasts.values():
            await broadcast.close()
        self._broadcasts.clear()


class MemoryLiveState:
    def __init__(self, url: str = "memory://", *, clock: Clock = time.time) -> None:
        self.url = url
        self._clock = clock
        self._services: dict[str, _Series] = {}
        self._routes: dict[str, dict[tuple[str, str], _Series]] = {}
        self._proxies: dict[str, ProxyStats] = {}
        self._ingest: dict[int, int] = {}
        self._ticker = SnapshotTicker(self, clock)
        self._last_prune = 0.0

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        await self._ticker.close()

    async def record(self, batch: EventBatch) -> None:
        now = self._clock()
        previous = self._proxies.get(batch.stats.proxy_id)
        if previous is None or previous.sent_at <= batch.stats.sent_at:
            self._proxies[batch.stats.proxy_id] = batch.stats
        # Aggregate the batch per series and second in bulk; the series then merge
        # a handful of aggregates instead of every event.
        columns = Columns(batch.events)
        groups = aggregate_batch(
            columns, dims=("service", "method", "route"), bucket=finished_second
        )
        latest = last_seen_by_service(columns)
        services = self._services
        routes = self._routes
        for key, bucket in groups.items():
            second, service, method, route = key
            assert isinstance(second, int) and isinstance(service, str)
            finished = min(latest[service], second + 1.0)
            series = services.get(service)
            if series is None:
                series = services[service] = _Series()
                routes[service] = {}
            series.add(second, bucket, finished)
            route_key = (str(method), str(route))
            route_series = routes[service].get(route_key)
            if route_series is None:
                route_series = routes[service][route_key] = _Series()
            route_series.add(second, bucket, finished)
        if batch.events:
            second = math.floor(now)
            self._ingest[second] = self._ingest.get(second, 0) + len(batch.events)
        if now - self._last_prune >= 1.0:
            self._prune(now)

    def _prune(self, now: float) -> None:
        self._last_prune = now
        for series in self._services.values():
            series.prune(now)
        for service, by_route in self._routes.items():
            for key in list(by_route):
                route_series = by_route[key]
                route_series.prune(now)
                if now - route_series.last_seen > _COARSE_KEEP:
                    del by_route[key]
            if not by_route and now - self._services[service].last_seen > _COARSE_KEEP:
                pass  # keep the service itself: it stays listed as idle
        for second in [s for s in self._ingest if s < now - _FINE_KEEP]:
            del self._ingest[second]
        for proxy_id in [
            p for p, stats in self._proxies.items() if now - stats.sent_at > _PROXY_STALE_SECONDS
        ]:
            del self._proxies[proxy_id]

    def _in_flight(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for stats in self._proxies.values():
            for service, count in stats.in_flight.items():
                totals[service] = totals.get(service, 0) + count
        return totals

    async def snapshot(
        self, *, service: str | None = None, now: float | None = None
    ) -> LiveSnapshot:
        now = self._clock() if now is None else now
        in_flight = self._in_flight()
        names = [service] if service is not None else sorted(self._services)
        services = []
        for name in names:
            series = self._services.get(name)
            if series is None:
                continue
            windows = {label: series.window(seconds, now) for label, seconds in WINDOWS.items()}
            routes = [
                RouteLive(method=method, route=route, window=route_series.window(60, now))
                for (method, route), route_series in sorted(self._routes[name].items())
            ]
            last_seen = series.last_seen or None
            services.append(
                ServiceLive(
                    service=name,
                    status=service_status(windows["1m"], last_seen=last_seen, now=now),
                    in_flight=in_flight.get(name, 0),
                    last_seen=last_seen,
                    windows=windows,
                    routes=routes,
                )
            )
        current = math.floor(now)
        ingested = sum(self._ingest.get(s, 0) for s in range(current - 10, current))
        return LiveSnapshot(
            at=now,
            services=services,
            proxies=[
                ProxyStatus.from_stats(stats)
                for stats in sorted(self._proxies.values(), key=lambda stats: stats.proxy_id)
            ],
            ingest_rate=ingested / 10.0,
        )

    async def window(
        self, *, service: str, seconds: int, route: str | None = None, now: float | None = None
    ) -> WindowStats:
        now = self._clock() if now is None else now
        if route is None:
            series = self._services.get(service)
            if series is None:
                return WindowStats(window_seconds=seconds)
            return series.window(seconds, now)
        matching = [
            route_series
            for (_, name), route_series in self._routes.get(service, {}).items()
            if name == route
        ]
        fine, coarse, covered = bucket_plan(seconds, now)
        buckets = [s.fine[b] for s in matching for b in fine if b in s.fine]
        buckets.extend(s.coarse[b] for s in matching for b in coarse if b in s.coarse)
        return window_stats(buckets, window_seconds=seconds, covered=covered)

    def updates(self, *, interval: float) -> AsyncIterator[LiveSnapshot]:
        return self._ticker.subscribe(interval)
