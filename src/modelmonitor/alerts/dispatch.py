"""Delivery: one bounded queue and one sender task per channel.

``submit`` never waits: the evaluator hands a notification over and moves on, so
a slow or failing channel delays neither evaluation nor the other channels. A
full queue drops the notification (and logs the drop as a delivery). Each
delivery is retried on retryable errors with exponential backoff and full
jitter; its outcome is stored in the delivery log, and the channel's
consecutive-failure count (kept in the store, shared by every process) disables
the channel after ``disable_after`` failed deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from modelmonitor.alerts.channels.base import DeliveryError, NotificationChannel
from modelmonitor.alerts.models import Delivery, Notification
from modelmonitor.alerts.store.base import AlertStore
from modelmonitor.types import Clock

__all__ = ["Dispatcher"]

log = logging.getLogger("modelmonitor.alerts")

Sleep = Callable[[float], Awaitable[None]]


class Dispatcher:
    def __init__(
        self,
        *,
        channels: dict[str, NotificationChannel[Any]],
        store: AlertStore,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.channels = channels
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._queues: dict[str, asyncio.Queue[Notification]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._records: set[asyncio.Task[int]] = set()

    async def start(self) -> None:
        for name, channel in self.channels.items():
            queue: asyncio.Queue[Notification] = asyncio.Queue(channel.config.queue_size)
            self._queues[name] = queue
            self._tasks.append(
                asyncio.create_task(self._run(channel, queue), name=f"alerts-{name}")
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queues.clear()
        if self._records:
            await asyncio.gather(*self._records, return_exceptions=True)
        for channel in self.channels.values():
            await channel.close()

    def submit(self, channel_name: str, notification: Notification) -> bool:
        """Queue a notification for a channel; False (and a logged drop) when full."""
        queue = self._queues.get(channel_name)
        if queue is None:
            log.warning("notification for unknown or stopped channel %r dropped", channel_name)
            return False
        try:
            queue.put_nowait(notification)
        except asyncio.QueueFull:
            channel = self.channels[channel_name]
            self._spawn_record(
                self._delivery(channel, notification, status="dropped", error="queue full")
            )
            return False
        return True

    async def idle(self) -> None:
        """Wait until every queued notification has been handled (tests, shutdown)."""
        for queue in self._queues.values():
            await queue.join()

    def _spawn_record(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self._store.add_delivery(delivery))
        self._records.add(task)
        task.add_done_callback(self._records.discard)

    def _delivery(
        self, channel: NotificationChannel[Any], notification: Notification, **fields: Any
    ) -> Delivery:
        return Delivery(
            notification_id=notification.id,
            channel=channel.name,
            channel_type=channel.type,
            service=notification.service,
            created_at=self._clock(),
            alert_ids=[notice.id for notice in notification.alerts],
            **fields,
        )

    async def _run(
        self, channel: NotificationChannel[Any], queue: asyncio.Queue[Notification]
    ) -> None:
        while True:
            notification = await queue.get()
            try:
                await self.deliver(channel, notification)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery to channel %r failed unexpectedly", channel.name)
            finally:
                queue.task_done()

    async def deliver(
        self, channel: NotificationChannel[Any], notification: Notification
    ) -> Delivery:
        """Send with retries, log the outcome, update the channel's failure count."""
        statuses = {status.name: status for status in await self._store.channel_statuses()}
        current = statuses.get(channel.name)
        if current is not None and not current.enabled:
            delivery = self._delivery(
                channel, notification, status="skipped", error=current.disabled_reason
            )
            delivery.id = await self._store.add_delivery(delivery)
            return delivery
        config = channel.config
        started = time.perf_counter()
        attempts = 0
        error = ""
        http_status: int | None = None
        status = "failed"
        while attempts < config.max_attempts:
            attempts += 1
            try:
                result = await asyncio.wait_for(
                    channel.send(notification), timeout=config.timeout_seconds * 2
                )
            except TimeoutError:
                error, retryable, http_status = "timed out", True, None
            except DeliveryError as exc:
                error, retryable, http_status = str(exc), exc.retryable, exc.http_status
                if error.startswith("refused:"):
                    status = "refused"
            else:
                status, error, http_status = "delivered", "", result.http_status
                break
            if not retryable or attempts >= config.max_attempts:
                break
            cap = min(config.backoff_max_seconds, config.backoff_seconds * 2 ** (attempts - 1))
            await self._sleep(self._rng.uniform(0, cap))
        delivery = self._delivery(
            channel,
            notification,
            status=status,
            attempts=attempts,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            http_status=http_status,
            error=error,
            finished_at=self._clock(),
        )
        delivery.id = await self._store.add_delivery(delivery)
        outcome = await self._store.record_channel_result(
            channel.name,
            ok=status == "delivered",
            error=error,
            now=self._clock(),
            disable_after=config.disable_after,
        )
        if status != "delivered":
            log.warning(
                "notification %s to channel %r %s after %d attempt(s): %s",
                notification.id,
                channel.name,
                status,
                attempts,
                error,
            )
            if not outcome.enabled and outcome.disabled_at == delivery.finished_at:
                log.error("channel %r disabled: %s", channel.name, outcome.disabled_reason)
        return delivery
