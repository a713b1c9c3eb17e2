"""One live-state contract, every backend: windows, percentiles, proxies, the updates feed."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator

import pytest

from modelmonitor.events import EventBatch, EventIdFactory, ProxyStats, RequestEvent
from modelmonitor.live import LiveState, create_live
from modelmonitor.sketch import DEFAULT_RELATIVE_ACCURACY

BACKENDS = ["memory", "redis"]


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=BACKENDS)
def live_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def clock() -> FakeClock:
    # Real time (so Redis expiry is irrelevant), on a 10-second boundary.
    import time

    return FakeClock(math.floor(time.time() / 10) * 10 + 10.0)


@pytest.fixture
async def live(live_url: str, clock: FakeClock) -> AsyncIterator[LiveState]:
    state = create_live(live_url, clock=clock)
    await state.connect()
    try:
        yield state
    finally:
        await state.close()


_ids = EventIdFactory()


def event(
    finished: float,
    *,
    latency: float = 0.05,
    status: int = 200,
    service: str = "alpha",
    route: str = "/predict",
    method: str = "POST",
) -> RequestEvent:
    return RequestEvent(
        id=_ids(),
        start=finished - latency,
        service=service,
        method=method,
        route=route,
        path=route,
        status=status,
        latency_seconds=latency,
        ttfb_seconds=latency / 2,
        request_bytes=100,
        response_bytes=300,
    )


def batch(events: list[RequestEvent], *, proxy: str = "p1", sent_at: float = 0.0) -> EventBatch:
    stats = ProxyStats(
        proxy_id=proxy,
        sent_at=sent_at,
        buffer_size=3,
        buffer_capacity=100,
        dropped_total=1,
        captured_total=len(events),
        in_flight={"alpha": 2},
    )
    return EventBatch(stats=stats, events=events)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


async def test_windows_counts_rates_and_percentiles(live: LiveState, clock: FakeClock) -> None:
    now = clock.now
    rng = random.Random(5)
    latencies = [rng.lognormvariate(-3, 0.7) for _ in range(2000)]
    events = [
        event(now - 10 + (i % 100) / 10.0, latency=lat, status=500 if i % 20 == 0 else 200)
        for i, lat in enumerate(latencies)
    ]
    older = [event(now - 45 + i / 100, service="alpha") for i in range(300)]
    for offset in range(0, len(events), 400):  # several batches, like several workers
        await live.record(batch(events[offset : offset + 400], sent_at=now))
    await live.record(batch(older, sent_at=now))
    ten = await live.window(service="alpha", seconds=10, now=now)
    assert ten.requests == 2000
    assert ten.errors == 100
    assert ten.rps == pytest.approx(200.0)
    assert ten.error_rate == pytest.approx(0.05)
    assert ten.status_classes == {"2xx": 1900, "5xx": 100}
    assert ten.request_bytes == 200_000 and ten.response_bytes == 600_000
    assert ten.mean_seconds == pytest.approx(sum(latencies) / len(latencies))
    for q, value in ((0.5, ten.p50_seconds), (0.9, ten.p90_seconds), (0.95, ten.p95_seconds)):
        truth = exact(latencies, q)
        assert value is not None
        assert abs(value - truth) <= 2 * DEFAULT_RELATIVE_ACCURACY * truth
    minute = await live.window(service="alpha", seconds=60, now=now)
    assert minute.requests == 2300
    one = await live.window(service="alpha", seconds=1, now=now)
    assert one.requests == 200
    assert (await live.window(service="nobody", seconds=60, now=now)).requests == 0
    by_route = await live.window(service="alpha", seconds=10, route="/predict", now=now)
    assert by_route.requests == 2000


async def test_snapshot_lists_services_routes_proxies_and_ingest(
    live: LiveState, clock: FakeClock
) -> None:
    now = clock.now
    await live.record(
        batch(
            [event(now - 2, route="/a"), event(now - 2, route="/b", method="GET")]
            + [event(now - 3, service="beta", status=503) for _ in range(4)],
            proxy="p1",
            sent_at=now - 1,
        )
    )
    await live.record(batch([], proxy="p2", sent_at=now - 0.5))
    await live.record(batch([], proxy="p1", sent_at=now - 5))  # older stats lose
    clock.now = now + 1
    snapshot = await live.snapshot()
    assert [s.service for s in snapshot.services] == ["alpha", "beta"]
    alpha, beta = snapshot.services
    assert alpha.windows["10s"].requests == 2
    assert {(r.method, r.route) for r in alpha.routes} == {("POST", "/a"), ("GET", "/b")}
    assert all(r.window.requests == 1 for r in alpha.routes)
    assert alpha.status == "healthy" and beta.status == "down"
    assert alpha.in_flight == 4  # two proxies report 2 each
    assert alpha.last_seen == pytest.approx(now - 2)
    assert [p.proxy_id for p in snapshot.proxies] == ["p1", "p2"]
    assert snapshot.proxies[0].sent_at == now - 1
    assert snapshot.ingest_rate == pytest.approx(0.6)
    only = await live.snapshot(service="beta")
    assert [s.service for s in only.services] == ["beta"]


async def test_idle_after_five_minutes_and_old_proxies_forgotten(
    live: LiveState, clock: FakeClock
) -> None:
    now = clock.now
    await live.record(batch([event(now - 1)], sent_at=now))
    clock.now = now + 400
    await live.record(batch([], proxy="p9", sent_at=clock.now))  # a heartbeat
    snapshot = await live.snapshot()
    assert [s.status for s in snapshot.services] == ["idle"]
    assert snapshot.services[0].windows["5m"].requests == 0
    assert [p.proxy_id for p in snapshot.proxies] == ["p9"]


async def test_updates_feed_pushes_snapshots(live: LiveState, clock: FakeClock) -> None:
    await live.record(batch([event(clock.now - 1)], sent_at=clock.now))
    feed = live.updates(interval=0.2)
    first = await asyncio.wait_for(anext(feed), 5.0)
    second = await asyncio.wait_for(anext(feed), 5.0)
    assert first.services and first.services[0].windows["10s"].requests == 1
    assert second.at >= first.at


# Shared state across processes is what the Redis backend is for; memory:// is per process.
@pytest.mark.parametrize("live_url", ["redis"], indirect=True)
async def test_replicas_share_windows_and_the_feed(live_url: str, clock: FakeClock) -> None:
    worker_a, worker_b, api_a, api_b = (create_live(live_url, clock=clock) for _ in range(4))
    for handle in (worker_a, worker_b, api_a, api_b):
        await handle.connect()
    try:
        now = clock.now
        await asyncio.gather(
            *(
                handle.record(batch([event(now - 3) for _ in range(50)], proxy=f"p{i}"))
                for i, handle in enumerate([worker_a, worker_b] * 5)
            )
        )
        for api in (api_a, api_b):
            assert (await api.window(service="alpha", seconds=10, now=now)).requests == 500
        feeds = [api.updates(interval=0.2) for api in (api_a, api_b)]
        received = await asyncio.gather(*(asyncio.wait_for(anext(f), 5.0) for f in feeds))
        for snapshot in received:
            assert snapshot.services[0].windows["10s"].requests == 500
    finally:
        for handle in (worker_a, worker_b, api_a, api_b):
            await handle.close()


@pytest.mark.parametrize("live_url", ["redis"], indirect=True)
async def test_a_redelivered_batch_is_recorded_once(live_url: str, clock: FakeClock) -> None:
    workers = [create_live(live_url, clock=clock) for _ in range(2)]
    for handle in workers:
        await handle.connect()
    try:
        same = batch([event(clock.now - 2) for _ in range(30)], sent_at=clock.now)
        await asyncio.gather(*(handle.record(same) for handle in workers * 2))
        stats = await workers[0].window(service="alpha", seconds=10, now=clock.now)
        assert stats.requests == 30
    finally:
        for handle in workers:
            await handle.close()


async def test_a_request_counts_in_the_second_it_finishes(
    live: LiveState, clock: FakeClock
) -> None:
    clock.now += 3.6  # mid-second, mid-10-second bucket
    await live.record(batch([event(clock.now - 0.3) for _ in range(4)], sent_at=clock.now))
    snapshot = await live.snapshot(now=clock.now)
    (alpha,) = snapshot.services
    for name in ("1s", "10s", "1m", "5m"):
        assert alpha.windows[name].requests == 4, name
    assert (await live.window(service="alpha", seconds=60, now=clock.now)).requests == 4
