"""Publish EventBatch messages exactly like a proxy does, retrying on BusUnavailable.

``python publisher.py URL COUNT --batch N --duration S --proxy ID``. Prints
``progress <sent>`` lines and finally ``done <sent> <retries>``. At-least-once:
a batch whose publish failed is sent again (the store deduplicates by id).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from modelmonitor.bus import BusUnavailable, create_bus
from modelmonitor.events import EventBatch, EventIdFactory, ProxyStats, RequestEvent, encode_batch


def make_batch(ids: EventIdFactory, size: int, proxy: str, sent: int, rng: random.Random) -> bytes:
    now = time.time()
    events = []
    for _ in range(size):
        latency = rng.lognormvariate(-3.0, 0.6)
        status = 500 if rng.random() < 0.02 else 200
        route = rng.choice(["/v1/predict", "/v1/models/{name}"])
        events.append(
            RequestEvent(
                id=ids(),
                start=now - latency,
                service=rng.choice(["alpha", "beta"]),
                method="POST",
                route=route,
                path=route.replace("{name}", "m1"),
                status=status,
                latency_seconds=latency,
                ttfb_seconds=latency / 2,
                request_bytes=200,
                response_bytes=800,
                model="m1",
                client="127.0.0.1",
            )
        )
    stats = ProxyStats(
        proxy_id=proxy,
        sent_at=now,
        buffer_size=0,
        buffer_capacity=100_000,
        dropped_total=0,
        captured_total=sent + size,
        in_flight={},
    )
    return encode_batch(EventBatch(stats=stats, events=events))


async def publish(url: str, count: int, batch: int, duration: float, proxy: str) -> None:
    bus = create_bus(url)
    deadline = time.monotonic() + 60
    while True:
        try:
            await bus.connect()
            break
        except BusUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    ids = EventIdFactory()
    rng = random.Random(proxy)
    sent = retries = 0
    started = time.monotonic()
    give_up = started + duration + 120
    while sent < count:
        size = min(batch, count - sent)
        body = make_batch(ids, size, proxy, sent, rng)
        while True:
            try:
                await bus.publish(body)
                break
            except BusUnavailable:
                retries += 1
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.2)
        sent += size
        print(f"progress {sent}", flush=True)
        pace = started + duration * sent / count - time.monotonic()
        if pace > 0:
            await asyncio.sleep(pace)
    await bus.close()
    print(f"done {sent} {retries}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--proxy", default="publisher")
    args = parser.parse_args()
    asyncio.run(publish(args.url, args.count, args.batch, args.duration, args.proxy))


if __name__ == "__main__":
    main()
