"""LLM alert metrics (TTFT, tokens per second, cost per hour, length rate) over live
windows, and the same rules filtered by model or consumer over the model rollups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest

from modelmonitor.alerts.engine import AlertEngine
from modelmonitor.alerts.evaluators import ThresholdEvaluator
from modelmonitor.alerts.models import AlertState
from modelmonitor.alerts.rules import parse_rule
from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from modelmonitor.events import RequestEvent
from modelmonitor.live.memory import MemoryLiveState
from modelmonitor.query.models import dimension_window
from modelmonitor.storage.sqlite import SQLiteStore
from tests.alert_helpers import SimClock, batch, events_for_second


@pytest.fixture
async def events_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'events.db'}")
    await store.connect()
    yield store
    await store.close()


def llm(events: list[RequestEvent], *, model: str, ttft: float, length: bool) -> list[RequestEvent]:
    return [
        msgspec.structs.replace(
            event,
            model=model,
            consumer="team-a",
            prompt_tokens=100,
            completion_tokens=50,
            ttft_seconds=ttft,
            latency_seconds=ttft + 0.5,
            streamed=True,
            finish_reason="length" if length else "stop",
            cost_usd=0.01,
        )
        for event in events
    ]


async def run(
    store: SQLiteAlertStore,
    live: MemoryLiveState,
    clock: SimClock,
    events_store: SQLiteStore,
    rule: dict[str, Any],
) -> list[AlertState]:
    engine = AlertEngine(store=store, live=live, clock=clock, configured_services=["svc"])
    threshold = engine.evaluators["threshold"]
    assert isinstance(threshold, ThresholdEvaluator)
    threshold.dimensions = partial(dimension_window, events_store)
    parsed = parse_rule({"name": "r", "window": "1m", "min_requests": 5, **rule})
    parsed.id = "r1"
    await store.put_rule(parsed)
    for _ in range(30):  # slow answers from "big", fast ones from "small"
        second = clock.now
        slow = llm(events_for_second(second, count=5), model="big", ttft=1.5, length=True)
        fast = llm(events_for_second(second, count=5), model="small", ttft=0.1, length=False)
        await live.record(batch(slow + fast, sent_at=clock.now + 1.0))
        await events_store.write_batch(slow + fast)
        clock.advance(1.0)
    report = await engine.evaluate()
    assert not report.errors, report
    return await store.list_states(rule_id="r1")


@pytest.mark.parametrize(
    ("rule", "fires"),
    [
        ({"metric": "ttft_p95", "comparator": ">", "threshold": 1.0}, True),
        ({"metric": "ttft_p95", "comparator": ">", "threshold": 1.0, "model": "small"}, False),
        ({"metric": "ttft_p95", "comparator": ">", "threshold": 1.0, "model": "big"}, True),
        ({"metric": "finish_reason_length_rate", "threshold": 0.4}, True),
        ({"metric": "finish_reason_length_rate", "threshold": 0.4, "model": "small"}, False),
        ({"metric": "tokens_per_second", "comparator": "<", "threshold": 110}, True),
        ({"metric": "cost_per_hour", "threshold": 100}, True),  # 0.1 $/s = 360 $/h
        ({"metric": "cost_per_hour", "threshold": 100, "consumer": "team-b"}, False),
    ],
)
async def test_llm_threshold_rules(
    store: SQLiteAlertStore,
    live: MemoryLiveState,
    clock: SimClock,
    events_store: SQLiteStore,
    rule: dict[str, Any],
    fires: bool,
) -> None:
    states = await run(store, live, clock, events_store, rule)
    assert bool(states and states[0].status in ("pending", "firing")) is fires
