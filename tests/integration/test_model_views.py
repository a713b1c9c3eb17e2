"""Per-model and per-consumer views through the API: history filtered by model and
consumer, the models and consumers tables, LLM series, and the cardinality cap."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelmonitor.events import RequestEvent
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from tests.helpers import make_events
from tests.integration.test_api import publish, stored


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = load_settings(
        data_dir=tmp_path,
        api="127.0.0.1:0",
        target="http://127.0.0.1:1",
        max_models_per_service=3,
        max_consumers_per_service=4,
    )
    runtime = Runtime(settings, parts=Parts(proxy=False, worker=True, api=True))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def _completion(exposition: str) -> float:
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    family = families.get("modelmonitor_completion_tokens")
    return sum(s.value for s in family.samples) if family else 0.0


def llm_events(count: int, *, start: float, seed: int = 1) -> list[RequestEvent]:
    rng = random.Random(seed)
    events = []
    for i, event in enumerate(make_events(count, start=start, spread=170, seed=seed)):
        streamed = i % 2 == 0
        ttft = rng.uniform(0.05, 0.3) if streamed else 0.0
        completion = rng.randint(1, 300)
        events.append(
            msgspec.structs.replace(
                event,
                route="/v1/chat/completions",
                model=f"m{i % 5}",  # five models, cap three
                consumer=f"c{i % 3}",
                protocol="openai",
                task="chat",
                prompt_tokens=rng.randint(5, 900),
                completion_tokens=completion,
                ttft_seconds=ttft,
                latency_seconds=ttft + completion * 0.01,
                streamed=streamed,
                finish_reason="length" if i % 4 == 0 else "stop",
                cost_usd=completion * 1e-5,
            )
        )
    return events


async def test_history_tables_and_the_cap(pipeline: Runtime) -> None:
    now = time.time()
    events = llm_events(600, start=now - 200)
    await publish(pipeline, events)
    await stored(pipeline, len(events))
    admitted = {"m0", "m1", "m2"}  # the first three seen
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        params = {"service": "svc", "start": "-10m", "step": "60s", "model": "m1"}
        params["metric"] = "requests,completion_tokens,cost_usd,ttft_p95,tokens_per_second"
        params["metric"] += ",finish_reason_length_rate"
        history = (await client.get("/api/v1/metrics/historical", params=params)).json()
        models = (await client.get("/api/v1/models", params={"service": "svc"})).json()
        consumers = (
            await client.get("/api/v1/consumers", params={"service": "svc", "model": "m2"})
        ).json()
        expected_tokens = sum(e.completion_tokens for e in events)
        for _ in range(100):  # the cluster totals are shipped every so often
            exposition = (await client.get("/metrics")).text
            if _completion(exposition) == expected_tokens:
                break
            await asyncio.sleep(0.1)
        bad = await client.get(
            "/api/v1/metrics/historical", params={"service": "svc", "route": "/x", "model": "m"}
        )
    assert bad.status_code == 422 and "route" in bad.text
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    completion = families["modelmonitor_completion_tokens"].samples
    assert sum(s.value for s in completion if s.labels["service"] == "svc") == sum(
        e.completion_tokens for e in events
    )
    cost = sum(s.value for s in families["modelmonitor_cost_usd"].samples)
    assert cost == pytest.approx(sum(e.cost_usd for e in events))
    ttft_count = [
        s.value
        for s in families["modelmonitor_time_to_first_token_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert sum(ttft_count) == sum(e.ttft_seconds > 0 for e in events)
    assert "modelmonitor_llm_time_to_first_token_seconds" in families
    series = {s["metric"]: s["points"] for s in history["series"]}
    mine = [e for e in events if e.model == "m1"]
    assert sum(v for _, v in series["requests"]) == len(mine)
    assert sum(v for _, v in series["completion_tokens"]) == sum(e.completion_tokens for e in mine)
    assert sum(v for _, v in series["cost_usd"]) == pytest.approx(sum(e.cost_usd for e in mine))
    for t, rate in series["tokens_per_second"]:
        inside = [e for e in mine if t <= e.start < t + 60]
        if not inside:
            assert rate is None
            continue
        spent = sum(e.latency_seconds - e.ttft_seconds for e in inside)
        assert rate == pytest.approx(sum(e.completion_tokens for e in inside) / spent)
        lengths = sum(e.finish_reason == "length" for e in inside)
        rates = dict(series["finish_reason_length_rate"])
        assert rates[t] == pytest.approx(lengths / len(inside))
        ttfts = sorted(e.ttft_seconds for e in inside if e.ttft_seconds > 0)
        exact = ttfts[math.floor(0.95 * (len(ttfts) - 1))]
        assert dict(series["ttft_p95"])[t] == pytest.approx(exact, rel=0.02)

    by_model = {item["name"]: item for item in models["items"]}
    assert set(by_model) == admitted | {"other"}
    assert by_model["other"]["requests"] == sum(e.model not in admitted for e in events)
    assert models["folded_requests"] == by_model["other"]["requests"]
    assert by_model["m0"]["completion_tokens"] == sum(
        e.completion_tokens for e in events if e.model == "m0"
    )
    assert [i["requests"] for i in models["items"]] == sorted(
        (i["requests"] for i in models["items"]), reverse=True
    )
    m2 = [e for e in events if e.model == "m2"]
    assert {i["name"]: i["requests"] for i in consumers["items"]} == {
        c: sum(e.consumer == c for e in m2) for c in {e.consumer for e in m2}
    }
