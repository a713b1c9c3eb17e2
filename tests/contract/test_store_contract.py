"""One event-store contract, every backend: idempotency, rollups, queries, retention."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator

import msgspec
import pytest

from modelmonitor.events import EventIdFactory, RequestEvent
from modelmonitor.sketch import DEFAULT_RELATIVE_ACCURACY, LatencySketch
from modelmonitor.storage import EventStore, RequestFilter, create_store

BACKENDS = ["sqlite", "postgresql"]
BASE = 1_795_000_020.0  # a fixed minute-aligned-ish instant (Nov 2026)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    store = create_store(store_url)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()


def make_events(
    n: int, *, start: float = BASE, spread: float = 180.0, seed: int = 1
) -> list[RequestEvent]:
    rng = random.Random(seed)
    ids = EventIdFactory()
    events = []
    for i in range(n):
        service = "alpha" if i % 3 else "beta"
        route = "/v1/predict" if i % 2 else "/v1/models/{id}"
        method = "POST" if i % 2 else "GET"
        status = rng.choice([200, 200, 200, 201, 404, 500, 503, 0])
        events.append(
            RequestEvent(
                id=ids(),
                start=start + rng.random() * spread,
                service=service,
                method=method,
                route=route,
                path=route.replace("{id}", str(i)),
                status=status,
                latency_seconds=rng.lognormvariate(-3.0, 0.8),
                ttfb_seconds=0.001,
                request_bytes=rng.randint(10, 1000),
                response_bytes=rng.randint(10, 5000),
                error="upstream_connect" if status == 0 else "",
                model="m1" if i % 4 else "",
                client="127.0.0.1",
                consumer=f"team-{i % 3}" if i % 5 else "",
                model_version=str(i % 2 + 1) if i % 4 else "",
                protocol="openai" if i % 4 else "",
                task="chat" if i % 4 else "",
                prompt_tokens=rng.randint(0, 4000) if i % 4 else 0,
                completion_tokens=rng.randint(0, 900) if i % 4 else 0,
                tokens_estimated=i % 8 == 1,
                ttft_seconds=rng.random() / 10 if i % 4 else 0.0,
                finish_reason=rng.choice(["stop", "length", ""]) if i % 4 else "",
                streamed=i % 2 == 1,
                cost_usd=rng.random() / 100 if i % 4 else 0.0,
            )
        )
    return events


async def test_same_batch_twice_is_counted_once(store: EventStore) -> None:
    events = make_events(500)
    assert await store.write_batch(events) == 500
    assert await store.write_batch(events) == 0
    assert await store.write_batch(events[:10] + events[:10]) == 0
    assert await store.count_events() == 500
    rows = await store.rollups(start=0, end=BASE * 2)
    assert sum(row.requests for row in rows) == 500
    assert sum(s.requests for s in await store.services()) == 500


async def test_duplicates_inside_a_batch_count_once(store: EventStore) -> None:
    events = make_events(50)
    assert await store.write_batch(events + events[:20]) == 50
    assert await store.count_events() == 50


async def test_concurrent_writers_store_a_redelivered_batch_once(store_url: str) -> None:
    stores = [create_store(store_url) for _ in range(3)]
    if store_url.startswith("sqlite"):
        stores = stores[:1]  # SQLite is one writer per process
    for handle in stores:
        await handle.connect()
    try:
        events = make_events(3000, seed=7)
        halves = [events[:2000], events[1000:], events]
        results = await asyncio.gather(
            *(stores[i % len(stores)].write_batch(batch) for i, batch in enumerate(halves))
        )
        assert sum(results) == 3000
        assert await stores[0].count_events() == 3000
        rows = await stores[0].rollups(start=0, end=BASE * 2)
        assert sum(row.requests for row in rows) == 3000
    finally:
        for handle in stores:
            await handle.close()


async def test_rollup_counts_and_percentiles_match_exact(store: EventStore) -> None:
    events = make_events(4000, seed=3)
    for offset in range(0, len(events), 700):  # several batches merge into the same rows
        await store.write_batch(events[offset : offset + 700])
    rows = await store.rollups(start=0, end=BASE * 2, service="alpha")
    assert rows == sorted(rows, key=lambda row: row.bucket)
    expected: dict[tuple[float, str, str], list[RequestEvent]] = {}
    for event in events:
        if event.service == "alpha":
            bucket = math.floor(event.start / 60) * 60.0
            expected.setdefault((bucket, event.method, event.route), []).append(event)
    assert {(r.bucket, r.method, r.route) for r in rows} == set(expected)
    merged = LatencySketch()
    for row in rows:
        group = expected[(row.bucket, row.method, row.route)]
        assert row.requests == len(group)
        assert row.errors == sum(e.is_error for e in group)
        assert row.request_bytes == sum(e.request_bytes for e in group)
        assert row.response_bytes == sum(e.response_bytes for e in group)
        assert row.latency_sum_seconds == pytest.approx(sum(e.latency_seconds for e in group))
        classes: dict[str, int] = {}
        for e in group:
            classes[e.status_class] = classes.get(e.status_class, 0) + 1
        assert row.status_classes == classes
        merged.merge(LatencySketch.from_bytes(row.latency_sketch))
    exact = sorted(e.latency_seconds for e in events if e.service == "alpha")
    for q in (0.5, 0.9, 0.95, 0.99):
        truth = exact[math.floor(q * (len(exact) - 1))]
        estimate = merged.quantile(q)
        assert estimate is not None
        assert abs(estimate - truth) <= DEFAULT_RELATIVE_ACCURACY * truth * 1.0001
    by_route = await store.rollups(start=0, end=BASE * 2, service="alpha", route="/v1/predict")
    assert by_route and all(row.route == "/v1/predict" for row in by_route)
    windowed = await store.rollups(start=BASE + 60, end=BASE + 120)
    assert windowed and all(BASE + 60 <= row.bucket < BASE + 120 for row in windowed)


async def test_services_summary(store: EventStore) -> None:
    events = make_events(300)
    await store.write_batch(events)
    summaries = {s.name: s for s in await store.services()}
    assert set(summaries) == {"alpha", "beta"}
    for name, summary in summaries.items():
        mine = [e for e in events if e.service == name]
        assert summary.requests == len(mine)
        assert summary.first_seen == min(e.start for e in mine)
        assert summary.last_seen == max(e.start for e in mine)
    assert await store.count_events(service="beta") == summaries["beta"].requests


def _key(event: RequestEvent) -> tuple[float, str]:
    return (event.start, event.id)


async def test_recent_requests_cursor_walks_everything_newest_first(store: EventStore) -> None:
    events = make_events(230)
    # Two events with the same start: the id breaks the tie.
    events.append(msgspec.structs.replace(events[0], id=events[0].id + "z"))
    await store.write_batch(events)
    walked: list[RequestEvent] = []
    before = None
    while True:
        page = await store.recent_requests(RequestFilter(limit=50, before=before))
        walked.extend(page)
        if len(page) < 50:
            break
        before = _key(page[-1])
    assert walked == sorted(events, key=_key, reverse=True)


async def test_recent_requests_filters(store: EventStore) -> None:
    events = make_events(400)
    await store.write_batch(events)

    async def check(query: RequestFilter, keep: object) -> None:
        expected = sorted((e for e in events if keep(e)), key=_key, reverse=True)  # type: ignore[operator]
        found = await store.recent_requests(query)
        assert found == expected[: query.limit]

    await check(RequestFilter(service="beta", limit=1000), lambda e: e.service == "beta")
    await check(
        RequestFilter(route="/v1/predict", method="POST", limit=1000),
        lambda e: e.route == "/v1/predict" and e.method == "POST",
    )
    await check(RequestFilter(model="m1", limit=1000), lambda e: e.model == "m1")
    await check(
        RequestFilter(consumer="team-2", service="alpha", limit=1000),
        lambda e: e.consumer == "team-2" and e.service == "alpha",
    )
    await check(RequestFilter(status_class="5xx", limit=1000), lambda e: 500 <= e.status < 600)
    await check(RequestFilter(status_class="err", limit=1000), lambda e: e.status == 0)
    await check(RequestFilter(errors_only=True, limit=1000), lambda e: e.is_error)
    await check(
        RequestFilter(min_latency_seconds=0.08, limit=1000), lambda e: e.latency_seconds >= 0.08
    )
    await check(
        RequestFilter(start=BASE + 30, end=BASE + 90, limit=1000),
        lambda e: BASE + 30 <= e.start < BASE + 90,
    )
    await check(RequestFilter(limit=7), lambda e: True)


async def test_retention_deletes_old_events_and_rollups(store: EventStore) -> None:
    day = 86_400.0
    old = make_events(300, start=BASE - 3 * day, spread=2 * day, seed=11)
    recent = make_events(200, start=BASE, spread=600, seed=12)
    await store.write_batch(old)
    await store.write_batch(recent)
    cutoff = BASE - 0.5 * day
    raw, rolled = await store.delete_before(raw_before=cutoff, rollups_before=cutoff)
    assert raw == 300
    assert rolled > 0
    assert await store.count_events() == 200
    assert all(row.bucket >= cutoff for row in await store.rollups(start=0, end=BASE * 2))
    assert sum(r.requests for r in await store.rollups(start=0, end=BASE * 2)) == 200
    # Writing after retention still works (partitions are recreated as needed).
    assert await store.write_batch(make_events(10, start=BASE - 2 * day, seed=13)) == 10


async def test_model_rollups_count_each_model_and_consumer_once(store: EventStore) -> None:
    events = make_events(900, seed=21)
    await store.write_batch(events[:600])
    await store.write_batch(events[300:])  # half redelivered
    rows = await store.model_rollups(start=0, end=BASE * 2, service="alpha")
    named = [e for e in events if e.service == "alpha" and (e.model or e.consumer)]
    found: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        aggregate = row.aggregate()
        totals = found.setdefault((row.model, row.consumer), [0, 0, 0])
        totals[0] += aggregate.requests
        totals[1] += aggregate.completion_tokens
        totals[2] += aggregate.errors
    expected: dict[tuple[str, str], list[int]] = {}
    for event in named:
        totals = expected.setdefault((event.model, event.consumer), [0, 0, 0])
        totals[0] += 1
        totals[1] += event.completion_tokens
        totals[2] += int(event.is_error)
    assert found == expected
    only = await store.model_rollups(start=0, end=BASE * 2, service="alpha", consumer="team-1")
    assert {row.consumer for row in only} == {"team-1"}
    await store.delete_before(raw_before=BASE * 2, rollups_before=BASE * 2)
    assert await store.model_rollups(start=0, end=BASE * 2, service="alpha") == []
