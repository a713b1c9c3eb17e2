"""The event bus contract: batch-based, at-least-once.

Publishers hand over encoded :class:`~modelmonitor.events.EventBatch` bodies;
``publish`` returns once the bus has taken responsibility (a broker confirm).
Consumers receive :class:`Delivery` objects and ``ack`` only after the store
committed, so a worker that dies mid-batch gets its batch redelivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

__all__ = ["BusUnavailable", "Delivery", "EventBus"]


class BusUnavailable(Exception):
    """The bus cannot take a message now (disconnected, closed, refused)."""


@runtime_checkable
class Delivery(Protocol):
    body: bytes

    async def ack(self) -> None: ...

    async def reject(self, *, requeue: bool = True) -> None: ...


@runtime_checkable
class EventBus(Protocol):
    url: str

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, body: bytes) -> None:
        """Hand one message to the bus; raises :class:`BusUnavailable`."""
        ...

    def consume(self, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        """Deliveries until the bus closes; competing consumers share the stream."""
        ...
