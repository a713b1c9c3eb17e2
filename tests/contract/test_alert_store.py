"""One suite over every alert store: SQLite always, PostgreSQL when marked ``services``."""

from __future__ import annotations

import asyncio

import pytest

from modelmonitor.alerts.models import AlertState, Delivery, HistoryEntry
from modelmonitor.alerts.rules import parse_rule
from modelmonitor.alerts.silences import Silence
from modelmonitor.alerts.store import AlertStore


@pytest.fixture
def store(alert_store: AlertStore) -> AlertStore:
    return alert_store


async def test_rules_round_trip(store: AlertStore) -> None:
    first = parse_rule({"name": "a", "metric": "latency_p99", "threshold": 1, "for": "5m"})
    first.id, first.created_at = "a", 1.0
    second = parse_rule({"name": "b", "metric": "throughput", "comparator": "<", "threshold": 2})
    second.id, second.created_at = "b", 2.0
    await store.put_rule(second)
    await store.put_rule(first)
    assert [r.id for r in await store.list_rules()] == ["a", "b"]
    assert await store.get_rule("a") == first
    first.threshold = 3  # type: ignore[attr-defined]
    await store.put_rule(first)
    fetched = await store.get_rule("a")
    assert fetched is not None and fetched.threshold == 3  # type: ignore[attr-defined]
    await store.compare_and_set(AlertState(rule_id="a", service="s"), expected_version=0)
    assert await store.delete_rule("a")
    assert not await store.delete_rule("a")
    assert await store.get_rule("a") is None
    assert await store.list_states() == []  # states go with their rule


async def test_compare_and_set(store: AlertStore) -> None:
    state = AlertState(rule_id="r", service="s", status="pending", updated_at=1.0)
    stored = await store.compare_and_set(state, expected_version=0)
    assert stored is not None and stored.version == 1
    assert await store.compare_and_set(state, expected_version=0) is None  # exists already
    firing = AlertState(rule_id="r", service="s", status="firing", updated_at=2.0)
    results = await asyncio.gather(
        store.compare_and_set(firing, expected_version=1),
        store.compare_and_set(firing, expected_version=1),
    )
    assert sum(result is not None for result in results) == 1
    (current,) = await store.list_states(rule_id="r")
    assert (current.status, current.version) == ("firing", 2)
    assert await store.compare_and_set(firing, expected_version=1) is None


async def test_history_filters_newest_first(store: AlertStore) -> None:
    entries = [
        HistoryEntry(
            at=float(at),
            rule_id="r",
            rule_name="r",
            service=service,
            previous="inactive",
            status="pending",
            severity="warning",
        )
        for at, service in ((10, "a"), (20, "b"), (30, "a"))
    ]
    await store.add_history(entries)
    assert [e.at for e in await store.history()] == [30.0, 20.0, 10.0]
    assert [e.at for e in await store.history(service="a", start=15)] == [30.0]
    assert [e.at for e in await store.history(end=20)] == [10.0]
    assert len(await store.history(limit=2)) == 2
    assert await store.prune(before=25) == 2
    assert [e.at for e in await store.history()] == [30.0]


async def test_silences(store: AlertStore) -> None:
    silence = Silence.model_validate(
        {"id": "s", "matchers": [{"name": "service", "value": "a"}], "starts_at": 1, "ends_at": 2}
    )
    await store.put_silence(silence)
    assert await store.list_silences() == [silence]
    assert await store.get_silence("s") == silence
    assert await store.delete_silence("s")
    assert await store.get_silence("s") is None


async def test_deliveries_and_channel_counters(store: AlertStore) -> None:
    for index, status in enumerate(("delivered", "failed", "failed")):
        await store.add_delivery(
            Delivery(
                notification_id=f"n{index}",
                channel="hook",
                channel_type="webhook",
                service="a",
                status=status,
                created_at=float(index),
            )
        )
    assert [d.notification_id for d in await store.deliveries()] == ["n2", "n1", "n0"]
    assert len(await store.deliveries(status="failed")) == 2
    results = await asyncio.gather(
        *(
            store.record_channel_result("hook", ok=False, error="boom", now=5.0, disable_after=3)
            for _ in range(4)
        )
    )
    assert max(r.consecutive_failures for r in results) == 4  # no lost update
    (status,) = await store.channel_statuses()
    assert not status.enabled and "boom" in status.disabled_reason
    status = await store.set_channel_enabled("hook", enabled=True, reason="", now=6.0)
    assert status.enabled and status.consecutive_failures == 0
    ok = await store.record_channel_result("hook", ok=True, error="", now=7.0, disable_after=3)
    assert ok.last_success_at == 7.0


async def test_outbox_claims(store: AlertStore) -> None:
    def pending(name: str, claimed_until: float) -> Delivery:
        return Delivery(
            notification_id=name,
            channel="hook",
            channel_type="webhook",
            service="a",
            status="pending",
            created_at=1.0,
            claimed_until=claimed_until,
        )

    free_id = await store.add_delivery(pending("free", 5.0))
    await store.add_delivery(pending("held", 50.0))
    results = await asyncio.gather(
        *(store.claim_deliveries(channel="hook", now=10.0, until=100.0, limit=10) for _ in range(3))
    )
    claimed = [d for result in results for d in result]
    assert [(d.notification_id, d.id, d.claimed_until) for d in claimed] == [
        ("free", free_id, 100.0)
    ]
    done = claimed[0]
    done.status = "delivered"
    await store.update_delivery(done)
    # Later, only the other row's claim has run out; a finished row is never claimed.
    later = await store.claim_deliveries(channel="hook", now=1e9, until=2e9, limit=10)
    assert [d.notification_id for d in later] == ["held"]
    assert await store.claim_deliveries(channel="other", now=1e9, until=2e9, limit=10) == []
    statuses = {d.notification_id: d.status for d in await store.deliveries()}
    assert statuses["free"] == "delivered"
