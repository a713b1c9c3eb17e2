"""The WebSocket feed: views (overview, one service, full), switching views over the
open socket, and forwarding the live state's snapshots instead of rebuilding them."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from modelmonitor.events import EventBatch, ProxyStats, encode_batch
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from tests.helpers import make_events
from tests.integration.services_support import Backends


async def feed(runtime: Runtime) -> None:
    """Two services with traffic on two routes each; wait until they are stored."""
    assert runtime.bus is not None and runtime.store is not None
    now = time.time()
    events = [
        *make_events(40, start=now - 5, spread=4, service="alpha"),
        *make_events(30, start=now - 5, spread=4, service="beta"),
    ]
    stats = ProxyStats("p", now, 0, 100, 0, 0)
    await runtime.bus.publish(encode_batch(EventBatch(stats, events)))
    for _ in range(200):
        if await runtime.store.count_events() >= len(events):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("events were not stored")


def ws_url(runtime: Runtime, query: str) -> str:
    assert runtime.api_url is not None
    return runtime.api_url.replace("http://", "ws://") + f"/ws/metrics{query}"


async def next_message(ws: Any) -> tuple[dict[str, Any], int]:
    raw = await asyncio.wait_for(ws.recv(), timeout=3)
    return json.loads(raw), len(raw)


async def test_overview_carries_what_the_overview_shows(pipeline: Runtime) -> None:
    await feed(pipeline)
    async with websockets.connect(ws_url(pipeline, "?view=overview")) as ws:
        overview, overview_size = await next_message(ws)
    async with websockets.connect(ws_url(pipeline, "")) as ws:
        full, full_size = await next_message(ws)
    assert overview["type"] == "overview" and full["type"] == "snapshot"
    services = overview["data"]["services"]
    assert [s["service"] for s in services] == ["alpha", "beta", "default"]  # default: idle
    alpha = services[0]
    assert set(alpha) == {"service", "status", "in_flight", "last_seen", "windows"}
    assert set(alpha["windows"]) == {"10s", "1m", "5m"}
    assert alpha["windows"]["5m"]["requests"] == 40
    full_alpha = full["data"]["services"][0]
    for name in ("10s", "1m", "5m"):  # the same figures as the full view (a later push)
        assert set(alpha["windows"][name]) < set(full_alpha["windows"][name])
    assert set(alpha["windows"]["1m"]) == {"rps"}
    assert alpha["windows"]["5m"] == {"requests": full_alpha["windows"]["5m"]["requests"]}
    assert {"rps", "error_rate", "p95_seconds", "status_classes"} <= set(alpha["windows"]["10s"])
    assert full_alpha["routes"], "the full view keeps the routes"
    assert overview_size < full_size / 2


async def test_one_service_view_and_switching_views_on_the_open_socket(pipeline: Runtime) -> None:
    await feed(pipeline)
    async with websockets.connect(ws_url(pipeline, "?service=beta")) as ws:
        message, _ = await next_message(ws)
        assert message["type"] == "snapshot"
        assert [s["service"] for s in message["data"]["services"]] == ["beta"]
        assert message["data"]["services"][0]["routes"]
        await ws.send(json.dumps({"type": "subscribe", "view": "overview"}))
        for _ in range(10):  # a push already under way may carry the old view
            message, _ = await next_message(ws)
            if message["type"] == "overview":
                break
        assert message["type"] == "overview"
        assert len(message["data"]["services"]) == 3
        await ws.send(json.dumps({"type": "subscribe", "view": "nonsense"}))
        for _ in range(10):
            message, _ = await next_message(ws)
            if message["type"] == "error":
                break
        assert message["type"] == "error" and "view must be one of" in message["detail"]


async def test_a_bad_view_is_refused_with_the_reason(pipeline: Runtime) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws_url(pipeline, "?view=everything")):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.services
async def test_every_replica_forwards_the_leaders_snapshots(
    backends: Backends, tmp_path: Path
) -> None:
    """Two API replicas on one Redis: their feeds carry the very snapshots the leader
    published (the same ``at``), not one each built locally."""
    replicas = []
    for index in range(2):
        settings = load_settings(
            data_dir=tmp_path / str(index),
            api="127.0.0.1:0",
            database_url=backends.database_url,
            cache_url=backends.cache_url,
            ws_interval_seconds=0.3,
            target="http://127.0.0.1:1",
        )
        replica = Runtime(settings, parts=Parts(proxy=False, worker=False, api=True))
        await replica.start()
        replicas.append(replica)
    try:
        seen: list[set[float]] = [set(), set()]

        async def listen(index: int) -> None:
            async with websockets.connect(ws_url(replicas[index], "")) as ws:
                deadline = time.monotonic() + 2.5
                while time.monotonic() < deadline:
                    message, _ = await next_message(ws)
                    seen[index].add(message["data"]["at"])

        await asyncio.gather(listen(0), listen(1))
    finally:
        for replica in replicas:
            await replica.stop()
    assert len(seen[0]) >= 3 and len(seen[1]) >= 3
    assert len(seen[0] & seen[1]) >= 3, seen
