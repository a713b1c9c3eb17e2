"""Routes through the proxy: a hard cap per service with an ``{other}`` bucket (counted
and reported), and no email or key from a URL in a route or a recorded path."""

from __future__ import annotations

import asyncio
import random
import string

from modelmonitor.bus.memory import MemoryBus
from modelmonitor.events import decode_batch
from modelmonitor.live.memory import MemoryLiveState
from modelmonitor.proxy import Shipper
from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import (
    Request,
    running_proxy,
    running_upstream,
    wait_for_events,
)


async def ok(request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return True


async def get_all(port: int, paths: list[str]) -> None:
    """GET every path on one keep-alive connection (raw socket)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path in paths:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        async with asyncio.timeout(5):
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(2)
    writer.close()


async def test_distinct_routes_beyond_the_cap_fold_into_other() -> None:
    words = random.Random(7)
    paths = ["/r/" + "".join(words.choices(string.ascii_lowercase, k=12)) for _ in range(60)]
    bus = MemoryBus()
    await bus.connect()
    async with (
        running_upstream(ok) as upstream,
        running_proxy(
            ServiceConfig(name="svc", upstream=upstream.url), max_routes_per_service=20
        ) as (proxy, capture),
    ):
        await get_all(proxy.bound[0][1], [*paths, paths[0]])
        await wait_for_events(capture, 61)
        routes = [event.route for event in capture.snapshot()]
        assert len(set(routes[:20])) == 20 and "{other}" not in routes[:20]
        assert routes[20:60] == ["{other}"] * 40
        assert routes[60] == paths[0]  # a route seen before the cap keeps its name
        assert proxy.routes() == {"svc": (20, 40)}
        assert proxy.edge_counts() == {"routes_folded": 40}
        assert "svc: 20/20 routes, 40 requests in {other}" in proxy.health_detail()
        shipper = Shipper(
            capture, bus, proxy_id="it", flush_interval_seconds=0.02, edge=proxy.edge_counts
        )
        await shipper.start()
        await shipper.stop()
    live = MemoryLiveState()
    await live.connect()
    async for delivery in bus.consume():
        await live.record(decode_batch(delivery.body))
        await delivery.ack()
        if not bus.depth:
            break
    snapshot = await live.snapshot()
    assert snapshot.proxies[0].edge == {"routes_folded": 40}
    assert len(snapshot.services[0].routes) == 21  # 20 routes and {other}


async def test_emails_and_keys_never_reach_a_route_or_a_recorded_path() -> None:
    async with (
        running_upstream(ok) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        await get_all(
            proxy.bound[0][1],
            [
                "/users/alice@example.com/keys/sk-ABCDEF1234567890abcdef?q=1",
                "/users/bob%40example.org/orders/42",
            ],
        )
        await wait_for_events(capture, 2)
        first, second = capture.snapshot()
        assert first.route == "/users/{id}/keys/{id}"
        assert first.path == "/users/{redacted}/keys/{redacted}"
        assert second.route == "/users/{id}/orders/{id}"
        assert second.path == "/users/{redacted}/orders/42"
        # What the upstream received is untouched.
        assert upstream.requests[0].target.startswith("/users/alice@example.com/keys/sk-")
