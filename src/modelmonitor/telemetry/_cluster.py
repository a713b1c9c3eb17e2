"""The cluster view of the request counters: every worker's counts, summed.

Each worker adds what it counted since its last flush (a delta), so the totals only
grow, whatever workers start or stop: Prometheus sees one monotonic counter per series
on the API's ``/metrics``. ``memory://`` keeps them in the process (``modelmonitor
up``); ``redis://`` keeps them in one hash that every worker increments and every API
replica reads.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec

from modelmonitor.telemetry._requests import LAYOUT, MetricsSnapshot, SeriesKey

__all__ = ["ClusterMetrics", "MemoryClusterMetrics", "RedisClusterMetrics", "create_cluster"]


class ClusterMetrics(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, delta: MetricsSnapshot) -> None:
        """Add a worker's counts since its previous ``add``."""

    async def read(self) -> MetricsSnapshot:
        """The totals over every worker, since the counters began."""


class MemoryClusterMetrics:
    def __init__(self) -> None:
        self._totals = MetricsSnapshot({})

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add(self, delta: MetricsSnapshot) -> None:
        if delta.series or delta.folded:
            self._totals = self._totals.merged(delta)

    async def read(self) -> MetricsSnapshot:
        return self._totals


_KEY = msgspec.json.Encoder()
_decode_key = msgspec.json.Decoder(tuple[str, str, str, str, str])
_SEP = "\x1f"


class RedisClusterMetrics:
    """One hash: field ``<series as JSON>\\x1f<index>`` (or ``folded\\x1f<service>``)."""

    def __init__(self, url: str) -> None:
        from modelmonitor.live.redis import split_prefix

        self._url, prefix = split_prefix(url)
        self._hash = f"{prefix}prometheus"
        self._client: Any = None

    async def connect(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(self._url, health_check_interval=10)
        await self._client.ping()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def add(self, delta: MetricsSnapshot) -> None:
        if not (delta.series or delta.folded):
            return
        pipe = self._client.pipeline(transaction=False)
        for key, values in delta.series.items():
            prefix = _KEY.encode(key).decode()
            for index, value in enumerate(values):
                if value:
                    pipe.hincrbyfloat(self._hash, f"{prefix}{_SEP}{index}", value)
        for service, count in delta.folded.items():
            pipe.hincrby(self._hash, f"folded{_SEP}{service}", count)
        await pipe.execute()

    async def read(self) -> MetricsSnapshot:
        raw: dict[bytes, bytes] = await self._client.hgetall(self._hash)
        series: dict[SeriesKey, list[float]] = {}
        folded: dict[str, int] = {}
        for field, value in raw.items():
            head, _, tail = field.decode().rpartition(_SEP)
            if head == "folded":
                folded[tail] = int(value)
                continue
            key = _decode_key.decode(head)
            vector = series.get(key)
            if vector is None:
                vector = series[key] = [0.0] * LAYOUT.size
            vector[int(tail)] = float(value)
        return MetricsSnapshot(series, folded)


def create_cluster(url: str) -> ClusterMetrics:
    """Where the cluster totals live, from the cache URL (``memory://`` or ``redis://``)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryClusterMetrics()
    if scheme in ("redis", "rediss"):
        return RedisClusterMetrics(url)
    raise ValueError(f"unsupported cache URL scheme {scheme!r}: use memory:// or redis://")
