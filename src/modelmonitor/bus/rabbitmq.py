"""RabbitMQ bus (``amqp://user:pass@host:5672/vhost?queue=name``) on aio-pika.

One durable queue (``?queue=``, default ``modelmonitor.events``), persistent
messages and publisher confirms: ``publish`` returns once the broker has the
message, and raises :class:`BusUnavailable` while the broker is unreachable.
The connection is robust: after a broker restart it reconnects, restores the
channels and resumes every consumer. Consumers compete for the queue, each with
its own channel and prefetch window; unacked messages go back to the queue when
a consumer dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.bus.base import BusUnavailable

__all__ = ["DEFAULT_QUEUE", "RabbitMQBus", "split_queue"]

log = logging.getLogger("modelmonitor.bus.rabbitmq")

DEFAULT_QUEUE = "modelmonitor.events"


def split_queue(url: str) -> tuple[str, str]:
    """``(url without the queue parameter, queue name)``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    queue = next((value for key, value in query if key == "queue" and value), DEFAULT_QUEUE)
    rest = urlencode([(key, value) for key, value in query if key != "queue"])
    return urlunsplit(parts._replace(query=rest)), queue


class _AmqpDelivery:
    """One received message; ack and reject never raise (a lost channel means redelivery)."""

    __slots__ = ("_message", "body")

    def __init__(self, message: Any) -> None:
        self._message = message
        self.body: bytes = message.body

    async def ack(self) -> None:
        try:
            await self._message.ack()
        except Exception as exc:  # noqa: BLE001 - the broker redelivers it
            log.debug("ack failed, the message will be redelivered: %s", exc)

    async def reject(self, *, requeue: bool = True) -> None:
        try:
            await self._message.reject(requeue=requeue)
        except Exception as exc:  # noqa: BLE001 - the broker redelivers it
            log.debug("reject failed, the message will be redelivered: %s", exc)


_CLOSED = object()


class RabbitMQBus:
    """A durable RabbitMQ queue with confirmed publishing and competing consumers."""

    def __init__(
        self, url: str, *, publish_timeout: float = 10.0, retry_seconds: float = 1.0
    ) -> None:
        self.url = url
        self._amqp_url, self.queue_name = split_queue(url)
        self._publish_timeout = publish_timeout
        self._retry_seconds = retry_seconds
        self._ready = asyncio.Event()
        self._connector: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._channel: Any = None
        self._up = False
        self._closing = False
        self._consumers: list[asyncio.Queue[object]] = []

    @property
    def connected(self) -> bool:
        connection = self._connection
        return (
            self._up
            and connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
        )

    async def connect(self) -> None:
        """Connect; when the broker is unreachable, keep trying in the background
        (``connected`` stays false, ``publish`` raises, ``consume`` waits). Refused
        credentials or a missing vhost fail at once."""
        import aio_pika.exceptions as errors

        try:
            await self._open()
        except (errors.ProbableAuthenticationError, errors.AuthenticationError) as exc:
            raise BusUnavailable(f"RabbitMQ refused the credentials: {exc}") from exc
        except (ConnectionError, OSError, errors.AMQPConnectionError, TimeoutError) as exc:
            log.warning("RabbitMQ is unreachable (%s); connecting in the background", exc)
            self._connector = asyncio.create_task(self._keep_connecting())
        except Exception as exc:  # e.g. a missing vhost: a configuration error
            raise BusUnavailable(f"RabbitMQ refused the connection: {exc!r}") from exc

    async def _open(self) -> None:
        import aio_pika

        connection = await aio_pika.connect_robust(
            self._amqp_url, reconnect_interval=self._retry_seconds, timeout=10
        )
        try:
            self._channel = await connection.channel(publisher_confirms=True)
            await self._declare(self._channel)
        except BaseException:
            await connection.close()
            raise
        connection.close_callbacks.add(self._on_close)
        connection.reconnect_callbacks.add(self._on_reconnect)
        self._connection = connection
        self._up = True
        self._ready.set()

    async def _keep_connecting(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._retry_seconds)
            try:
                await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying until closed
                log.debug("RabbitMQ still unreachable: %s", exc)
            else:
                log.info("connected to RabbitMQ")
                return

    async def _declare(self, channel: Any) -> Any:
        return await channel.declare_queue(self.queue_name, durable=True)

    def _on_close(self, *_: Any) -> None:
        if self._up and not self._closing:
            log.warning("lost the connection to RabbitMQ; reconnecting")
        self._up = False

    def _on_reconnect(self, *_: Any) -> None:
        log.info("reconnected to RabbitMQ")
        self._up = True

    async def close(self) -> None:
        self._closing = True
        self._up = False
        await cancel_and_wait([self._connector])
        self._connector = None
        self._ready.set()  # wake consumers still waiting for a first connection
        for queue in self._consumers:
            queue.put_nowait(_CLOSED)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None

    async def publish(self, body: bytes) -> None:
        import aio_pika

        if not self.connected or self._channel is None:
            raise BusUnavailable("RabbitMQ is not connected")
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._channel.default_exchange.publish(message, routing_key=self.queue_name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Disconnects, timeouts and nacks (DeliveryError) alike: not taken.
            raise BusUnavailable(f"RabbitMQ did not confirm the message: {exc!r}") from exc

    async def consume(self, *, prefetch: int = 16) -> AsyncIterator[_AmqpDelivery]:
        await self._ready.wait()
        if self._connection is None or self._closing:
            return
        inbox: asyncio.Queue[object] = asyncio.Queue()
        self._consumers.append(inbox)
        channel = await self._connection.channel()
        try:
            await channel.set_qos(prefetch_count=prefetch)
            queue = await self._declare(channel)
            await queue.consume(inbox.put, no_ack=False)
            while True:
                item = await inbox.get()
                if item is _CLOSED:
                    return
                yield _AmqpDelivery(item)
        finally:
            self._consumers.remove(inbox)
            with contextlib.suppress(Exception):
                await channel.close()
