"""Anomaly alerts on demo-like traffic in simulated time: the real live state, tracker,
detectors, store and engine, with a controllable clock.

The tracker runs at its defaults (a point every 60 s from the 1-minute window, 10
points of learning, a calibration window of 600 points)."""

from __future__ import annotations

from typing import Any

import pytest

from modelmonitor.alerts.engine import AlertEngine
from modelmonitor.alerts.rules import (
    ANOMALY_METRICS,
    LANGUAGE_ANOMALY_METRICS,
    AnomalyRule,
    RuleError,
    parse_rule,
)
from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from modelmonitor.anomaly.tracker import AnomalyTracker
from modelmonitor.live.memory import MemoryLiveState
from tests.alert_helpers import T0, SimClock
from tests.anomaly_helpers import Shape, Traffic, daily

LEARNING_SECONDS = 600 * 10


@pytest.fixture
def traffic(store: SQLiteAlertStore, live: MemoryLiveState, clock: SimClock) -> Traffic:
    tracker = AnomalyTracker(store=store, live=live, clock=clock, configured_services=["svc"])
    engine = AlertEngine(store=store, live=live, clock=clock, configured_services=["svc"])
    return Traffic(live=live, clock=clock, tracker=tracker, engine=engine)


async def add_anomaly_rules(store: SQLiteAlertStore, **fields: Any) -> None:
    for metric in ANOMALY_METRICS:
        rule = parse_rule(
            {"name": f"{metric} anomaly", "kind": "anomaly", "metric": metric, **fields}
        )
        rule.id = f"anomaly-{metric}"
        await store.put_rule(rule)


async def test_p95_regression_fires_within_two_minutes(
    traffic: Traffic, store: SQLiteAlertStore
) -> None:
    await add_anomaly_rules(store, **{"for": "30s"})
    await traffic.run(LEARNING_SECONDS + 600)
    assert traffic.firing() == []
    injected = traffic.clock.now
    await traffic.run(120, lambda _: Shape(latency_factor=2.0))
    fired = {n.metric: (at - injected, n) for at, n in traffic.firing()}
    assert "latency_p95" in fired, traffic.notices
    delay, notice = fired["latency_p95"]
    assert delay <= 120
    assert notice.summary.startswith("p95 ") and "ms, expected " in notice.summary
    assert notice.summary.endswith("(novelty)")  # the member that fired
    assert notice.metric == "latency_p95" and notice.service == "svc"
    assert notice.kind == "anomaly" and notice.threshold == pytest.approx(2 / 3)
    assert set(fired) <= {"latency_p50", "latency_p95", "latency_p99"}


async def test_error_burst_fires_within_two_minutes(
    traffic: Traffic, store: SQLiteAlertStore
) -> None:
    await add_anomaly_rules(store, **{"for": "30s"})
    # Four hours in: the rule's default (p <= 1e-6) needs a calibration window that no
    # longer holds the sparse first hour (a cold start without stored history).
    await traffic.run(4 * 3600)
    injected = traffic.clock.now
    await traffic.run(120, lambda _: Shape(error_rate=0.2))
    fired = {n.metric: (at - injected, n) for at, n in traffic.firing()}
    assert "error_rate" in fired, traffic.notices
    delay, notice = fired["error_rate"]
    assert delay <= 120
    assert notice.summary.startswith("error rate ") and "%, expected " in notice.summary


async def test_sustained_regression_keeps_firing_then_resolves(
    traffic: Traffic, store: SQLiteAlertStore
) -> None:
    await add_anomaly_rules(store)
    await traffic.run(LEARNING_SECONDS + 300)
    await traffic.run(600, lambda _: Shape(latency_factor=2.0))
    states = {s.rule_id: s.status for s in await store.list_states()}
    assert states["anomaly-latency_p95"] == "firing"  # 10 minutes on: still outside the band
    await traffic.run(300)
    states = {s.rule_id: s.status for s in await store.list_states()}
    assert states["anomaly-latency_p95"] == "resolved"


async def test_ten_hours_of_daily_pattern_raise_nothing(
    traffic: Traffic, store: SQLiteAlertStore
) -> None:
    # Real time, not compressed: 10 h of a 24 h sinusoid (rps 10..30, latency +-15 %)
    # starting at its mean and rising, so most of the range is new after learning.
    # Rules are evaluated every 30 s (an alarm counts for the 60 s window, so none is
    # missed); the tracker steps every 10 s.
    await add_anomaly_rules(store)
    await traffic.run(10 * 3600, daily(), evaluate_every=30)
    assert traffic.firing() == []
    peak = max(p.score for p in traffic.points)
    assert peak < AnomalyRule(name="x", metric="throughput").score_threshold
    classic = set(ANOMALY_METRICS) - set(LANGUAGE_ANOMALY_METRICS)  # no LLM traffic here
    assert {(p.service, p.metric) for p in traffic.points} == {("svc", m) for m in classic}
    assert traffic.clock.now - T0 == 10 * 3600


async def test_learning_period_of_the_rule_holds_it_back(
    traffic: Traffic, store: SQLiteAlertStore
) -> None:
    await add_anomaly_rules(store, learning_period="4h")
    await traffic.run(LEARNING_SECONDS + 300)
    await traffic.run(120, lambda _: Shape(latency_factor=2.0))
    assert traffic.firing() == []
    peak = max(p.score for p in traffic.points if p.metric == "latency_p95")
    assert peak >= AnomalyRule(name="x", metric="latency_p95").score_threshold


def test_rule_fields_are_validated() -> None:
    rule = parse_rule(
        {"name": "a", "kind": "anomaly", "metric": "latency_p95", "learning_period": "2h"}
    )
    assert isinstance(rule, AnomalyRule)
    assert rule.learning_points(10.0) == 720
    assert rule.score_threshold == pytest.approx(2 / 3)
    assert parse_rule(rule.document()) == rule
    for field, value in (
        ("sensitivity", 1.5),
        ("metric", "dropped_events"),
        ("learning_period", "soon"),
        ("window", "1h"),
        ("comparator", ">"),
    ):
        with pytest.raises(RuleError) as caught:
            parse_rule({"name": "a", "kind": "anomaly", "metric": "latency_p95", field: value})
        assert caught.value.details[0]["loc"] == [field]
