"""WebSocket fan-out: many dashboard clients each receiving the 1 s live update.

A child process runs the worker and API (embedded backends) and feeds synthetic
traffic for 50 services; this process opens N WebSocket clients on /ws/metrics
and measures, for every message, the delay between the snapshot's ``at`` time
and its arrival. Target: p95 delivery delay <= 1 s with 1,000 clients.

It then measures, in the same run, the bytes per client per second of each feed
view: ``full`` (every service with every window and route: what every dashboard
received before the views existed), ``overview`` (what the overview page
subscribes to) and ``service`` (what a service page subscribes to).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time

import websockets

from _servers import free_port, rss_mib, spawn_python, wait_http

SERVER = r"""
import asyncio, sys, time, random
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from modelmonitor.events import EventBatch, EventIdFactory, ProxyStats, RequestEvent, encode_batch

async def main(port, data_dir, services, interval):
    settings = load_settings(
        api=f"127.0.0.1:{port}", data_dir=data_dir, ws_interval_seconds=interval
    )
    runtime = Runtime(settings, parts=Parts(proxy=False))
    await runtime.start()
    ids = EventIdFactory()
    rng = random.Random(1)
    while True:
        now = time.time()
        events = [
            RequestEvent(ids(), now - rng.random() * 0.2, f"model-{i % services:02d}", "POST",
                         "/predict", "/predict", 200 if rng.random() > 0.02 else 500,
                         rng.lognormvariate(-4, 0.5), 0.001, 100, 200)
            for i in range(200)
        ]
        stats = ProxyStats("bench", now, 0, 1000, 0, 0)
        await runtime.bus.publish(encode_batch(EventBatch(stats, events)))
        await asyncio.sleep(0.1)

import uvloop
uvloop.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"""


sizes = [0]


async def client(url: str, delays: list[float], stop_at: float, connected: list[int]) -> None:
    async with websockets.connect(url, max_size=None, open_timeout=60, compression=None) as ws:
        connected[0] += 1
        while time.time() < stop_at:
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=max(0.1, stop_at - time.time()))
            except TimeoutError:
                break
            arrived = time.time()
            sizes[0] = len(message)
            # Only the snapshot time is needed; a full parse would make this process the bottleneck.
            head = message[: message.index(",", message.index('"at":'))]
            at = float(head.rsplit(":", 1)[1])
            delays.append(arrived - at)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(q * (len(ordered) - 1)))]


async def byte_rate(url: str, seconds: float) -> float:
    """Bytes per second one client of ``url`` receives."""
    received = 0
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await asyncio.wait_for(ws.recv(), timeout=10)  # start at a push
        started = time.monotonic()
        while (left := seconds - (time.monotonic() - started)) > 0:
            try:
                received += len(await asyncio.wait_for(ws.recv(), timeout=left))
            except TimeoutError:
                break
    return received / seconds


async def view_rates(base: str, seconds: float) -> dict[str, float]:
    """Bytes per client per second of each view, three clients each, at once."""
    views = {"full": "", "overview": "?view=overview", "service": "?service=model-07"}
    rates = await asyncio.gather(
        *(byte_rate(base + query, seconds) for query in views.values() for _ in range(3))
    )
    return {name: sum(rates[i * 3 : i * 3 + 3]) / 3 for i, name in enumerate(views)}


async def run(clients: int, seconds: float, services: int, interval: float, view: str) -> int:
    port = free_port()
    measured = 0.0
    with tempfile.TemporaryDirectory() as data_dir:
        server = spawn_python(SERVER, str(port), data_dir, str(services), str(interval))
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            base = f"ws://127.0.0.1:{port}/ws/metrics"
            url = base + ("" if view == "full" else f"?view={view}")
            delays: list[float] = []
            connected = [0]
            warmup = 5.0
            stop_at = time.time() + warmup + seconds + clients / 50
            tasks = []
            for _ in range(clients):
                tasks.append(asyncio.create_task(client(url, delays, stop_at, connected)))
                await asyncio.sleep(0.002)
            while connected[0] < clients and time.time() < stop_at:  # noqa: ASYNC110 - bounded poll
                await asyncio.sleep(0.1)
            delays.clear()  # measure only once everyone is connected
            measured = max(0.0, stop_at - time.time())
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                print(f"  {len(failures)} clients failed, e.g. {failures[0]!r}")
            server_rss = rss_mib(server.pid)
            rates = await view_rates(base, min(seconds, 10.0))
        finally:
            server.terminate()
            server.wait(10)
    if not delays:
        print("FAIL: no messages received")
        return 1
    p50, p95, p99 = (percentile(delays, q) for q in (0.5, 0.95, 0.99))
    expected = connected[0] * measured / interval
    print(
        f"ws fan-out: {connected[0]}/{clients} clients of the {view} view, {services} services,"
        f" push every {interval:g} s"
    )
    print(f"  message size: {sizes[0] / 1024:.1f} KiB")
    print(
        f"  messages received: {len(delays)}"
        f" (about {expected:.0f} expected, one per {interval:g} s)"
    )
    print(
        f"  delivery delay p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms,"
        f" p99 {p99 * 1000:.0f} ms"
    )
    print(f"  API process RSS: {server_rss:.0f} MiB")
    ok = p95 <= 1.0 and connected[0] == clients and len(delays) >= 0.9 * expected
    print(f"  target p95 <= 1000 ms with every client served: {'PASS' if ok else 'FAIL'}")
    before = rates["full"]
    print(
        f"  bytes per client per second at {services} services: before (full snapshot)"
        f" {before / 1024:.1f} KiB/s; overview {rates['overview'] / 1024:.1f} KiB/s"
        f" ({rates['overview'] / before:.2f}x); one service {rates['service'] / 1024:.1f} KiB/s"
        f" ({rates['service'] / before:.2f}x)"
    )
    print(
        f"  1,000 dashboards on the overview: {rates['overview'] * 1000 / 2**20:.1f} MiB/s"
        f" instead of {before * 1000 / 2**20:.1f} MiB/s"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument(
        "--interval", type=float, default=None, help="push interval (default: the setting's)"
    )
    parser.add_argument(
        "--view",
        choices=["overview", "full"],
        default="overview",
        help="the view the fan-out clients subscribe to (dashboards: overview)",
    )
    args = parser.parse_args()
    from modelmonitor.settings import Settings

    interval = args.interval or Settings.model_fields["ws_interval_seconds"].default
    return asyncio.run(run(args.clients, args.seconds, args.services, interval, args.view))


if __name__ == "__main__":
    sys.exit(main())
