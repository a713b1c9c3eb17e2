"""One event-store contract, every backend: idempotency, rollups, queries, retention."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator

import msgspec
import pytest

from modelmonitor.aggregate import Aggregate
from modelmonitor.events import EventIdFactory, RequestEvent
from modelmonitor.query.history import choose_step, load_series
from modelmonitor.sketch import DEFAULT_RELATIVE_ACCURACY, LatencySketch
from modelmonitor.storage import EventStore, RequestFilter, RollupTier, create_store
from modelmonitor.storage.rollups import downsample

BACKENDS = ["sqlite", "postgresql", "timescaledb"]
_FIXTURES = {"sqlite": "sqlite_url", "postgresql": "postgres_url", "timescaledb": "timescale_url"}
BASE = 1_795_000_020.0  # a fixed minute-aligned-ish instant (Nov 2026)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(_FIXTURES[request.param]))


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


async def test_hour_and_day_tiers_hold_the_minute_rows_summed(store: EventStore) -> None:
    day = 86_400.0
    events = make_events(3000, start=BASE - 2 * day, spread=2.5 * day, seed=21)
    for offset in range(0, len(events), 1000):
        await store.write_batch(events[offset : offset + 1000])
    minutes = await store.rollups(start=0, end=BASE * 2)
    for tier in (RollupTier.HOUR, RollupTier.DAY):
        rows = await store.rollups(start=0, end=BASE * 2, tier=tier)
        assert rows == sorted(rows, key=lambda row: row.bucket)
        assert all(row.bucket % tier == 0 for row in rows)
        expected = downsample(minutes, seconds=tier)
        assert {(r.bucket, r.service, r.method, r.route) for r in rows} == set(expected)
        for row in rows:
            want = expected[(row.bucket, row.service, row.method, row.route)]
            mine = row.aggregate()
            assert (mine.requests, mine.errors, mine.status_classes) == (
                want.requests,
                want.errors,
                want.status_classes,
            )
            assert (mine.request_bytes, mine.response_bytes) == (
                want.request_bytes,
                want.response_bytes,
            )
            assert mine.latency.total == pytest.approx(want.latency.total)
            assert mine.latency.count == want.latency.count
            assert mine.latency.quantiles([0.5, 0.99]) == pytest.approx(
                want.latency.quantiles([0.5, 0.99])
            )
    # Every measure, language-model ones included, reaches every tier.
    reasons: dict[str, int] = {}
    for event in events:
        if event.finish_reason:
            reasons[event.finish_reason] = reasons.get(event.finish_reason, 0) + 1
    for tier in RollupTier:
        total = Aggregate.total(
            row.aggregate() for row in await store.rollups(start=0, end=BASE * 2, tier=tier)
        )
        assert total.prompt_tokens == sum(e.prompt_tokens for e in events)
        assert total.completion_tokens == sum(e.completion_tokens for e in events)
        assert total.streamed == sum(e.streamed for e in events)
        assert total.cost_usd == pytest.approx(sum(e.cost_usd for e in events))
        assert total.ttft.count == sum(e.ttft_seconds > 0 for e in events)
        assert total.finish_reasons == reasons
    hourly = await store.rollups(
        start=BASE - day, end=BASE, service="alpha", route="/v1/predict", tier=RollupTier.HOUR
    )
    assert hourly and all(
        BASE - day <= r.bucket < BASE and r.route == "/v1/predict" for r in hourly
    )


async def test_each_tier_has_its_own_retention(store: EventStore) -> None:
    day = 86_400.0
    await store.write_batch(make_events(600, start=BASE - 10 * day, spread=10 * day, seed=22))
    total = sum(r.requests for r in await store.rollups(start=0, end=BASE * 2))
    assert total == 600
    _, rolled = await store.delete_before(
        raw_before=0.0,
        rollups_before=BASE - 2 * day,
        tiers_before={RollupTier.HOUR: BASE - 5 * day},
    )
    assert rolled > 0
    minutes = await store.rollups(start=0, end=BASE * 2)
    hours = await store.rollups(start=0, end=BASE * 2, tier=RollupTier.HOUR)
    days = await store.rollups(start=0, end=BASE * 2, tier=RollupTier.DAY)
    assert minutes and min(r.bucket for r in minutes) >= BASE - 2 * day
    assert hours and min(r.bucket for r in hours) >= BASE - 5 * day
    assert min(r.bucket for r in hours) < BASE - 2 * day  # the hour tier kept more
    assert sum(r.requests for r in days) == 600  # the day tier kept everything
    assert await store.count_events() == 600  # raw events are not a tier


async def test_thirty_days_of_history_answer_from_the_hourly_tier(store: EventStore) -> None:
    day = 86_400.0
    end = math.floor(BASE / 21_600) * 21_600.0
    start = end - 30 * day
    ids = EventIdFactory()
    events = [
        RequestEvent(
            id=ids(),
            start=start + i * 600 + 1,
            service="alpha",
            method="POST",
            route="/v1/predict",
            path="/v1/predict",
            status=500 if i % 10 == 0 else 200,
            latency_seconds=0.05 + (i % 7) * 0.01,
            ttfb_seconds=0.01,
            request_bytes=10,
            response_bytes=20,
        )
        for i in range(int(30 * day / 600))
    ]
    for offset in range(0, len(events), 1500):
        await store.write_batch(events[offset : offset + 1500])
    step = choose_step(start, end, requested=None, max_points=1000)
    assert step == 21_600 and RollupTier.for_step(step) is RollupTier.HOUR
    # The minute tier's retention has removed all but the last day: the hourly tier
    # still answers for the whole month.
    await store.delete_before(raw_before=0.0, rollups_before=end - day)
    [requests, errors] = await load_series(
        store,
        service="alpha",
        route=None,
        metrics=["requests", "errors"],
        start=start,
        end=end,
        step=step,
    )
    assert len(requests.points) == 120
    assert sum(value or 0 for _, value in requests.points) == len(events)
    assert sum(value or 0 for _, value in errors.points) == len(events) // 10
    assert all(value == 36 for _, value in requests.points)  # 6 hours of one per 10 min
    # Read from the minute tier instead, most of the month is gone.
    [minute] = await load_series(
        store,
        service="alpha",
        route=None,
        metrics=["requests"],
        start=start,
        end=end,
        step=step,
        tier=RollupTier.MINUTE,
    )
    assert sum(value or 0 for _, value in minute.points) == 144


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The backends whose tiers are tables (TimescaleDB computes them)."""
    return request.param, str(request.getfixturevalue(_FIXTURES[request.param]))


async def test_tiers_are_filled_from_minute_rows_stored_before_they_existed(
    backend_url: tuple[str, str],
) -> None:
    """A database from before the tiers: its minute rollups fill the hour and day tiers
    at the first connect (once), so its history reads the same from every tier."""
    backend, url = backend_url
    day = 86_400.0
    store = create_store(url)
    await store.connect()
    await store.write_batch(make_events(900, start=BASE - 3 * day, spread=3 * day, seed=31))
    minutes = await store.rollups(start=0, end=BASE * 2)
    await store.close()
    # Back to the state of a database made before the tiers.
    if backend == "sqlite":
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db, db:
            db.executescript(
                "DELETE FROM rollups_hour; DELETE FROM rollups_day; DELETE FROM rollup_backfill;"
            )
    else:
        import asyncpg

        connection = await asyncpg.connect(url)
        try:
            await connection.execute(
                "TRUNCATE rollups_hour, rollups_day, rollup_backfill;"
                " UPDATE schema_migrations SET applied_at = now() WHERE version = 2"
            )
        finally:
            await connection.close()
    for _ in range(2):  # the second connect must not add them again
        store = create_store(url)
        await store.connect()
        try:
            for tier in (RollupTier.HOUR, RollupTier.DAY):
                rows = await store.rollups(start=0, end=BASE * 2, tier=tier)
                expected = downsample(minutes, seconds=tier)
                assert {(r.bucket, r.service, r.method, r.route): r.requests for r in rows} == {
                    key: row.requests for key, row in expected.items()
                }
        finally:
            await store.close()
