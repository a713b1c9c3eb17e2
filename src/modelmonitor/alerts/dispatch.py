"""Delivery: an outbox in the alert store, one bounded queue and sender task per channel.

``enqueue`` stores the notification as a ``pending`` delivery (the outbox row) and
puts it on the channel's queue without waiting for the channel, so a slow or
failing channel delays neither evaluation nor the other channels. The sender
tries it, retrying retryable errors with exponential backoff and full jitter,
and replaces the row with the outcome. The process sending a delivery holds a
claim on it; a delivery whose claim ran out (its process died, or the queue was
full) is taken over by whichever process claims it first, so notifications are
not lost to a crash or a burst. The channel's consecutive-failure count (also in
the store, shared by every process) disables it after ``disable_after`` failures.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.alerts.channels import resolve_channels
from modelmonitor.alerts.channels.base import ChannelConfig, DeliveryError, NotificationChannel
from modelmonitor.alerts.models import AlertNotice, Delivery, Notification
from modelmonitor.alerts.rules import RuleBase
from modelmonitor.alerts.silences import Silence
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
        recover_every_seconds: float = 15.0,
    ) -> None:
        self.channels = channels
        #: (channel, outcome) -> deliveries finished with that outcome, for Prometheus.
        self.outcomes: dict[tuple[str, str], int] = {}
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._recover_every = recover_every_seconds
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        #: channel name -> its sender task.
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._refreshing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for name, channel in self.channels.items():
            self._open(name, channel)
        self._tasks.append(asyncio.create_task(self._recover_loop(), name="alerts-recover"))
        self._running = True

    def _open(self, name: str, channel: NotificationChannel[Any]) -> None:
        queue: asyncio.Queue[Delivery] = asyncio.Queue(channel.config.queue_size)
        self._queues[name] = queue
        self._senders[name] = asyncio.create_task(self._run(name, queue), name=f"alerts-{name}")

    async def put_channel(self, channel: NotificationChannel[Any]) -> None:
        """Add a channel, or replace the one with its name, while running (channels
        configured at run time); queued deliveries go to the new one."""
        previous = self.channels.get(channel.name)
        self.channels[channel.name] = channel
        if self._running and channel.name not in self._senders:
            self._open(channel.name, channel)
        if previous is not None and previous is not channel:
            await previous.close()

    async def remove_channel(self, name: str) -> None:
        """Stop sending to a channel; its unsent deliveries stay pending in the store."""
        channel = self.channels.pop(name, None)
        sender = self._senders.pop(name, None)
        self._queues.pop(name, None)
        if sender is not None:
            await cancel_and_wait([sender])
        if channel is not None:
            await channel.close()

    async def stop(self) -> None:
        """Stop sending; unfinished deliveries stay pending for the next claimer."""
        self._running = False
        await cancel_and_wait([*self._tasks, *self._senders.values(), *self._refreshing])
        self._tasks.clear()
        self._senders.clear()
        self._refreshing.clear()
        self._queues.clear()
        for channel in self.channels.values():
            await channel.close()

    def lease_seconds(self, channel: NotificationChannel[Any]) -> float:
        """Long enough for every attempt and backoff of one delivery."""
        config: ChannelConfig = channel.config
        per_attempt = 2 * config.timeout_seconds + config.backoff_max_seconds
        return config.max_attempts * per_attempt + 60.0

    def outbox_row(self, channel_name: str, notification: Notification) -> Delivery | None:
        """The pending delivery (outbox row) for a notification to a channel, claimed by
        this process; None for an unknown channel."""
        channel = self.channels.get(channel_name)
        if channel is None:
            log.warning("notification for unknown channel %r not sent", channel_name)
            return None
        delivery = self._delivery(
            channel,
            notification,
            status="pending",
            claimed_until=self._clock() + self.lease_seconds(channel),
        )
        delivery.notification = notification
        return delivery

    async def queue(self, delivery: Delivery) -> None:
        """Hand a stored pending delivery to its channel's sender without waiting. A full
        queue releases the claim so that :meth:`recover` picks it up when there is room."""
        queue = self._queues.get(delivery.channel)
        try:
            if queue is None:
                raise asyncio.QueueFull
            queue.put_nowait(delivery)
        except asyncio.QueueFull:
            log.warning(
                "channel %r is backed up; notification %s deferred",
                delivery.channel,
                delivery.notification_id,
            )
            delivery.claimed_until = self._clock()
            await self._store.update_delivery(delivery)

    async def enqueue(self, channel_name: str, notification: Notification) -> Delivery | None:
        """Store a notification as a pending delivery and queue it (the engine stores
        outbox rows together with the state change instead, then calls :meth:`queue`)."""
        delivery = self.outbox_row(channel_name, notification)
        if delivery is None:
            return None
        delivery.id = await self._store.add_delivery(delivery)
        await self.queue(delivery)
        return delivery

    def external_silences(self, now: float) -> list[Silence]:
        """Silences held by the channels' receivers (Alertmanager) to respect too."""
        return [silence for channel in self.channels.values() for silence in channel.silences(now)]

    def refresh_due(self, now: float) -> bool:
        return any(channel.refresh_due(now) for channel in self.channels.values())

    def refresh(self, firing: list[tuple[RuleBase, AlertNotice]]) -> None:
        """Hand the alerts still firing to the channels that re-post them (Alertmanager),
        each its own routed share, without waiting for them."""
        now = self._clock()
        types = {name: channel.type for name, channel in self.channels.items()}
        for name, channel in self.channels.items():
            if not channel.refresh_due(now):
                continue
            notices = [
                notice for rule, notice in firing if name in resolve_channels(rule.channels, types)
            ]
            task = asyncio.create_task(channel.refresh(notices), name=f"alerts-refresh-{name}")
            self._refreshing.add(task)
            task.add_done_callback(self._refreshing.discard)

    async def recover(self) -> int:
        """Claim pending deliveries nobody holds (crashed senders, full queues) into the
        queues that have room; returns how many."""
        taken = 0
        for name, queue in self._queues.items():
            room = queue.maxsize - queue.qsize()
            if room <= 0:
                continue
            now = self._clock()
            claimed = await self._store.claim_deliveries(
                channel=name,
                now=now,
                until=now + self.lease_seconds(self.channels[name]),
                limit=room,
            )
            for delivery in claimed:
                queue.put_nowait(delivery)
            taken += len(claimed)
        return taken

    async def _recover_loop(self) -> None:
        while True:
            try:
                if await self.recover():
                    log.info("took over pending notifications")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store may be down; retry next round
                log.warning("recovering pending notifications failed: %s", exc)
            await asyncio.sleep(self._recover_every)

    async def idle(self) -> None:
        """Wait until every queued delivery has been handled (tests, shutdown)."""
        for queue in self._queues.values():
            await queue.join()

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

    async def _run(self, name: str, queue: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await queue.get()
            # Looked up per delivery: a channel changed at run time sends to its new target.
            channel = self.channels.get(name)
            try:
                if channel is not None:
                    await self._send(channel, delivery)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not kill the sender task (logged)
                log.exception("delivery to channel %r failed unexpectedly", name)
            finally:
                queue.task_done()

    async def deliver(
        self, channel: NotificationChannel[Any], notification: Notification
    ) -> Delivery:
        """Send now, in this task (test notifications); the outcome is logged."""
        delivery = self._delivery(channel, notification, status="pending")
        delivery.notification = notification
        return await self._send(channel, delivery)

    async def _send(self, channel: NotificationChannel[Any], delivery: Delivery) -> Delivery:
        """Try a delivery, store the outcome, count the channel's failures."""
        notification = delivery.notification
        assert notification is not None
        statuses = {status.name: status for status in await self._store.channel_statuses()}
        current = statuses.get(channel.name)
        if current is not None and not current.enabled:
            delivery.status = "skipped"
            delivery.error = current.disabled_reason
            delivery.finished_at = self._clock()
            delivery.notification = None
            await self._save(delivery)
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
        delivery.status = status
        delivery.attempts = attempts
        delivery.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        delivery.http_status = http_status
        delivery.error = error
        delivery.finished_at = self._clock()
        delivery.notification = None  # sent or given up: the log keeps the outcome only
        await self._save(delivery)
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
            if not outcome.enabled and outcome.disabled_at == outcome.last_failure_at:
                log.error("channel %r disabled: %s", channel.name, outcome.disabled_reason)
        return delivery

    async def _save(self, delivery: Delivery) -> None:
        if delivery.finished_at is not None:
            key = (delivery.channel, delivery.status)
            self.outcomes[key] = self.outcomes.get(key, 0) + 1
        if delivery.id is None:
            delivery.id = await self._store.add_delivery(delivery)
        else:
            await self._store.update_delivery(delivery)
