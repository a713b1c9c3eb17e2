"""The event-by-event aggregation the worker used before the bulk Aggregate: the
baseline that ``bench/pipeline.py`` measures worker CPU against, in the same run.

Copied from the code it replaced (``live/windows.py`` ``Bucket``, ``live/redis.py``
``_Counts``, ``pipeline/rollup.py``); each legacy class overrides only the
aggregation step of today's backend, so everything else (SQL, Redis scripts,
decoding) is the same in both measurements. Not used by the product.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

from modelmonitor.aggregate import Aggregate
from modelmonitor.events import EventBatch, RequestEvent
from modelmonitor.live.memory import MemoryLiveState, _Series
from modelmonitor.live.redis import _SEP, RedisLiveState, _route_sid, _service_sid
from modelmonitor.live.windows import COARSE_SECONDS
from modelmonitor.sketch import LatencySketch
from modelmonitor.storage.base import ROLLUP_SECONDS, RollupRow
from modelmonitor.storage.postgres import _KEYS, PostgresStore
from modelmonitor.storage.rollups import ROLLUP_COLUMNS, rollup_from_row, rollup_values
from modelmonitor.storage.sqlite import SQLiteStore

__all__ = [
    "LegacyMemoryLiveState",
    "LegacyPostgresStore",
    "LegacyRedisLiveState",
    "LegacySQLiteStore",
]


class Bucket:
    """The old per-event accumulator of the live windows."""

    __slots__ = (
        "errors",
        "latency_sum",
        "request_bytes",
        "requests",
        "response_bytes",
        "sketch",
        "status_classes",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.request_bytes = 0
        self.response_bytes = 0
        self.latency_sum = 0.0
        self.status_classes: dict[str, int] = {}
        self.sketch = LatencySketch()

    def add(self, event: RequestEvent) -> None:
        self.requests += 1
        if event.is_error:
            self.errors += 1
        self.request_bytes += event.request_bytes
        self.response_bytes += event.response_bytes
        self.latency_sum += event.latency_seconds
        status_class = event.status_class
        self.status_classes[status_class] = self.status_classes.get(status_class, 0) + 1
        self.sketch.add(event.latency_seconds)

    def to_aggregate(self) -> Aggregate:
        """Per group, not per event: what today's series merge."""
        aggregate = Aggregate()
        aggregate.requests = self.requests
        aggregate.errors = self.errors
        aggregate.request_bytes = self.request_bytes
        aggregate.response_bytes = self.response_bytes
        aggregate.status_classes = self.status_classes
        aggregate.latency = self.sketch
        return aggregate


class LegacyMemoryLiveState(MemoryLiveState):
    async def record(self, batch: EventBatch) -> None:
        now = self._clock()
        previous = self._proxies.get(batch.stats.proxy_id)
        if previous is None or previous.sent_at <= batch.stats.sent_at:
            self._proxies[batch.stats.proxy_id] = batch.stats
        groups: dict[tuple[str, str, str, int], Bucket] = {}
        latest: dict[tuple[str, str, str, int], float] = {}
        for event in batch.events:
            finished = event.start + event.latency_seconds
            key = (event.service, event.method, event.route, math.floor(finished))
            bucket = groups.get(key)
            if bucket is None:
                bucket = groups[key] = Bucket()
                latest[key] = finished
            elif finished > latest[key]:
                latest[key] = finished
            bucket.add(event)
        for key, bucket in groups.items():
            service, method, route, second = key
            series = self._services.get(service)
            if series is None:
                series = self._services[service] = _Series()
                self._routes[service] = {}
            aggregate = bucket.to_aggregate()
            series.add(second, aggregate, latest[key])
            route_series = self._routes[service].get((method, route))
            if route_series is None:
                route_series = self._routes[service][(method, route)] = _Series()
            route_series.add(second, aggregate, latest[key])
        if batch.events:
            second = math.floor(now)
            self._ingest[second] = self._ingest.get(second, 0) + len(batch.events)
        if now - self._last_prune >= 1.0:
            self._prune(now)


class _Counts:
    """The old per-event accumulator of the Redis live windows."""

    __slots__ = ("bytes_in", "bytes_out", "classes", "errors", "latency", "requests", "sketch")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.latency = 0.0
        self.classes: dict[str, int] = {}
        self.sketch = LatencySketch()

    def merge(self, other: _Counts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.latency += other.latency
        for name, count in other.classes.items():
            self.classes[name] = self.classes.get(name, 0) + count
        self.sketch.merge(other.sketch)

    def pairs(self, sid: str) -> tuple[list[str | int], list[str]]:
        head = f"{sid}{_SEP}"
        flat: list[str | int] = [
            f"{head}n",
            self.requests,
            f"{head}e",
            self.errors,
            f"{head}qb",
            self.bytes_in,
            f"{head}rb",
            self.bytes_out,
        ]
        zero = self.sketch.count - sum(self.sketch.bins.values())
        if zero:
            flat += [f"{head}kz", zero]
        for name, count in self.classes.items():
            flat += [f"{head}c:{name}", count]
        for key, count in self.sketch.bins.items():
            flat += [f"{head}k:{key}", count]
        return flat, [f"{head}ks", repr(self.latency)]


class LegacyRedisLiveState(RedisLiveState):
    async def record(self, batch: EventBatch) -> None:
        from modelmonitor.live import redis as module

        now = self._clock()
        fine: dict[tuple[int, str, str, str], _Counts] = {}
        seen: dict[str, float] = {}
        classes: dict[int, str] = {}
        floor = math.floor
        for event in batch.events:  # the old hot loop
            latency = event.latency_seconds
            finished = event.start + latency
            key = (floor(finished), event.service, event.method, event.route)
            entry = fine.get(key)
            if entry is None:
                entry = fine[key] = _Counts()
            entry.requests += 1
            status = event.status
            if status >= 500 or event.error:
                entry.errors += 1
            entry.bytes_in += event.request_bytes
            entry.bytes_out += event.response_bytes
            entry.latency += latency
            status_class = classes.get(status)
            if status_class is None:
                status_class = classes[status] = event.status_class
            entry.classes[status_class] = entry.classes.get(status_class, 0) + 1
            entry.sketch.add(latency)
            if finished > seen.get(event.service, 0.0):
                seen[event.service] = finished
        counts: dict[tuple[str, int, str], _Counts] = {}
        for (second, service, method, route), entry in fine.items():
            tens = second - second % COARSE_SECONDS
            for target in (
                ("f", second, _service_sid(service)),
                ("f", second, _route_sid(service, method, route)),
                ("c", tens, _service_sid(service)),
                ("c", tens, _route_sid(service, method, route)),
            ):
                total = counts.get(target)
                if total is None:
                    total = counts[target] = _Counts()
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
            ttl = module._FINE_TTL if kind == "f" else module._COARSE_TTL
            buckets.append([ttl, *entry.pairs(sid)])
        data = module._snapshot_encoder.encode(
            [
                module._RECORDED_TTL,
                module._SEEN_TTL,
                module._FINE_TTL,
                len(batch.events),
                seen_pairs,
                buckets,
            ]
        )
        pipe = self.client.pipeline(transaction=False)
        if batch.events:
            await self._record_script(keys=keys, args=[data], client=pipe)
        await pipe.execute()


def _fingerprint(batch: EventBatch) -> str:
    joined = "\0".join([event.id for event in batch.events]).encode()
    return hashlib.blake2b(joined, digest_size=16).hexdigest()


def _legacy_rollups(events: Iterable[RequestEvent]) -> dict[tuple[float, str, str, str], RollupRow]:
    """The old ``pipeline/rollup.py`` ``aggregate``."""
    rows: dict[tuple[float, str, str, str], RollupRow] = {}
    sketches: dict[tuple[float, str, str, str], LatencySketch] = {}
    for event in events:
        bucket = math.floor(event.start / ROLLUP_SECONDS) * ROLLUP_SECONDS
        key = (float(bucket), event.service, event.method, event.route)
        row = rows.get(key)
        if row is None:
            row = rows[key] = RollupRow(
                bucket=float(bucket),
                service=event.service,
                method=event.method,
                route=event.route,
                requests=0,
                errors=0,
                status_classes={},
                request_bytes=0,
                response_bytes=0,
                latency_sum_seconds=0.0,
                latency_sketch=b"",
            )
            sketches[key] = LatencySketch()
        row.requests += 1
        if event.is_error:
            row.errors += 1
        status_class = event.status_class
        row.status_classes[status_class] = row.status_classes.get(status_class, 0) + 1
        row.request_bytes += event.request_bytes
        row.response_bytes += event.response_bytes
        row.latency_sum_seconds += event.latency_seconds
        sketches[key].add(event.latency_seconds)
    for key, row in rows.items():
        row.latency_sketch = sketches[key].to_bytes()
    return rows


def _legacy_merge(existing: RollupRow, new: RollupRow) -> RollupRow:
    sketch = LatencySketch.from_bytes(existing.latency_sketch)
    sketch.merge(LatencySketch.from_bytes(new.latency_sketch))
    classes = dict(existing.status_classes)
    for name, count in new.status_classes.items():
        classes[name] = classes.get(name, 0) + count
    return RollupRow(
        bucket=existing.bucket,
        service=existing.service,
        method=existing.method,
        route=existing.route,
        requests=existing.requests + new.requests,
        errors=existing.errors + new.errors,
        status_classes=classes,
        request_bytes=existing.request_bytes + new.request_bytes,
        response_bytes=existing.response_bytes + new.response_bytes,
        latency_sum_seconds=existing.latency_sum_seconds + new.latency_sum_seconds,
        latency_sketch=sketch.to_bytes(),
    )


class LegacySQLiteStore(SQLiteStore):
    @staticmethod
    def _update_rollups(db: Any, events: Sequence[RequestEvent]) -> None:
        columns = ", ".join(ROLLUP_COLUMNS)
        marks = ",".join("?" * len(ROLLUP_COLUMNS))
        for key, row in _legacy_rollups(events).items():
            found = db.execute(
                f"SELECT {columns} FROM rollups"
                " WHERE bucket = ? AND service = ? AND method = ? AND route = ?",
                key,
            ).fetchone()
            merged = _legacy_merge(rollup_from_row(found), row) if found else row
            db.execute(
                f"INSERT OR REPLACE INTO rollups ({columns}) VALUES ({marks})",
                rollup_values(merged),
            )


class LegacyPostgresStore(PostgresStore):
    @staticmethod
    async def _update_rollups(connection: Any, events: Sequence[RequestEvent]) -> None:
        new = _legacy_rollups(events)
        keys = sorted(new, key=lambda key: (key[1], key[0], key[2], key[3]))
        columns = tuple([key[i] for key in keys] for i in range(4))
        await connection.execute(
            f"INSERT INTO rollups ({', '.join(ROLLUP_COLUMNS)})"
            " SELECT bucket, service, method, route, 0, 0, '{}', 0, 0, 0, ''::bytea, ''::bytea"
            f" FROM {_KEYS} ORDER BY service, bucket, method, route"
            " ON CONFLICT (service, bucket, method, route) DO NOTHING",
            *columns,
        )
        existing = await connection.fetch(
            f"SELECT {', '.join('r.' + c for c in ROLLUP_COLUMNS)}"
            f" FROM rollups r JOIN {_KEYS} USING (bucket, service, method, route)"
            " ORDER BY r.service, r.bucket, r.method, r.route FOR UPDATE OF r",
            *columns,
        )
        merged = []
        for found in existing:
            current = rollup_from_row(found)
            row = new[(current.bucket, current.service, current.method, current.route)]
            merged.append(_legacy_merge(current, row) if current.requests else row)
        await connection.executemany(
            "UPDATE rollups SET requests = $5, errors = $6, status_classes = $7::jsonb,"
            " request_bytes = $8, response_bytes = $9, latency_sum_seconds = $10,"
            " latency_sketch = $11, measures = $12"
            " WHERE bucket = $1 AND service = $2 AND method = $3 AND route = $4",
            [rollup_values(row) for row in merged],
        )
