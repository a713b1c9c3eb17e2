"""The anomaly tracker on every alert store (SQLite always, PostgreSQL marked
``services``): detector states survive a restart with the same scores, one process
feeds at a time (lease), points are stored, read by range and pruned."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelmonitor.alerts.models import AnomalyPoint
from modelmonitor.alerts.store import AlertStore, create_alert_store
from modelmonitor.anomaly.tracker import AnomalyTracker, TrackerConfig
from modelmonitor.live.memory import MemoryLiveState
from tests.alert_helpers import T0, SimClock
from tests.anomaly_helpers import Shape, Traffic

#: A short learning period keeps these tests quick; the behaviour does not depend on it.
CONFIG = TrackerConfig(
    step_seconds=10.0, window_seconds=10, learning_period=60, save_interval_seconds=60.0
)


@pytest.fixture
def store(alert_store: AlertStore) -> AlertStore:
    return alert_store


@pytest.fixture
async def reference() -> AsyncIterator[AlertStore]:
    store = create_alert_store("sqlite://:memory:")
    await store.connect()
    yield store
    await store.close()


def key(points: list[AnomalyPoint]) -> list[tuple[str, str, float, float, float, float]]:
    return [(p.service, p.metric, p.at, p.value, p.score, p.upper) for p in points]


async def test_restart_carries_on_with_the_same_scores(
    store: AlertStore, reference: AlertStore
) -> None:
    clock = SimClock()
    live = MemoryLiveState(clock=clock)
    steady = AnomalyTracker(store=reference, live=live, clock=clock, config=CONFIG)
    first = AnomalyTracker(store=store, live=live, clock=clock, config=CONFIG, holder="a")
    traffic = Traffic(live=live, clock=clock)

    async def run(seconds: int, tracker: AnomalyTracker, shape: Shape | None = None) -> None:
        nonlocal both
        for _ in range(seconds // 10):
            await traffic.run(10, lambda _: shape or Shape())
            both.append((await steady.step(), await tracker.step()))

    both: list[tuple[list[AnomalyPoint], list[AnomalyPoint]]] = []
    await run(900, first)
    await first.stop()  # saves the states and gives up the lease
    both.clear()
    second = AnomalyTracker(store=store, live=live, clock=clock, config=CONFIG, holder="b")
    await run(300, second, Shape(latency_factor=1.5))
    assert all(key(a) == key(b) for a, b in both)
    assert any(p.score >= 0.5 for _, points in both for p in points)
    stored = await store.anomaly_points(start=T0, end=clock.now + 1, metric="latency_p95")
    assert len(stored) == 120 and [p.at for p in stored] == sorted(p.at for p in stored)
    assert stored[-1].count == 120
    await second.stop()


async def test_one_process_feeds_at_a_time(store: AlertStore) -> None:
    clock = SimClock()
    live = MemoryLiveState(clock=clock)
    traffic = Traffic(live=live, clock=clock)
    one = AnomalyTracker(store=store, live=live, clock=clock, config=CONFIG, holder="one")
    two = AnomalyTracker(store=store, live=live, clock=clock, config=CONFIG, holder="two")
    for _ in range(12):
        await traffic.run(10)
        assert await one.step() != []
        assert await two.step() == []
    assert one.holding and not two.holding
    # "one" dies without releasing: "two" takes over once the lease (30 s from the
    # last step) expired, from the last saved states (saved every 60 s: at +10 and +70).
    for _ in range(2):
        await traffic.run(10)
        assert await two.step() == []
    await traffic.run(10)
    taken = await two.step()
    assert two.holding and taken
    detector = two.detector("svc", "throughput")
    assert detector is not None and detector.count == 7 + 1
    stored = await store.anomaly_points(start=T0, end=clock.now + 1, metric="throughput")
    assert len({p.at for p in stored}) == len(stored)


async def test_points_prune_and_filter(store: AlertStore) -> None:
    points = [
        AnomalyPoint(
            service=service,
            metric="error_rate",
            at=T0 + i * 10,
            value=0.01,
            score=0.0,
            expected=0.01,
            lower=0.0,
            upper=0.02,
            count=i + 1,
        )
        for i in range(10)
        for service in ("a", "b")
    ]
    await store.add_anomaly_points(points)
    await store.add_anomaly_points(points[:4])  # stored once
    found = await store.anomaly_points(start=T0, end=T0 + 50, service="a")
    assert [p.at for p in found] == [T0 + i * 10 for i in range(5)]
    assert found[0] == points[0]
    assert await store.prune_anomaly_points(before=T0 + 50) == 10
    assert len(await store.anomaly_points(start=0, end=T0 + 1000)) == 10
