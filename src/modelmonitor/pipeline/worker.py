"""The worker: consume batches, store them, update live windows, then ack.

At-least-once end to end: a delivery is acked only after the store committed it,
and the store is idempotent on event id, so redelivery never stores twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import msgspec

from modelmonitor._tasks import Supervisor, TaskHealth
from modelmonitor.bus.base import Delivery, EventBus
from modelmonitor.events import EventBatch, RequestEvent, decode_batch
from modelmonitor.live.base import LiveState
from modelmonitor.storage.base import EventStore, RollupTier
from modelmonitor.telemetry import RequestMetrics
from modelmonitor.types import Clock

__all__ = ["BatchHook", "Worker", "WorkerStats"]

log = logging.getLogger("modelmonitor.worker")

#: Called after each stored batch (payload sampling and drift hook in here); must not raise.
BatchHook = Callable[[EventBatch], Awaitable[None]]


class WorkerStats(msgspec.Struct, kw_only=True):
    batches_total: int = 0
    events_stored_total: int = 0
    duplicates_total: int = 0
    rejected_total: int = 0
    store_failures_total: int = 0
    live_failures_total: int = 0
    last_batch_at: float | None = None
    store_ok: bool = True
    last_error: str = ""
    #: Committed store writes and the seconds they took (for mean write latency).
    store_writes_total: int = 0
    store_write_seconds_total: float = 0.0


class Worker:
    def __init__(
        self,
        *,
        bus: EventBus,
        store: EventStore,
        live: LiveState,
        prefetch: int = 32,
        retention_raw_seconds: float | None = None,
        retention_rollups_seconds: float | None = None,
        retention_tiers_seconds: Mapping[RollupTier, float] | None = None,
        retention_every_seconds: float = 600.0,
        clock: Clock = time.time,
        request_metrics: RequestMetrics | None = None,
        observers: Sequence[Callable[[list[RequestEvent]], None]] = (),
    ) -> None:
        self._bus = bus
        #: Prometheus counters and histograms of what this worker stored.
        self.request_metrics = request_metrics or RequestMetrics()
        #: Called with every committed batch's events; must return at once (export queues).
        self._observers = list(observers)
        self._store = store
        self._live = live
        self._prefetch = prefetch
        self._retention = (retention_raw_seconds, retention_rollups_seconds)
        #: The hour and day tiers' retention (0 or absent keeps them).
        self._tier_retention = dict(retention_tiers_seconds or {})
        self._retention_every = retention_every_seconds
        self._clock = clock
        self._supervisor = Supervisor("worker")
        self.stats = WorkerStats()
        self.hooks: list[BatchHook] = []
        self._inbox: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=prefetch)

    def add_observer(self, observe: Callable[[list[RequestEvent]], None]) -> None:
        self._observers.append(observe)

    async def start(self) -> None:
        self._supervisor.spawn("pump", self._pump)
        self._supervisor.spawn("process", self._process)
        if any(self._retention) or any(self._tier_retention.values()):
            self._supervisor.spawn("retention", self._retain)

    async def stop(self) -> None:
        await self._supervisor.stop()

    def health(self) -> TaskHealth:
        """Down while a loop is down (the consumer died, say), degraded while the store
        fails or just after a loop was restarted."""
        tasks = self._supervisor.health()
        if tasks.status != "ok":
            return tasks
        if not self.stats.store_ok:
            return TaskHealth(status="degraded", detail=self.stats.last_error)
        return TaskHealth(status="ok", detail=f"{self.stats.events_stored_total} events stored")

    async def _pump(self) -> None:
        async for delivery in self._bus.consume(prefetch=self._prefetch):
            await self._inbox.put(delivery)

    async def _process(self) -> None:
        while True:
            deliveries = [await self._inbox.get()]
            while not self._inbox.empty() and len(deliveries) < self._prefetch:
                deliveries.append(self._inbox.get_nowait())
            await self.handle(*deliveries)

    async def handle(self, *deliveries: Delivery) -> None:
        """Store deliveries in one transaction (retrying until it commits), then ack them."""
        batches: list[EventBatch] = []
        accepted: list[Delivery] = []
        for delivery in deliveries:
            try:
                batches.append(decode_batch(delivery.body))
                accepted.append(delivery)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.stats.rejected_total += 1
                log.warning("dropping an undecodable message from the bus: %s", exc)
                await delivery.reject(requeue=False)
        if not batches:
            return
        events = [event for batch in batches for event in batch.events]
        delay = 0.1
        while True:
            try:
                began = time.perf_counter()
                fresh = await self._store.write_batch(events)
                self.stats.store_write_seconds_total += time.perf_counter() - began
                self.stats.store_writes_total += 1
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any store failure means: keep the messages, retry
                self.stats.store_ok = False
                self.stats.store_failures_total += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("store write failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.stats.store_ok = True
        self.request_metrics.observe(events)
        for observe in self._observers:
            observe(events)
        for batch in batches:
            try:
                await self._live.record(batch)
            except Exception as exc:  # noqa: BLE001 - live state is best effort; storage is the record
                self.stats.live_failures_total += 1
                log.warning("live state update failed: %s", exc)
        for delivery in accepted:
            await delivery.ack()
        self.stats.batches_total += len(batches)
        self.stats.events_stored_total += fresh
        self.stats.duplicates_total += len(events) - fresh
        self.stats.last_batch_at = self._clock()
        for batch in batches:
            for hook in self.hooks:
                try:
                    await hook(batch)
                except Exception:  # a hook must never stop ingestion
                    log.exception("batch hook %r failed", hook)

    async def _retain(self) -> None:
        raw, rollups = self._retention
        while True:
            now = self._clock()
            try:
                deleted = await self._store.delete_before(
                    raw_before=now - raw if raw else 0.0,
                    rollups_before=now - rollups if rollups else 0.0,
                    tiers_before={
                        tier: now - seconds
                        for tier, seconds in self._tier_retention.items()
                        if seconds
                    },
                )
                if any(deleted):
                    log.info("retention removed %d events and %d rollup rows", *deleted)
            except Exception as exc:  # noqa: BLE001 - retention retries on its next round
                log.warning("retention failed: %s", exc)
            await asyncio.sleep(self._retention_every)
