"""Event bus: pick a backend by URL scheme (``memory://``, ``unix://``, ``amqp://``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from modelmonitor.bus.base import BusUnavailable, Delivery, EventBus

__all__ = ["BusUnavailable", "Delivery", "EventBus", "create_bus"]


def create_bus(url: str) -> EventBus:
    """Build (not connect) the bus for ``url``; the driver is imported only when used."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from modelmonitor.bus.memory import MemoryBus

        return MemoryBus(url)
    if scheme == "unix":
        from modelmonitor.bus.unix import UnixBus

        return UnixBus(url)
    if scheme in ("amqp", "amqps"):
        from modelmonitor.bus.rabbitmq import RabbitMQBus  # type: ignore[import-not-found,unused-ignore]

        bus: EventBus = RabbitMQBus(url)
        return bus
    raise ValueError(f"unsupported broker URL scheme {scheme!r}: use memory://, unix:// or amqp://")
