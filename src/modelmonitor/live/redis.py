"""Redis live state (``redis://host:6379/0?prefix=modelmonitor:``), shared by every process.

Windows are the same 1-second and 10-second buckets as :mod:`.memory`, kept as
Redis hashes (one per bucket, all series in it) that workers update with
``HINCRBY`` / ``HINCRBYFLOAT``: counts, bytes, the latency sum, status classes
and the latency sketch's bins (``k:<bin>`` fields), so any number of workers
record concurrently without read-modify-write. One Lua script applies a batch's
increments atomically and only once (a marker keyed by the batch's event ids),
so a batch redelivered after a worker crash is not counted twice. Buckets
expire on their own.

``updates`` fans out through pub/sub: each interval, the replica holding a short
lease (``SET NX PX``, renewed by its holder) computes the snapshot and publishes
it; every replica subscribes and relays to its local subscribers, so all API
replicas push the same snapshots covering every proxy's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

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

__all__ = ["DEFAULT_PREFIX", "RedisLiveState", "split_prefix"]

log = logging.getLogger("modelmonitor.live.redis")

DEFAULT_PREFIX = "modelmonitor:"
_FINE_TTL = 4 * COARSE_SECONDS
_COARSE_TTL = max(WINDOWS.values()) + 6 * COARSE_SECONDS
_SEEN_TTL = 7 * 86_400
#: How long a recorded batch is remembered, to ignore its redelivery.
_RECORDED_TTL = 3600
_PROXY_STALE_SECONDS = 30.0
_SEP = "\x1f"  # between series id and field name
_PART = "\x1e"  # between the parts of a series id
_PUBLISH_DELAY = 0.02  # publish just after the second turns, when the last second is complete

_snapshot_encoder = msgspec.msgpack.Encoder()
_snapshot_decoder = msgspec.msgpack.Decoder(LiveSnapshot)
_stats_decoder = msgspec.msgpack.Decoder(ProxyStats)

# Keep the newest stats per proxy: replace only when sent_at is not older.
_PROXY_SCRIPT = """
local at = redis.call('HGET', KEYS[2], ARGV[1])
if at == false or tonumber(at) <= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
"""
# Apply one batch's increments atomically and only once. KEYS: the batch marker (so
# a redelivered batch is not counted twice), the last-seen sorted set, the ingest
# counter, then the bucket hashes. ARGV[1] is one MessagePack array (packing one
# blob is much cheaper than thousands of arguments): marker TTL, last-seen TTL,
# ingest TTL, ingest count, the flat (member, score) pairs of last-seen, then per
# bucket hash [TTL, flat (field, integer increment) pairs, flat (field, float) pairs].
_RECORD_SCRIPT = """
local data = cmsgpack.unpack(ARGV[1])
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', data[1]) then
  return 0
end
local seen = data[5]
for i = 1, #seen, 2 do
  redis.call('ZADD', KEYS[2], 'GT', seen[i + 1], seen[i])
end
if #seen > 0 then redis.call('EXPIRE', KEYS[2], data[2]) end
if data[4] > 0 then
  redis.call('INCRBY', KEYS[3], data[4]); redis.call('EXPIRE', KEYS[3], data[3])
end
local buckets = data[6]
for k = 1, #buckets do
  local key, bucket = KEYS[k + 3], buckets[k]
  local pairs = bucket[2]
  for i = 1, #pairs, 2 do
    redis.call('HINCRBY', key, pairs[i], pairs[i + 1])
  end
  local floats = bucket[3]
  for i = 1, #floats, 2 do
    redis.call('HINCRBYFLOAT', key, floats[i], floats[i + 1])
  end
  redis.call('HINCRBY', key, '#v', 1)
  redis.call('EXPIRE', key, bucket[1])
end
return 1
"""
# Take the lease when free, renew it when ours.
_LEASE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def split_prefix(url: str) -> tuple[str, str]:
    """``(url without the prefix parameter, key prefix)``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for key, value in query if key == "prefix" and value), DEFAULT_PREFIX)
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _pairs(sid: str, aggregate: Aggregate) -> tuple[list[str | int], list[str]]:
    """Flat (field, increment) pairs for HINCRBY and HINCRBYFLOAT, fields under ``sid``."""
    ints, floats = aggregate.to_fields()
    head = f"{sid}{_SEP}"
    flat: list[str | int] = []
    for name, count in ints:
        flat += [head + name, count]
    # Floats travel as text: repr keeps every digit through MessagePack and Lua.
    flat_floats: list[str] = []
    for name, value in floats:
        flat_floats += [head + name, repr(value)]
    return flat, flat_floats


class _Buckets:
    """Every series' buckets read from a set of Redis hashes."""

    def __init__(self) -> None:
        self.fine: dict[int, dict[str, Aggregate]] = {}
        self.coarse: dict[int, dict[str, Aggregate]] = {}

    def window(self, sids: Iterable[str], seconds: int, now: float) -> WindowStats:
        fine, coarse, covered = bucket_plan(seconds, now)
        wanted = list(sids)
        chosen = [
            bucket
            for start in fine
            for sid in wanted
            if (bucket := self.fine.get(start, {}).get(sid)) is not None
        ]
        chosen.extend(
            bucket
            for start in coarse
            for sid in wanted
            if (bucket := self.coarse.get(start, {}).get(sid)) is not None
        )
        return window_stats(chosen, window_seconds=seconds, covered=covered)

    def sids(self) -> set[str]:
        found: set[str] = set()
        for buckets in (*self.fine.values(), *self.coarse.values()):
            found.update(buckets)
        return found


def _service_sid(service: str) -> str:
    return f"s{_PART}{service}"


def _route_sid(service: str, method: str, route: str) -> str:
    return f"r{_PART}{service}{_PART}{method}{_PART}{route}"


class RedisLiveState:
    def __init__(self, url: str, *, clock: Clock = time.time) -> None:
        self.url = url
        self._redis_url, self.prefix = split_prefix(url)
        self._clock = clock
        self._client: Any = None
        self._instance = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(4).hex()}"
        self._broadcasts: dict[float, Broadcast[LiveSnapshot]] = {}
        self._supervisor = Supervisor("live-feed")
        self._proxy_script: Any = None
        self._lease_script: Any = None
        self._record_script: Any = None
        self._cache: dict[str, tuple[bytes | None, dict[str, Aggregate]]] = {}
        self._record_failures = 0
        self._transient: tuple[type[BaseException], ...] = (OSError,)

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("live state is not connected")
        return self._client

    async def connect(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(self._redis_url, health_check_interval=10)
        self._transient = (redis.ConnectionError, redis.TimeoutError, OSError)
        await self._client.ping()
        self._proxy_script = self._client.register_script(_PROXY_SCRIPT)
        self._lease_script = self._client.register_script(_LEASE_SCRIPT)
        self._record_script = self._client.register_script(_RECORD_SCRIPT)

    async def close(self) -> None:
        await self._supervisor.stop()
        for broadcast in self._broadcasts.values():
            await broadcast.close()
        self._broadcasts.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- writes -------------------------------------------------------------------

    async def record(self, batch: EventBatch) -> None:
        now = self._clock()
        # One aggregate per second and route, in bulk; the service series and the
        # 10-second buckets are merged from those.
        columns = Columns(batch.events)
        fine = aggregate_batch(columns, dims=("service", "method", "route"), bucket=finished_second)
        seen = last_seen_by_service(columns)
        counts: dict[tuple[str, int, str], Aggregate] = {}
        for (second, service, method, route), entry in fine.items():
            assert isinstance(second, int)
            tens = second - second % COARSE_SECONDS
            service_sid = _service_sid(str(service))
            route_sid = _route_sid(str(service), str(method), str(route))
            for target in (
                ("f", second, service_sid),
                ("f", second, route_sid),
                ("c", tens, service_sid),
                ("c", tens, route_sid),
            ):
                total = counts.get(target)
                if total is None:
                    total = counts[target] = Aggregate()
                total.merge(entry)
        keys: list[str] = [
            self._key(f"recorded:{_fingerprint(batch)}"),
            self._key("seen"),
            self._key(f"ingest:{math.floor(now)}"),
        ]
        seen_pairs: list[Any] = []
        for name, at in seen.items():
            seen_pairs += [name, repr(at)]
        buckets: list[Any] = []
        for (kind, start, sid), entry in counts.items():
            keys.append(self._key(f"{kind}:{start}"))
            ttl = _FINE_TTL if kind == "f" else _COARSE_TTL
            buckets.append([ttl, *_pairs(sid, entry)])
        data = _snapshot_encoder.encode(
            [_RECORDED_TTL, _SEEN_TTL, _FINE_TTL, len(batch.events), seen_pairs, buckets]
        )
        stats = batch.stats
        pipe = self.client.pipeline(transaction=False)
        if batch.events:
            await self._record_script(keys=keys, args=[data], client=pipe)
        await self._proxy_script(
            keys=[self._key("proxies"), self._key("proxies_at")],
            args=[stats.proxy_id, repr(stats.sent_at), _snapshot_encoder.encode(stats)],
            client=pipe,
        )
        try:
            await pipe.execute()
        except self._transient as exc:
            # Live windows are best effort: the batch is stored, and a worker must
            # keep storing while Redis is away. These events are missing from the
            # live windows (not from history).
            self._record_failures += 1
            if self._record_failures == 1 or self._record_failures % 100 == 0:
                log.warning(
                    "cannot update live windows in Redis (%d batches missed): %s",
                    self._record_failures,
                    exc,
                )
        else:
            self._record_failures = 0

    # -- reads --------------------------------------------------------------------

    async def _read(self, now: float) -> _Buckets:
        """The buckets of the longest window. Each bucket hash carries a version
        (``#v``, bumped by every record); unchanged buckets come from a local cache,
        so a snapshot only transfers and parses the buckets that changed."""
        current = math.floor(now)
        longest = max(WINDOWS.values())
        coarse_now = current - current % COARSE_SECONDS
        plan = [("f", start) for start in range(current - COARSE_SECONDS, current + 1)]
        plan += [
            ("c", coarse_now - COARSE_SECONDS * (i + 1)) for i in range(longest // COARSE_SECONDS)
        ]
        keys = [self._key(f"{kind}:{start}") for kind, start in plan]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "#v")
        versions = await pipe.execute()
        cache = self._cache
        stale = [
            key
            for key, version in zip(keys, versions, strict=True)
            if version is not None and (key not in cache or cache[key][0] != version)
        ]
        if stale:
            pipe = self.client.pipeline(transaction=False)
            for key in stale:
                pipe.hgetall(key)
            for key, mapping in zip(stale, await pipe.execute(), strict=True):
                version = mapping.get(b"#v")
                cache[key] = (version, _parse_hash(mapping))
        wanted = {key for key, version in zip(keys, versions, strict=True) if version is not None}
        for key in [key for key in cache if key not in wanted]:
            del cache[key]
        buckets = _Buckets()
        for (kind, start), key in zip(plan, keys, strict=True):
            if key in wanted:
                target = buckets.fine if kind == "f" else buckets.coarse
                target[start] = cache[key][1]
        return buckets

    async def _last_seen(self) -> dict[str, float]:
        rows = await self.client.zrange(self._key("seen"), 0, -1, withscores=True)
        return {name.decode(): float(score) for name, score in rows}

    async def _proxies(self, now: float) -> list[ProxyStats]:
        found = await self.client.hgetall(self._key("proxies"))
        fresh: list[ProxyStats] = []
        stale: list[bytes] = []
        for proxy_id, data in found.items():
            stats = _stats_decoder.decode(data)
            if now - stats.sent_at > _PROXY_STALE_SECONDS:
                stale.append(proxy_id)
            else:
                fresh.append(stats)
        if stale:
            await self.client.hdel(self._key("proxies"), *stale)
            await self.client.hdel(self._key("proxies_at"), *stale)
        fresh.sort(key=lambda stats: stats.proxy_id)
        return fresh

    async def _ingest_rate(self, now: float) -> float:
        current = math.floor(now)
        values = await self.client.mget(
            [self._key(f"ingest:{second}") for second in range(current - 10, current)]
        )
        return sum(int(value) for value in values if value is not None) / 10.0

    async def snapshot(
        self, *, service: str | None = None, now: float | None = None
    ) -> LiveSnapshot:
        now = self._clock() if now is None else now
        buckets = await self._read(now)
        last_seen = await self._last_seen()
        proxies = await self._proxies(now)
        in_flight: dict[str, int] = {}
        for stats in proxies:
            for name, count in stats.in_flight.items():
                in_flight[name] = in_flight.get(name, 0) + count
        routes: dict[str, list[tuple[str, str, str]]] = {}
        for sid in buckets.sids():
            parts = sid.split(_PART)
            if parts[0] == "r" and len(parts) == 4:
                routes.setdefault(parts[1], []).append((parts[2], parts[3], sid))
        names = [service] if service is not None else sorted(set(last_seen) | set(routes))
        services: list[ServiceLive] = []
        for name in names:
            if name not in last_seen and name not in routes:
                continue
            sid = _service_sid(name)
            windows = {
                label: buckets.window([sid], seconds, now) for label, seconds in WINDOWS.items()
            }
            seen_at = last_seen.get(name)
            services.append(
                ServiceLive(
                    service=name,
                    status=service_status(windows["1m"], last_seen=seen_at, now=now),
                    in_flight=in_flight.get(name, 0),
                    last_seen=seen_at,
                    windows=windows,
                    routes=[
                        RouteLive(
                            method=method, route=route, window=buckets.window([rsid], 60, now)
                        )
                        for method, route, rsid in sorted(routes.get(name, []))
                    ],
                )
            )
        return LiveSnapshot(
            at=now,
            services=services,
            proxies=[ProxyStatus.from_stats(stats) for stats in proxies],
            ingest_rate=await self._ingest_rate(now),
        )

    async def window(
        self, *, service: str, seconds: int, route: str | None = None, now: float | None = None
    ) -> WindowStats:
        now = self._clock() if now is None else now
        buckets = await self._read(now)
        if route is None:
            sids = [_service_sid(service)]
        else:
            prefix = f"r{_PART}{service}{_PART}"
            sids = [
                sid
                for sid in buckets.sids()
                if sid.startswith(prefix) and sid.split(_PART)[3] == route
            ]
        return buckets.window(sids, seconds, now)

    # -- the shared feed ----------------------------------------------------------

    def updates(self, *, interval: float) -> AsyncIterator[LiveSnapshot]:
        broadcast = self._broadcasts.get(interval)
        if broadcast is None:
            broadcast = self._broadcasts[interval] = Broadcast()
            self._supervisor.spawn(
                f"relay-{interval:g}s", functools.partial(self._relay, interval, broadcast)
            )
            self._supervisor.spawn(f"lead-{interval:g}s", functools.partial(self._lead, interval))
        return broadcast.subscribe()

    def _channel(self, interval: float) -> str:
        return self._key(f"snapshots:{interval:g}")

    async def _lead(self, interval: float) -> None:
        """Publish a snapshot each interval while holding the lease."""
        lease = self._key(f"lease:{interval:g}")
        ttl_ms = max(int(interval * 2500), 1000)
        channel = self._channel(interval)
        while True:
            period = interval if interval > 0 else 1.0
            await asyncio.sleep(period - self._clock() % period + _PUBLISH_DELAY)
            try:
                if await self._lease_script(keys=[lease], args=[self._instance, ttl_ms]):
                    snapshot = await self.snapshot()
                    await self.client.publish(channel, _snapshot_encoder.encode(snapshot))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down: try again next interval
                log.warning("cannot publish the live snapshot: %s", exc)

    async def _relay(self, interval: float, broadcast: Broadcast[LiveSnapshot]) -> None:
        """Relay every published snapshot to this process's subscribers."""
        channel = self._channel(interval)
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    await broadcast.publish(_snapshot_decoder.decode(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - resubscribe after a Redis outage
                log.warning("live feed subscription lost, resubscribing: %s", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def _fingerprint(batch: EventBatch) -> str:
    """Identifies a batch by its event ids: a redelivered or re-published batch matches."""
    joined = "\0".join([event.id for event in batch.events]).encode()
    return hashlib.blake2b(joined, digest_size=16).hexdigest()


def _parse_hash(mapping: dict[bytes, bytes]) -> dict[str, Aggregate]:
    grouped: dict[str, dict[str, float]] = {}
    for raw_field, raw_value in mapping.items():
        if raw_field == b"#v":
            continue
        sid, _, name = raw_field.decode().partition(_SEP)
        grouped.setdefault(sid, {})[name] = float(raw_value)
    return {sid: Aggregate.from_fields(fields) for sid, fields in grouped.items()}
