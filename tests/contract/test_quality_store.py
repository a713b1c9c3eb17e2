"""One suite over every quality store: SQLite always, PostgreSQL when marked ``services``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelmonitor.events import RequestEvent
from modelmonitor.quality.profile import WindowProfile, decode_profile, encode_profile
from modelmonitor.quality.store import (
    QualityStore,
    Reference,
    SampleFilter,
    StoredSample,
    create_quality_store,
)
from tests.contract.conftest import create_database, drop_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QualityStore]:
    url = f"sqlite:///{tmp_path / 'q.db'}" if request.param == "sqlite" else await create_database()
    quality = create_quality_store(url)
    await quality.connect()
    try:
        yield quality
    finally:
        await quality.close()
        if request.param == "postgres":
            await drop_database(url)


def sample(event_id: str, at: float, service: str = "iris", text: str = "") -> StoredSample:
    event = RequestEvent(
        event_id, at, service, "POST", "/predict", "/predict", 200, 0.01, 0.005, 10, 20
    )
    return StoredSample(
        event=event, request=json.dumps({"x": 1, "note": text}), response="[0]", features={"x": 1.0}
    )


async def test_samples_are_idempotent_searchable_and_paged(store: QualityStore) -> None:
    assert (
        await store.write_samples([sample("a", 10.0), sample("b", 20.0, text="50% off_now")]) == 2
    )
    assert await store.write_samples([sample("a", 10.0), sample("c", 30.0, service="other")]) == 1
    got = await store.get_sample("b")
    assert got is not None and got.event.start == 20.0 and "50% off_now" in got.request
    assert got.features == {"x": 1.0} and got.event.service == "iris"
    assert [s.event.id for s in await store.samples(SampleFilter())] == ["c", "b", "a"]
    assert [s.event.id for s in await store.samples(SampleFilter(service="iris"))] == ["b", "a"]
    # LIKE wildcards in the text are matched literally.
    assert [s.event.id for s in await store.samples(SampleFilter(contains="50% off_"))] == ["b"]
    assert [s.event.id for s in await store.samples(SampleFilter(contains="0%"))] == ["b"]
    assert await store.samples(SampleFilter(contains="5_%")) == []
    page = await store.samples(SampleFilter(before=(20.0, "b"), limit=5))
    assert [s.event.id for s in page] == ["a"]
    assert [s.event.id for s in await store.samples(SampleFilter(start=15.0, end=25.0))] == ["b"]


async def test_profiles_append_and_read_by_range(store: QualityStore) -> None:
    first, second = WindowProfile(), WindowProfile()
    first.add_row({"x": 1.0, "c": "a"})
    second.add_row({"x": 3.0, "c": "b"})
    await store.write_profiles(
        [("iris", 60.0, encode_profile(first)), ("iris", 60.0, encode_profile(second))]
    )
    await store.write_profiles(
        [("iris", 120.0, encode_profile(second)), ("other", 60.0, encode_profile(first))]
    )
    rows = await store.profiles("iris", 0.0, 120.0)
    assert [bucket for bucket, _ in rows] == [60.0, 60.0]
    merged = WindowProfile()
    for _, blob in rows:
        merged.merge(decode_profile(blob))
    assert merged.rows == 2 and merged.features["x"].numbers.values == [1.0, 3.0]
    assert merged.features["c"].categories == {"a": 1, "b": 1}
    assert await store.profiled_services() == ["iris", "other"]
    assert await store.first_profile("iris") == 60.0
    assert await store.first_profile("nobody") is None
    assert await store.delete_before(samples_before=0.0, profiles_before=100.0) == (0, 3)
    assert [b for b, _ in await store.profiles("iris", 0.0, 1e9)] == [120.0]


async def test_references_round_trip(store: QualityStore) -> None:
    ref = Reference(
        service="iris",
        name="training",
        created_at=5.0,
        source={"kind": "file", "file": "t.csv"},
        profile=b"\x01\x02",
    )
    await store.put_reference(ref)
    await store.put_reference(
        Reference(
            service="iris",
            name="training",
            created_at=6.0,
            source={"kind": "range", "start": 1.0},
            profile=b"\x03",
        )
    )
    got = await store.get_reference("iris", "training")
    assert (
        got is not None
        and got.created_at == 6.0
        and got.profile == b"\x03"
        and got.source["start"] == 1.0
    )
    assert [r.name for r in await store.references("iris")] == ["training"]
    assert await store.delete_reference("iris", "training")
    assert not await store.delete_reference("iris", "training")
    assert await store.get_reference("iris", "training") is None
