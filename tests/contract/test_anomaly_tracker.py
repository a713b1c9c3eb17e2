"""The anomaly tracker over real stores (SQLite always, PostgreSQL marked ``services``):
detectors warm from the stored rollups, a lasting shift becomes a stored new normal,
vanished series are pruned, anomalies say which member fired, and ``/metrics`` lines
report the state size."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelmonitor.alerts.store import AlertStore
from modelmonitor.anomaly.tracker import NEW_NORMAL, AnomalyTracker, TrackerConfig
from modelmonitor.live.memory import MemoryLiveState
from modelmonitor.storage import EventStore, create_store
from tests.alert_helpers import SimClock
from tests.anomaly_helpers import Shape, Traffic

CONFIG = TrackerConfig(learning_period=600, first_points=10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def history_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def history(history_url: str) -> AsyncIterator[EventStore]:
    """The event store the rollups are read from, on SQLite and on PostgreSQL."""
    store = create_store(history_url)
    await store.connect()
    yield store
    await store.close()


def slow(_: float) -> Shape:
    return Shape(latency_factor=5.0)


async def test_a_detector_warmed_from_rollups_alarms_in_the_first_minutes(
    alert_store: AlertStore, history: EventStore
) -> None:
    clock = SimClock()
    live = MemoryLiveState(clock=clock)
    traffic = Traffic(live=live, clock=clock, events=history)
    await traffic.run(100 * 60)  # 100 minutes of traffic before the tracker starts
    warm = AnomalyTracker(store=alert_store, live=live, clock=clock, config=CONFIG, history=history)
    traffic.tracker = warm
    await traffic.run(300)
    first = [p for p in traffic.points if p.metric == "latency_p95"]
    assert len(first) >= 5 and all(p.count > 90 for p in first)  # learned from history
    assert all(p.score < 0.5 for p in first)
    await traffic.run(120, slow)  # minutes 6-7: latency x5
    alarms = [p for p in traffic.points if p.metric == "latency_p95" and p.score >= 0.5]
    assert alarms and alarms[0].member == "novelty" and alarms[0].upper < alarms[0].value
    await warm.stop()


async def test_without_history_a_short_learning_phase(alert_store: AlertStore) -> None:
    clock = SimClock()
    live = MemoryLiveState(clock=clock)
    cold = AnomalyTracker(store=alert_store, live=live, clock=clock, config=CONFIG)
    traffic = Traffic(live=live, clock=clock, tracker=cold)
    await traffic.run(600)  # 10 points: the learning phase
    p95 = [p for p in traffic.points if p.metric == "latency_p95"]
    assert len(p95) == 10 and all(p.score == 0.0 for p in p95)
    await traffic.run(300)
    await traffic.run(120, slow)
    p95 = [p for p in traffic.points if p.metric == "latency_p95"]
    assert max(p.score for p in p95[-2:]) >= 0.5  # 16 minutes in, conservative, alarms
    assert max(p.score for p in p95[:-2]) < 0.5
    await cold.stop()


async def test_a_lasting_shift_becomes_a_stored_new_normal(alert_store: AlertStore) -> None:
    clock = SimClock()
    live = MemoryLiveState(clock=clock)
    config = TrackerConfig(learning_period=600, episode_seconds=1800.0)
    tracker = AnomalyTracker(store=alert_store, live=live, clock=clock, config=config)
    traffic = Traffic(live=live, clock=clock, tracker=tracker)
    await traffic.run(3600)
    await traffic.run(7200, lambda _: Shape(latency_factor=3.0))  # a level that stays
    p95 = [p for p in traffic.points if p.metric == "latency_p95"]
    shifted = p95[60:]
    assert shifted[0].anomalous and shifted[0].member == "novelty"
    events = [p for p in shifted if p.event == NEW_NORMAL]
    assert len(events) == 1
    renewed = events[0]
    assert renewed.at - shifted[0].at == 1800.0
    assert all(p.anomalous for p in shifted if p.at < renewed.at)
    assert renewed.lower < renewed.value < renewed.upper  # the band moved to the new level
    after = [p for p in shifted if p.at > renewed.at]
    assert len(after) == 89 and not any(p.anomalous for p in after)
    stored = await alert_store.anomaly_points(
        start=renewed.at, end=renewed.at + 1, service="svc", metric="latency_p95"
    )
    assert stored[0].event == NEW_NORMAL
    await tracker.stop()


async def test_vanished_series_are_pruned_with_their_state(alert_store: AlertStore) -> None:
    clock = SimClock()
    live = MemoryLiveState(clock=clock)
    config = TrackerConfig(learning_period=60, prune_after_seconds=900.0)
    tracker = AnomalyTracker(store=alert_store, live=live, clock=clock, config=config)
    gone = Traffic(live=live, clock=clock, tracker=tracker, service="gone")
    await gone.run(600)
    stays = Traffic(live=live, clock=clock, tracker=tracker, service="stays", seed=2)
    await tracker.save()
    assert {s for s, _ in tracker.series()} == {"gone"}
    assert tracker.state_bytes > 0 and len(tracker.series()) == 5
    await stays.run(3700)  # "gone" sends nothing for an hour: pruned at the hourly pass
    assert {s for s, _ in tracker.series()} == {"stays"}
    await tracker.save()
    stored = await alert_store.load_detectors()
    assert {r.service for r in stored} == {"stays"}
    await tracker.stop()
