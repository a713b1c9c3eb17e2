"""One producer, many subscribers: every subscriber sees the latest value once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

__all__ = ["Broadcast"]

T = TypeVar("T")


class Broadcast(Generic[T]):
    """Latest-value fan-out. Slow subscribers skip values instead of queueing them."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._version = 0
        self._changed = asyncio.Condition()
        self._closed = False

    async def publish(self, value: T) -> None:
        async with self._changed:
            self._value = value
            self._version += 1
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def subscribe(self) -> AsyncIterator[T]:
        seen = self._version
        while True:
            async with self._changed:
                while not self._closed and self._version == seen:
                    await self._changed.wait()
                if self._closed:
                    return
                seen = self._version
                value = self._value
            assert value is not None
            yield value
