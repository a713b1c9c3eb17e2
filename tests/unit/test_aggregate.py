"""The one Aggregate: the bulk path equals event-by-event adding, and every form round-trips."""

from __future__ import annotations

import math
import random

import pytest

from modelmonitor.aggregate import (
    MEASURES,
    Aggregate,
    Columns,
    Kind,
    aggregate_batch,
    finished_second,
    floor_seconds,
)
from modelmonitor.events import EventIdFactory, RequestEvent
from modelmonitor.sketch import DEFAULT_RELATIVE_ACCURACY


def make_events(n: int, *, seed: int = 1, llm: bool = True) -> list[RequestEvent]:
    rng = random.Random(seed)
    ids = EventIdFactory()
    events = []
    for i in range(n):
        status = rng.choice([200, 200, 201, 302, 404, 500, 503, 0])
        streamed = llm and i % 3 == 0
        events.append(
            RequestEvent(
                id=ids(),
                start=1_795_000_000.0 + rng.random() * 130,
                service=rng.choice(["alpha", "beta"]),
                method=rng.choice(["GET", "POST"]),
                route=rng.choice(["/v1/chat/completions", "/v1/models/{m}"]),
                path="/p",
                status=status,
                latency_seconds=rng.lognormvariate(-3.0, 0.9) if i % 50 else 0.0,
                ttfb_seconds=0.001,
                request_bytes=rng.randint(0, 2000),
                response_bytes=rng.randint(0, 9000),
                error="upstream_connect" if status == 0 else "",
                model="m",
                client="c",
                prompt_tokens=rng.randint(0, 500) if llm else 0,
                completion_tokens=rng.randint(0, 900) if llm else 0,
                tokens_estimated=streamed and i % 2 == 0,
                ttft_seconds=rng.uniform(0.01, 0.5) if streamed else 0.0,
                finish_reason=rng.choice(["stop", "length", ""]) if llm else "",
                streamed=streamed,
                cost_usd=rng.random() / 100 if llm else 0.0,
            )
        )
    return events


def assert_same(a: Aggregate, b: Aggregate) -> None:
    assert a.requests == b.requests
    for measure in MEASURES:
        mine, theirs = getattr(a, measure.name), getattr(b, measure.name)
        if measure.kind is Kind.SKETCH:
            assert mine.bins == theirs.bins, measure.name
            assert mine.count == theirs.count, measure.name
            assert mine.zero_count == theirs.zero_count, measure.name
            assert mine.total == pytest.approx(theirs.total), measure.name
            if mine.count:
                assert mine.minimum == theirs.minimum
                assert mine.maximum == theirs.maximum
        elif measure.kind is Kind.SUM:
            assert mine == pytest.approx(theirs), measure.name
        else:
            assert mine == theirs, measure.name


def by_hand(events: list[RequestEvent], key: object) -> dict[tuple[object, ...], Aggregate]:
    groups: dict[tuple[object, ...], Aggregate] = {}
    for event in events:
        k = key(event)  # type: ignore[operator]
        groups.setdefault(k, Aggregate()).add(event)
    return groups


def test_bulk_equals_adding_one_by_one_per_series_and_second() -> None:
    events = make_events(3000)
    bulk = aggregate_batch(
        Columns(events), dims=("service", "method", "route"), bucket=finished_second
    )
    expected = by_hand(
        events,
        lambda e: (
            math.floor(e.start + e.latency_seconds),
            e.service,
            e.method,
            e.route,
        ),
    )
    assert set(bulk) == set(expected)
    for key, aggregate in expected.items():
        assert_same(bulk[key], aggregate)


def test_bulk_by_minute_and_other_dimensions() -> None:
    events = make_events(1000, seed=4)
    bulk = aggregate_batch(Columns(events), dims=("model", "client"), bucket=floor_seconds(60))
    expected = by_hand(events, lambda e: (math.floor(e.start / 60) * 60, e.model, e.client))
    assert set(bulk) == set(expected)
    for key, aggregate in expected.items():
        assert_same(bulk[key], aggregate)


def test_the_error_rule_counts_transport_errors_and_5xx_only() -> None:
    events = make_events(500, seed=2)
    total = aggregate_batch(Columns(events), dims=())[()]
    assert total.errors == sum(1 for e in events if e.error or e.status >= 500)
    assert total.status_classes.get("err") == sum(1 for e in events if e.status == 0)
    assert total.finish_reasons.keys() <= {"stop", "length"}


def test_merge_is_the_aggregate_of_the_union() -> None:
    events = make_events(800, seed=5)
    left, right, whole = Aggregate(), Aggregate(), Aggregate()
    for event in events[:300]:
        left.add(event)
    for event in events[300:]:
        right.add(event)
    for event in events:
        whole.add(event)
    left.merge(right)
    assert_same(left, whole)


def test_stored_columns_round_trip() -> None:
    aggregate = aggregate_batch(Columns(make_events(700, seed=6)), dims=())[()]
    back = Aggregate.from_columns(aggregate.to_columns())
    assert_same(back, aggregate)
    plain = aggregate_batch(Columns(make_events(50, llm=False)), dims=())[()]
    assert plain.to_columns()[-1] == b""  # nothing language-model: no blob


def test_redis_fields_round_trip_within_sketch_accuracy() -> None:
    events = make_events(900, seed=7)
    aggregate = aggregate_batch(Columns(events), dims=())[()]
    ints, floats = aggregate.to_fields()
    fields: dict[str, float] = {name: value for name, value in (*ints, *floats)}
    back = Aggregate.from_fields(fields)
    for measure in MEASURES:
        mine, theirs = getattr(back, measure.name), getattr(aggregate, measure.name)
        if measure.kind is Kind.SKETCH:
            assert mine.bins == theirs.bins and mine.count == theirs.count
            for q in (0.5, 0.95, 0.99):
                truth, found = theirs.quantile(q), mine.quantile(q)
                assert truth is not None and found is not None
                assert abs(found - truth) <= 2 * DEFAULT_RELATIVE_ACCURACY * truth + 1e-9
        elif measure.kind is Kind.SUM:
            assert mine == pytest.approx(theirs)
        else:
            assert mine == theirs, measure.name


def test_window_view() -> None:
    events = make_events(400, seed=8)
    aggregate = aggregate_batch(Columns(events), dims=())[()]
    stats = aggregate.to_stats(window_seconds=60, covered=40.0)
    assert stats.requests == 400 and stats.rps == 10.0
    assert stats.error_rate == aggregate.errors / 400
    assert stats.mean_seconds == pytest.approx(sum(e.latency_seconds for e in events) / 400)
    assert stats.llm is not None
    assert stats.llm.prompt_tokens == sum(e.prompt_tokens for e in events)
    assert stats.llm.cost_usd == pytest.approx(sum(e.cost_usd for e in events))
    ttfts = sorted(e.ttft_seconds for e in events if e.ttft_seconds > 0)
    truth = ttfts[math.floor(0.95 * (len(ttfts) - 1))]
    assert stats.llm.ttft_p95_seconds == pytest.approx(truth, rel=DEFAULT_RELATIVE_ACCURACY)
    plain = aggregate_batch(Columns(make_events(30, llm=False)), dims=())[()]
    assert plain.to_stats(window_seconds=60, covered=60.0).llm is None


def test_empty_batch() -> None:
    assert aggregate_batch(Columns([]), dims=("service",)) == {}
