"""Pipeline benchmark: ingest throughput and freshness, embedded and production.

(a) embedded: memory bus -> worker -> SQLite with rollups and memory live windows.
(b) production: RabbitMQ -> N worker processes -> PostgreSQL with rollups (and
    Redis live windows), from the first publish to the last committed row.
(c) freshness: a request finished -> visible in ``/api/v1/metrics/realtime`` and
    on ``/ws/metrics`` of an API process fed by a worker process; p50/p95.
(d) worker CPU per event, bulk aggregation against the event-by-event baseline
    (``bench/legacy_aggregation.py``) in the same run: the worker's whole
    ``handle`` (decode, store with rollups, live windows) on SQLite + memory and
    on PostgreSQL + Redis, and the aggregation step alone.

Every phase uses its own database, vhost and Redis prefix on 127.0.0.1 and
removes them afterwards; every loop is bounded in time. Prints one
``PASS``/``FAIL`` line per target. ``python bench/pipeline.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from modelmonitor.bus import BusUnavailable, create_bus
from modelmonitor.events import EventBatch, EventIdFactory, ProxyStats, RequestEvent, encode_batch

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
AMQP = "amqp://guest:guest@127.0.0.1:5672"

EMBEDDED_TARGET = 20_000
PRODUCTION_TARGET = 50_000
FRESHNESS_TARGET = 1.0
#: The WebSocket pushes a snapshot every ``ws_interval_seconds`` (1 s by default): a
#: request waits for the next push, so its target is one interval plus pipeline slack.
WS_INTERVAL = 1.0
WS_FRESHNESS_TARGET = WS_INTERVAL + 0.1


def make_events(
    ids: EventIdFactory, n: int, rng: random.Random, *, service: str | None = None
) -> list[RequestEvent]:
    now = time.time()
    events = []
    for i in range(n):
        latency = rng.lognormvariate(-3.0, 0.6)
        route = "/v1/predict" if i % 3 else "/v1/models/{name}"
        events.append(
            RequestEvent(
                id=ids(),
                start=now - latency,
                service=service or ("alpha" if i % 2 else "beta"),
                method="POST",
                route=route,
                path=route,
                status=500 if rng.random() < 0.02 else 200,
                latency_seconds=latency,
                ttfb_seconds=latency / 2,
                request_bytes=200,
                response_bytes=800,
                model="m1",
                client="127.0.0.1",
            )
        )
    return events


def encode(events: list[RequestEvent], proxy: str = "bench") -> bytes:
    stats = ProxyStats(
        proxy_id=proxy,
        sent_at=time.time(),
        buffer_size=0,
        buffer_capacity=100_000,
        dropped_total=0,
        captured_total=0,
    )
    return encode_batch(EventBatch(stats=stats, events=events))


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.asynccontextmanager
async def isolated() -> AsyncIterator[tuple[str, str, str]]:
    """A fresh database, vhost and Redis prefix: (database_url, broker_url, cache_url)."""
    import asyncpg
    import redis.asyncio as redis

    token = uuid.uuid4().hex[:10]
    database, vhost, prefix = f"modelmonitor_bench_{token}", f"mmbench_{token}", f"mmbench:{token}:"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    await asyncio.to_thread(rabbitmqctl, "add_vhost", vhost)
    await asyncio.to_thread(rabbitmqctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield (
            f"postgresql://postgres@127.0.0.1:5432/{database}",
            f"{AMQP}/{vhost}",
            f"{REDIS}?prefix={prefix}",
        )
    finally:
        await asyncio.to_thread(rabbitmqctl, "delete_vhost", vhost)
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        client = redis.Redis.from_url(REDIS)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


# -- (a) embedded -------------------------------------------------------------------


async def bench_embedded(total: int, batch: int) -> float:
    from modelmonitor.bus.memory import MemoryBus
    from modelmonitor.live.memory import MemoryLiveState
    from modelmonitor.pipeline.worker import Worker
    from modelmonitor.storage.sqlite import SQLiteStore

    rng = random.Random(1)
    ids = EventIdFactory()
    bodies = [encode(make_events(ids, batch, rng)) for _ in range(total // batch)]
    with tempfile.TemporaryDirectory() as folder:
        bus = MemoryBus(max_messages=len(bodies) + 1)
        store = SQLiteStore(f"sqlite:///{folder}/bench.db")
        live = MemoryLiveState()
        await bus.connect()
        await store.connect()
        worker = Worker(bus=bus, store=store, live=live)
        await worker.start()
        started = time.perf_counter()
        for body in bodies:
            await bus.publish(body)
        await asyncio.wait_for(bus.join(), timeout=300)
        elapsed = time.perf_counter() - started
        stored = await store.count_events()
        await worker.stop()
        await live.close()
        await store.close()
        await bus.close()
    assert stored == len(bodies) * batch, (stored, len(bodies) * batch)
    return stored / elapsed


# -- (b) production -----------------------------------------------------------------


def spawn(
    args: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "modelmonitor", *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MODELMONITOR_LOG_LEVEL": "warning", **(env or {})},
        )


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def publish_all(broker: str, bodies: list[bytes], concurrency: int = 4) -> None:
    bus = create_bus(broker)
    await bus.connect()
    queue = list(reversed(bodies))

    async def publisher() -> None:
        while queue:
            body = queue.pop()
            for _ in range(100):
                try:
                    await bus.publish(body)
                    break
                except BusUnavailable:
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(publisher() for _ in range(concurrency)))
    await bus.close()


async def stored_total(connection: Any) -> int:
    return int(await connection.fetchval("SELECT coalesce(sum(requests), 0) FROM services"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_of(name: str) -> list[int]:
    found = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


class CpuShare:
    """CPU seconds used per group of processes between two samples."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.start = {name: sum(map(cpu_seconds, pids)) for name, pids in groups.items()}

    def used(self) -> dict[str, float]:
        return {
            name: sum(map(cpu_seconds, pids)) - self.start[name]
            for name, pids in self.groups.items()
        }


async def bench_production(
    total: int, batch: int, workers: int, logs: Path
) -> tuple[float, list[float], int, dict[str, float]]:
    import asyncpg

    rng = random.Random(2)
    ids = EventIdFactory()
    bodies = [encode(make_events(ids, batch, rng)) for _ in range(total // batch)]
    expected = len(bodies) * batch
    async with isolated() as (database, broker, cache):
        broker += "?queue=bench.events"
        upgrade = spawn(["db", "upgrade", "--database", database], logs / "upgrade.log")
        await asyncio.to_thread(upgrade.wait, 60)
        common = ["--broker", broker, "--database", database, "--cache", cache]
        procs = [spawn(["worker", *common], logs / f"prod-worker{i}.log") for i in range(workers)]
        try:
            connection = await asyncpg.connect(database)
            try:
                # Let the workers connect (their queue declaration is idempotent).
                await publish_all(broker, [encode([])])
                deadline = time.monotonic() + 30
                async with asyncio.timeout(60):  # every worker connected to the database
                    while True:
                        backends = [
                            int(row[0])
                            for row in await connection.fetch(
                                "SELECT pid FROM pg_stat_activity"
                                " WHERE (datname = current_database() AND pid <> pg_backend_pid())"
                                " OR backend_type IN ('walwriter', 'checkpointer',"
                                " 'background writer')"
                            )
                        ]
                        if len(backends) >= workers + 3:
                            break
                        await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)
                cpu = CpuShare(
                    {
                        "workers": [proc.pid for proc in procs],
                        "postgres": backends,
                        "rabbitmq": pids_of("beam.smp"),
                        "redis": pids_of("redis-server"),
                        "publisher": [os.getpid()],
                    }
                )
                started = time.perf_counter()
                publishing = asyncio.create_task(publish_all(broker, bodies))
                peak: list[float] = [0.0] * workers
                while await stored_total(connection) < expected:
                    if time.monotonic() > deadline + 300:
                        raise TimeoutError("production ingest did not finish in time")
                    for i, proc in enumerate(procs):
                        peak[i] = max(peak[i], rss_mb(proc.pid))
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
                used = cpu.used()
                await publishing
                rolled = int(await connection.fetchval("SELECT sum(requests) FROM rollups"))
                stored = int(await connection.fetchval("SELECT count(*) FROM events"))
            finally:
                await connection.close()
        finally:
            stop(procs)
    assert stored == expected and rolled == expected, (stored, rolled, expected)
    return expected / elapsed, peak, expected, used


# -- (c) freshness ------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def bench_freshness(
    probes: int, logs: Path
) -> tuple[list[float], list[float], dict[str, float]]:
    import httpx
    import websockets

    async with isolated() as (database, broker, cache):
        broker += "?queue=fresh.events"
        upgrade = spawn(["db", "upgrade", "--database", database], logs / "upgrade.log")
        await asyncio.to_thread(upgrade.wait, 60)
        port = free_port()
        common = ["--database", database, "--cache", cache]
        worker = spawn(["worker", "--broker", broker, *common], logs / "fresh-worker.log")
        api = spawn(["api", "--api", f"127.0.0.1:{port}", *common], logs / "fresh-api.log")
        url = f"http://127.0.0.1:{port}"
        finished: dict[str, float] = {}
        seen_rest: dict[str, float] = {}
        seen_ws: dict[str, float] = {}
        memory: dict[str, float] = {}
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                for _ in range(300):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{url}/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
                bus = create_bus(broker)
                await bus.connect()
                rng = random.Random(3)
                ids = EventIdFactory()

                def visible(snapshot: dict[str, Any], into: dict[str, float]) -> None:
                    now = time.time()
                    for entry in snapshot["services"]:
                        name = entry["service"]
                        fresh = name in finished and name not in into
                        if fresh and entry["windows"]["1m"]["requests"] > 0:
                            into[name] = now

                async def listen() -> None:
                    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/metrics") as ws:
                        async for message in ws:
                            visible(json.loads(message)["data"], seen_ws)

                async def poll() -> None:
                    while True:
                        response = await client.get(f"{url}/api/v1/metrics/realtime")
                        visible(response.json(), seen_rest)
                        await asyncio.sleep(0.02)

                watchers = [asyncio.create_task(listen()), asyncio.create_task(poll())]
                await asyncio.sleep(1.5)
                for i in range(probes):
                    # Background traffic plus one probe service per round; its single
                    # event "finishes" now, as a proxy would ship it.
                    name = f"probe-{i}"
                    events = make_events(ids, 200, rng)
                    events += make_events(ids, 1, rng, service=name)
                    finished[name] = events[-1].start + events[-1].latency_seconds
                    await bus.publish(encode(events, proxy="fresh"))
                    await asyncio.sleep(0.1 + rng.random() * 0.25)  # spread over the second
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if len(seen_rest) >= probes and len(seen_ws) >= probes:
                        break
                    await asyncio.sleep(0.05)
                memory = {"api": rss_mb(api.pid), "worker": rss_mb(worker.pid)}
                for task in watchers:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                await bus.close()
        finally:
            stop([worker, api])
    rest = [seen_rest[name] - at for name, at in finished.items() if name in seen_rest]
    ws = [seen_ws[name] - at for name, at in finished.items() if name in seen_ws]
    missing = probes - min(len(rest), len(ws))
    if missing:
        print(f"freshness: {missing} probe(s) never became visible", flush=True)
    return rest, ws, memory


# -- (d) worker CPU per event --------------------------------------------------------


class _Delivery:
    """A delivery handed straight to ``Worker.handle`` (no broker in this measurement)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def ack(self) -> None:
        return None

    async def reject(self, *, requeue: bool = True) -> None:
        return None


async def _handle_cpu(store: Any, live: Any, bodies: list[bytes], events: int) -> float:
    """Process CPU (every thread: SQLite writes on its own) per event, in microseconds."""
    from modelmonitor.bus.memory import MemoryBus
    from modelmonitor.pipeline.worker import Worker

    worker = Worker(bus=MemoryBus(), store=store, live=live)
    started = time.process_time()
    for body in bodies:
        await worker.handle(_Delivery(body))
    return (time.process_time() - started) / events * 1e6


async def bench_worker_cpu(
    total: int, batch: int, rounds: int = 3
) -> dict[str, tuple[float, float]]:
    """``{setup: (baseline us/event, bulk us/event)}``, the best of ``rounds`` each."""
    import legacy_aggregation as legacy
    from modelmonitor.live.memory import MemoryLiveState
    from modelmonitor.live.redis import RedisLiveState
    from modelmonitor.storage.postgres import PostgresStore
    from modelmonitor.storage.sqlite import SQLiteStore

    rng = random.Random(4)
    results: dict[str, tuple[float, float]] = {}

    def batches() -> tuple[list[bytes], int]:
        ids = EventIdFactory()  # fresh ids: every run stores new events
        bodies = [encode(make_events(ids, batch, rng)) for _ in range(total // batch)]
        return bodies, len(bodies) * batch

    best: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            for name, store_type, live_type in (
                ("baseline", legacy.LegacySQLiteStore, legacy.LegacyMemoryLiveState),
                ("bulk", SQLiteStore, MemoryLiveState),
            ):
                store = store_type(f"sqlite:///{folder}/{name}{round_}.db")
                live = live_type()
                await store.connect()
                bodies, count = batches()
                best.setdefault(f"sqlite+memory/{name}", []).append(
                    await _handle_cpu(store, live, bodies, count)
                )
                await live.close()
                await store.close()
    async with isolated() as (database, _, cache):
        for round_ in range(rounds):
            for name, store_type, live_type in (
                ("baseline", legacy.LegacyPostgresStore, legacy.LegacyRedisLiveState),
                ("bulk", PostgresStore, RedisLiveState),
            ):
                store = store_type(database)
                live = live_type(cache.replace("?prefix=", f"?prefix={name}{round_}"))
                await store.connect()
                await live.connect()
                bodies, count = batches()
                best.setdefault(f"postgresql+redis/{name}", []).append(
                    await _handle_cpu(store, live, bodies, count)
                )
                await live.close()
                await store.close()
    for setup in ("sqlite+memory", "postgresql+redis"):
        results[setup] = (min(best[f"{setup}/baseline"]), min(best[f"{setup}/bulk"]))
    return results


def aggregation_cpu(total: int, batch: int, rounds: int = 3) -> tuple[float, float]:
    """The aggregation step alone (rollups and live windows of a batch), us per event."""
    import legacy_aggregation as legacy
    from modelmonitor.aggregate import Columns, aggregate_batch, finished_second
    from modelmonitor.storage.rollups import aggregate_rollups

    rng = random.Random(5)
    ids = EventIdFactory()
    data = [make_events(ids, batch, rng) for _ in range(total // batch)]
    count = len(data) * batch

    def baseline() -> None:
        for events in data:
            legacy._legacy_rollups(events)
            groups: dict[tuple[str, str, str, int], legacy.Bucket] = {}
            for event in events:
                key = (
                    event.service,
                    event.method,
                    event.route,
                    math.floor(event.start + event.latency_seconds),
                )
                bucket = groups.get(key)
                if bucket is None:
                    bucket = groups[key] = legacy.Bucket()
                bucket.add(event)

    def bulk() -> None:
        for events in data:
            aggregate_rollups(events)
            aggregate_batch(
                Columns(events), dims=("service", "method", "route"), bucket=finished_second
            )

    timings: dict[str, list[float]] = {"baseline": [], "bulk": []}
    for _ in range(rounds):
        for name, run in (("baseline", baseline), ("bulk", bulk)):
            started = time.process_time()
            run()
            timings[name].append((time.process_time() - started) / count * 1e6)
    return min(timings["baseline"]), min(timings["bulk"])


# -- main ---------------------------------------------------------------------------


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedded-events", type=int, default=200_000)
    parser.add_argument("--production-events", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=3, help="worker processes for (b)")
    parser.add_argument("--probes", type=int, default=40, help="freshness probes for (c)")
    parser.add_argument("--cpu-events", type=int, default=60_000, help="events per run of (d)")
    parser.add_argument(
        "--cpu-batch", type=int, default=2_000, help="events per batch in (d) (the shipper's)"
    )
    parser.add_argument("--only", choices=["embedded", "production", "freshness", "cpu"])
    args = parser.parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="modelmonitor-bench-"))
    failed = False
    print(
        f"pipeline bench on {os.cpu_count()} CPUs, load average {load_average()};"
        f" process logs in {logs}",
        flush=True,
    )

    if args.only in (None, "embedded"):
        rate = await bench_embedded(args.embedded_events, 2_000)
        ok = rate >= EMBEDDED_TARGET
        failed |= not ok
        print(
            f"(a) embedded memory bus -> SQLite + rollups + live: {rate:,.0f} events/s"
            f" (target >= {EMBEDDED_TARGET:,}) {verdict(ok)}"
            f"  [bench process RSS {rss_mb(os.getpid()):.0f} MB]",
            flush=True,
        )
    if args.only in (None, "production"):
        rate, peaks, count, used = await bench_production(
            args.production_events, args.batch, args.workers, logs
        )
        ok = rate >= PRODUCTION_TARGET
        failed |= not ok
        memory = ", ".join(f"{peak:.0f}" for peak in peaks)
        print(
            f"(b) RabbitMQ -> {args.workers} workers -> PostgreSQL + rollups + Redis live:"
            f" {rate:,.0f} events/s over {count:,} events, batches of {args.batch:,}"
            f" (target >= {PRODUCTION_TARGET:,}) {verdict(ok)}  [worker peak RSS MB: {memory}]",
            flush=True,
        )
        per_event = {name: seconds / count * 1e6 for name, seconds in used.items()}
        total_us = sum(per_event.values())
        shares = ", ".join(f"{name} {us:.1f}" for name, us in per_event.items())
        cores = os.cpu_count() or 1
        print(
            f"(b) CPU per event (us): {shares}; total {total_us:.1f} us ->"
            f" {cores} dedicated cores would sustain ~{cores / total_us * 1e6:,.0f} events/s"
            " (RabbitMQ and Redis figures include other tenants of those servers)",
            flush=True,
        )
    if args.only in (None, "freshness"):
        rest, ws, memory = await bench_freshness(args.probes, logs)
        for label, values, target in (
            ("REST /api/v1/metrics/realtime", rest, FRESHNESS_TARGET),
            (f"WebSocket /ws/metrics ({WS_INTERVAL:g} s pushes)", ws, WS_FRESHNESS_TARGET),
        ):
            if not values:
                failed = True
                print(f"(c) freshness {label}: no probe became visible FAIL", flush=True)
                continue
            p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
            ok = p95 <= target
            failed |= not ok
            print(
                f"(c) freshness finished -> visible on {label}: p50 {p50:.3f} s,"
                f" p95 {p95:.3f} s, max {max(values):.3f} s over {len(values)} probes"
                f" (target p95 <= {target:.1f} s) {verdict(ok)}",
                flush=True,
            )
        print(
            f"(c) RSS: api {memory.get('api', float('nan')):.0f} MB,"
            f" worker {memory.get('worker', float('nan')):.0f} MB",
            flush=True,
        )
    if args.only in (None, "cpu"):
        for setup, (before, after) in (
            await bench_worker_cpu(args.cpu_events, args.cpu_batch)
        ).items():
            print(
                f"(d) worker CPU per event, {setup}, batches of {args.cpu_batch:,}:"
                f" event-by-event {before:.2f} us -> bulk {after:.2f} us"
                f" ({after / before:.2f}x, target <= 0.50x) {verdict(after <= before / 2)}",
                flush=True,
            )
        for size in (args.cpu_batch, 100):
            before, after = aggregation_cpu(args.cpu_events, size)
            print(
                f"(d) aggregation step alone (rollups + live windows), batches of {size:,}:"
                f" event-by-event {before:.2f} us -> bulk {after:.2f} us per event"
                f" ({after / before:.2f}x)",
                flush=True,
            )
    print(f"pipeline bench done, load average {load_average()}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
