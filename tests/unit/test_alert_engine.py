"""The lifecycle on generated traffic with known answers, in simulated time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.engine import AlertEngine, RoundReport
from modelmonitor.alerts.models import AlertState
from modelmonitor.alerts.rules import parse_rule
from modelmonitor.alerts.silences import Silence
from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from modelmonitor.live.memory import MemoryLiveState
from tests.alert_helpers import T0, FakeChannel, SimClock, batch, events_for_second, feed


@pytest.fixture
def engine(store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock) -> AlertEngine:
    return AlertEngine(store=store, live=live, clock=clock, configured_services=["svc"])


async def add_rule(store: SQLiteAlertStore, rule_id: str = "r1", **fields: Any) -> None:
    document = {
        "name": f"rule {rule_id}",
        "metric": "error_rate",
        "comparator": ">",
        "threshold": 0.5,
        "window": "10s",
        "for": "60s",
        "min_requests": 5,
        "repeat_interval": 0,
        **fields,
    }
    rule = parse_rule(document)
    rule.id = rule_id
    await store.put_rule(rule)


class RacingStore(SQLiteAlertStore):
    """Waits after reading the states until the other evaluator has read them too."""

    def __init__(self, url: str, barrier: asyncio.Barrier) -> None:
        super().__init__(url)
        self._barrier = barrier

    async def list_states(self, *, rule_id: str | None = None) -> list[AlertState]:
        states = await super().list_states(rule_id=rule_id)
        await self._barrier.wait()
        return states


class Timeline:
    """Feed traffic second by second and evaluate every 5 s, recording notices."""

    def __init__(self, engine: AlertEngine, live: MemoryLiveState, clock: SimClock) -> None:
        self.engine = engine
        self.live = live
        self.clock = clock
        self.notices: list[tuple[float, str, str, str]] = []  # (at, service, rule, reason)
        self.rounds: list[RoundReport] = []

    async def run(self, seconds: int, **traffic: Any) -> None:
        for _ in range(seconds // 5):
            if traffic.get("count", 10):
                await feed(self.live, self.clock, 5, **traffic)
            else:
                self.clock.advance(5)
            report = await self.engine.evaluate()
            self.rounds.append(report)
            for notice in report.notices:
                self.notices.append((report.at, notice.service, notice.rule_id, notice.reason))

    def reasons(self) -> list[tuple[float, str]]:
        return [(at - T0, reason) for at, _, _, reason in self.notices]


async def status(store: SQLiteAlertStore, rule_id: str = "r1", service: str = "svc") -> str:
    for state in await store.list_states(rule_id=rule_id):
        if state.service == service:
            return state.status
    return "inactive"


async def test_fires_after_exactly_for_then_resolves(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store)
    timeline = Timeline(engine, live, clock)
    await timeline.run(60, errors=10)  # condition holds from the first round (T0+5)
    assert await status(store) == "pending"
    await timeline.run(5, errors=10)  # T0+65: 60 s after pending began
    assert await status(store) == "firing"
    assert timeline.reasons() == [(65.0, "firing")]
    # Healthy traffic: the 10 s window is half bad at T0+70 (0.5 is not > 0.5).
    await timeline.run(5, errors=0)
    assert await status(store) == "resolved"
    assert timeline.reasons() == [(65.0, "firing"), (70.0, "resolved")]
    history = await store.history()
    assert [(h.previous, h.status) for h in reversed(history)] == [
        ("inactive", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]


async def test_pending_that_stops_holding_never_fires(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store)
    timeline = Timeline(engine, live, clock)
    await timeline.run(30, errors=10)
    await timeline.run(20, errors=0)
    await timeline.run(60, errors=10)
    assert await status(store) == "pending"  # the `for` clock restarted
    assert timeline.notices == []


async def test_repeats_at_the_repeat_interval(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, **{"for": 0, "repeat_interval": "30s"})
    timeline = Timeline(engine, live, clock)
    await timeline.run(100, errors=10)
    assert timeline.reasons() == [
        (5.0, "firing"),
        (35.0, "repeat"),
        (65.0, "repeat"),
        (95.0, "repeat"),
    ]


async def test_keep_firing_for_delays_resolve(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, **{"for": 0, "keep_firing_for": "20s"})
    timeline = Timeline(engine, live, clock)
    await timeline.run(30, errors=10)  # last round that holds: T0+30
    await timeline.run(20, errors=0)  # T0+35: first round not holding; kept firing to T0+50
    assert await status(store) == "firing"
    await timeline.run(5, errors=0)  # T0+55: 20 s after it was first seen not holding
    assert await status(store) == "resolved"
    assert timeline.reasons() == [(5.0, "firing"), (55.0, "resolved")]


async def test_min_requests_keeps_an_idle_service_quiet(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, **{"for": 0, "min_requests": 10})
    timeline = Timeline(engine, live, clock)
    # One failing request every 5 s: 2 requests per 10 s window, 100 % errors.
    for _ in range(12):
        await feed(live, clock, 1, count=1, errors=1)
        clock.advance(4)
        timeline.rounds.append(await engine.evaluate())
    assert await status(store) == "inactive"
    assert all(not r.notifications for r in timeline.rounds)
    await timeline.run(10, count=10, errors=10)
    assert await status(store) == "firing"


async def test_latency_and_throughput_metrics(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, "slow", metric="latency_p95", threshold=1.0, **{"for": 0})
    await add_rule(store, "quiet", metric="throughput", comparator="<", threshold=5, **{"for": 0})
    timeline = Timeline(engine, live, clock)
    await timeline.run(10, count=10, latency=0.2)
    assert timeline.notices == []
    await timeline.run(10, count=2, latency=2.5)  # slow and below 5 rps
    fired = sorted((rule, reason) for _, _, rule, reason in timeline.notices)
    assert fired == [("quiet", "firing"), ("slow", "firing")]


async def test_silence_holds_notifications_until_it_ends(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, **{"for": 0})
    silence = Silence.model_validate(
        {
            "id": "s1",
            "matchers": [
                {"name": "service", "value": "svc"},
                {"name": "severity", "value": "warning"},
            ],
            "starts_at": T0,
            "ends_at": T0 + 30,
        }
    )
    await store.put_silence(silence)
    timeline = Timeline(engine, live, clock)
    await timeline.run(25, errors=10)
    assert await status(store) == "firing"  # the state still moves
    assert timeline.notices == []
    await timeline.run(10, errors=10)  # the silence ended at T0+30
    assert timeline.reasons() == [(30.0, "firing")]
    history = await store.history()
    assert history[-1].silenced is True  # the firing transition happened while silenced


async def test_silenced_alert_that_resolves_sends_nothing(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, **{"for": 0})
    await store.put_silence(
        Silence.model_validate(
            {
                "id": "s1",
                "matchers": [{"name": "rule", "value": "rule .*", "op": "=~"}],
                "starts_at": T0,
                "ends_at": T0 + 3600,
            }
        )
    )
    timeline = Timeline(engine, live, clock)
    await timeline.run(20, errors=10)
    await timeline.run(20, errors=0)
    assert await status(store) == "resolved"
    assert timeline.notices == []


async def test_alerts_of_one_service_are_grouped(
    store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    channel = FakeChannel("ops")
    dispatcher = Dispatcher(channels={"ops": channel}, store=store, clock=clock)
    await dispatcher.start()
    engine = AlertEngine(store=store, live=live, dispatcher=dispatcher, clock=clock)
    await add_rule(store, "errors", **{"for": 0})
    await add_rule(store, "slow", metric="latency_p50", threshold=0.5, **{"for": 0})
    try:
        for service in ("a", "b"):
            events = [
                event
                for second in range(5)
                for event in events_for_second(
                    clock.now + second, service=service, errors=10, latency=1.0
                )
            ]
            await live.record(batch(events, sent_at=clock.now))
        clock.advance(5)
        await engine.evaluate()
        await dispatcher.idle()
    finally:
        await dispatcher.stop()
    assert sorted(n.service for n in channel.received) == ["a", "b"]
    for notification in channel.received:
        assert sorted(a.rule_id for a in notification.alerts) == ["errors", "slow"]
        assert notification.status == "firing"


async def test_disabled_or_edited_rule_resolves(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, **{"for": 0})
    timeline = Timeline(engine, live, clock)
    await timeline.run(10, errors=10)
    await add_rule(store, **{"for": 0, "enabled": False})
    await timeline.run(5, errors=10)
    assert timeline.reasons() == [(5.0, "firing"), (15.0, "resolved")]


async def test_dropped_events_from_proxy_counters(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, metric="dropped_events", threshold=100, window="1m", **{"for": 0})
    dropped = 0
    notices = []
    for _ in range(8):
        clock.advance(5)
        dropped += 50  # 50 dropped per 5 s: 600 per minute
        await live.record(batch([], sent_at=clock.now, dropped_total=dropped))
        report = await engine.evaluate()
        notices += [(notice.service, notice.reason) for notice in report.notices]
    assert ("*", "firing") in notices


async def test_two_engines_on_one_store_notify_once(
    tmp_path: Path, live: MemoryLiveState, clock: SimClock
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    barrier = asyncio.Barrier(2)
    stores = [RacingStore(url, barrier), RacingStore(url, barrier)]
    for store in stores:
        await store.connect()
    try:
        await add_rule(stores[0], **{"for": "10s", "repeat_interval": "20s"})
        engines = [
            AlertEngine(store=store, live=live, clock=clock, configured_services=["svc"])
            for store in stores
        ]
        sent: list[tuple[float, str]] = []
        conflicts = 0

        async def both_evaluate() -> None:
            nonlocal conflicts
            # Both read the same stored versions before either writes: a real race.
            reports = await asyncio.gather(*(engine.evaluate() for engine in engines))
            for report in reports:
                conflicts += report.conflicts
                sent.extend((report.at - T0, notice.reason) for notice in report.notices)

        for _ in range(12):
            await feed(live, clock, 5, errors=10)
            await both_evaluate()
        for _ in range(3):
            await feed(live, clock, 5, errors=0)
            await both_evaluate()
        assert sent == [(15.0, "firing"), (35.0, "repeat"), (55.0, "repeat"), (65.0, "resolved")]
        assert conflicts > 0
    finally:
        for store in stores:
            await store.close()


async def test_state_survives_a_restart(
    tmp_path: Path, live: MemoryLiveState, clock: SimClock
) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    reasons: list[tuple[float, str]] = []
    for phase in range(2):
        store = SQLiteAlertStore(url)
        await store.connect()
        try:
            if phase == 0:
                await add_rule(store, **{"for": 0})
            engine = AlertEngine(store=store, live=live, clock=clock, configured_services=["svc"])
            timeline = Timeline(engine, live, clock)
            await timeline.run(10, errors=10 if phase == 0 else 0)
            reasons += timeline.reasons()
        finally:
            await store.close()
    # The restarted engine did not fire again; it resolved what the first one fired.
    assert reasons == [(5.0, "firing"), (15.0, "resolved")]


async def test_notifications_are_stored_with_the_state_change(
    store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, **{"for": 0})
    # This evaluator's process "dies" before sending: its dispatcher never runs.
    dead = Dispatcher(channels={"ops": FakeChannel("ops")}, store=store, clock=clock)
    engine = AlertEngine(
        store=store, live=live, dispatcher=dead, clock=clock, configured_services=["svc"]
    )
    await Timeline(engine, live, clock).run(5, errors=10)
    (row,) = await store.deliveries(status="pending")
    assert row.alert_ids == ["r1:svc"] and row.notification is not None
    # Another process picks the notification up from the outbox and sends it, once.
    channel = FakeChannel("ops")
    alive = Dispatcher(channels={"ops": channel}, store=store, clock=clock)
    await alive.start()
    try:
        for _ in range(100):
            if channel.received:
                break
            await asyncio.sleep(0.01)
        await alive.idle()
        assert await alive.recover() == 0
    finally:
        await alive.stop()
    assert [n.alerts[0].reason for n in channel.received] == ["firing"]
    assert [d.status for d in await store.deliveries()] == ["delivered"]


async def test_route_rule_only_sees_its_route(
    engine: AlertEngine, store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock
) -> None:
    await add_rule(store, "predict", route="/predict", **{"for": 0})
    await add_rule(store, "health", route="/health", **{"for": 0})
    for _ in range(5):
        failing = events_for_second(clock.now, errors=10, route="/predict")
        healthy = events_for_second(clock.now, errors=0, route="/health")
        clock.advance(1)
        await live.record(batch(failing + healthy, sent_at=clock.now))
    report = await engine.evaluate()
    assert [(n.rule_id, n.route, n.value) for n in report.notices] == [("predict", "/predict", 1.0)]
