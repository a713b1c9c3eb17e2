"""The API over a real pipeline (in-process bus, SQLite, live windows), fed with events."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import time

import httpx
import msgspec
import pytest
import websockets

from modelmonitor.events import RequestEvent, encode_batch
from modelmonitor.runtime import Runtime
from tests.helpers import make_batch, make_events


async def publish(runtime: Runtime, events: list[RequestEvent], batch_size: int = 250) -> None:
    assert runtime.bus is not None and runtime.store is not None
    for offset in range(0, len(events), batch_size):
        await runtime.bus.publish(encode_batch(make_batch(events[offset : offset + batch_size])))


async def stored(runtime: Runtime, expected: int) -> None:
    assert runtime.store is not None
    for _ in range(200):
        if await runtime.store.count_events() >= expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {await runtime.store.count_events()} of {expected} stored")


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


async def test_counts_rollups_and_percentiles(pipeline: Runtime) -> None:
    now = time.time()
    events = make_events(2_000, service="iris", start=now - 150, spread=145, seed=1)
    events += make_events(500, service="wine", start=now - 100, spread=95, seed=2)
    await publish(pipeline, events)
    await stored(pipeline, len(events))
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        services = (await client.get("/api/v1/services")).json()["services"]
        totals = {s["name"]: s["requests_total"] for s in services}
        assert totals["iris"] == 2_000 and totals["wine"] == 500

        history = (
            await client.get(
                "/api/v1/metrics/historical",
                params={
                    "service": "iris",
                    "metric": "requests,errors,p95",
                    "start": "-10m",
                    "step": "60s",
                },
            )
        ).json()
        assert history["step_seconds"] == 60
        by_metric = {s["metric"]: s["points"] for s in history["series"]}
        assert sum(v for _, v in by_metric["requests"]) == 2_000
        iris = [e for e in events if e.service == "iris"]
        assert sum(v for _, v in by_metric["errors"]) == sum(e.is_error for e in iris)
        for t, p95 in by_metric["p95"]:
            inside = [e.latency_seconds for e in iris if t <= e.start < t + 60]
            if not inside:
                assert p95 is None
                continue
            assert p95 == pytest.approx(exact_quantile(inside, 0.95), rel=0.01)

        realtime = (await client.get("/api/v1/metrics/realtime", params={"service": "iris"})).json()
        (entry,) = realtime["services"]
        assert entry["windows"]["5m"]["requests"] == 2_000
        assert {r["route"] for r in entry["routes"]} == {"/v1/models/{id}/predict", "/health"}

        routes = (await client.get("/api/v1/routes", params={"service": "wine"})).json()["routes"]
        assert sum(r["requests"] for r in routes) == 500

        health = (await client.get("/api/v1/health")).json()
        assert [p["proxy_id"] for p in health["proxies"]] == ["test-proxy"]
        assert realtime["proxies"][0]["buffer_capacity"] == 1000


async def test_redelivered_batch_is_stored_once(pipeline: Runtime) -> None:
    events = make_events(300, start=time.time() - 30, spread=20)
    await publish(pipeline, events)
    await publish(pipeline, events[:100])
    await stored(pipeline, 300)
    await asyncio.sleep(0.3)
    assert pipeline.store is not None
    assert await pipeline.store.count_events() == 300
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        history = (
            await client.get(
                "/api/v1/metrics/historical", params={"service": "svc", "metric": "requests"}
            )
        ).json()
    assert sum(v for _, v in history["series"][0]["points"]) == 300


async def test_recent_requests_pagination_and_filters(pipeline: Runtime) -> None:
    events = make_events(95, start=time.time() - 60, spread=50, error_share=0.3)
    await publish(pipeline, events)
    await stored(pipeline, 95)
    seen: list[str] = []
    cursor = None
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        for _ in range(20):
            params: dict[str, str | int] = {"service": "svc", "limit": 10}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/api/v1/requests", params=params)).json()
            seen += [r["id"] for r in page["requests"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        errors = (
            await client.get("/api/v1/requests", params={"errors_only": "true", "limit": 1000})
        ).json()["requests"]
    newest_first = sorted(events, key=lambda e: (e.start, e.id), reverse=True)
    assert seen == [e.id for e in newest_first]
    assert {r["id"] for r in errors} == {e.id for e in events if e.is_error}


async def test_csv_export(pipeline: Runtime) -> None:
    await publish(pipeline, make_events(120, start=time.time() - 120, spread=100))
    await stored(pipeline, 120)
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        response = await client.get(
            "/api/v1/metrics/historical",
            params={"service": "svc", "metric": "requests,p99", "start": "-5m", "format": "csv"},
        )
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0] == "timestamp,requests_count,p99_seconds"
    assert sum(float(line.split(",")[1]) for line in lines[1:]) == 120


async def test_request_log_carries_model_fields_as_json_and_csv(pipeline: Runtime) -> None:
    base = make_events(30, start=time.time() - 60, spread=50)
    events = [
        msgspec.structs.replace(
            event,
            model=f"gpt-{i % 2}",
            consumer=f"team-{i % 3}",
            model_version="2024-08",
            protocol="openai",
            task="chat",
            prompt_tokens=100 + i,
            completion_tokens=7 * i,
            tokens_estimated=i % 4 == 0,
            ttft_seconds=0.05,
            finish_reason="length" if i % 5 == 0 else "stop",
            streamed=i % 2 == 0,
            cost_usd=0.001 * i,
        )
        for i, event in enumerate(base)
    ]
    await publish(pipeline, events)
    await stored(pipeline, 30)
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        params = {"consumer": "team-1", "model": "gpt-1", "limit": 100}
        page = (await client.get("/api/v1/requests", params=params)).json()
        text = (await client.get("/api/v1/requests", params={**params, "format": "csv"})).text
    expected = sorted(
        (e for e in events if e.consumer == "team-1" and e.model == "gpt-1"),
        key=lambda e: (e.start, e.id),
        reverse=True,
    )
    assert expected
    assert page["requests"] == [msgspec.structs.asdict(e) for e in expected]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["id"] for row in rows] == [e.id for e in expected]
    for row, event in zip(rows, expected, strict=True):
        assert int(row["completion_tokens"]) == event.completion_tokens
        assert row["tokens_estimated"] == str(int(event.tokens_estimated))
        assert float(row["cost_usd"]) == event.cost_usd
        assert row["finish_reason"] == event.finish_reason


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/metrics/historical", {"service": "svc", "metric": "p42"}, "metric"),
        ("/api/v1/metrics/historical", {"service": "svc", "start": "yesterday"}, "start"),
        ("/api/v1/metrics/historical", {"service": "svc", "start": "now", "end": "-1h"}, "start"),
        ("/api/v1/metrics/historical", {"service": "svc", "step": "often"}, "step"),
        ("/api/v1/metrics/historical", {}, "service"),
        ("/api/v1/requests", {"limit": 0}, "limit"),
        ("/api/v1/requests", {"cursor": "!!"}, "cursor"),
        ("/api/v1/requests", {"status_class": "7xx"}, "status_class"),
    ],
)
async def test_bad_parameters_name_the_field(
    pipeline: Runtime, path: str, params: dict[str, str], field: str
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 422
    assert field in [entry["loc"][-1] for entry in response.json()["detail"]]


async def test_unknown_service_is_404_and_ranges_are_capped(pipeline: Runtime) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        for path in ("/api/v1/metrics/realtime", "/api/v1/metrics/historical", "/api/v1/routes"):
            response = await client.get(path, params={"service": "nope"})
            assert response.status_code == 404, path
        capped = (
            await client.get(
                "/api/v1/metrics/historical",
                params={"service": "default", "start": "2000-01-01T00:00:00Z", "step": "1m"},
            )
        ).json()
    assert capped["capped"] is True
    assert len(capped["series"][0]["points"]) <= 1_000


async def test_health_openapi_and_configured_service(pipeline: Runtime) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        for path in ("/health", "/api/v1/health"):
            health = (await client.get(path)).json()
            assert health["status"] == "ok"
            assert health["components"]["store"]["status"] == "ok"
        schema = (await client.get("/openapi.json")).json()
        assert "LiveSnapshot" in schema["components"]["schemas"]
        assert (await client.get("/docs")).status_code == 200
        realtime = (await client.get("/api/v1/metrics/realtime")).json()
    assert [s["service"] for s in realtime["services"]] == ["default"]
    assert realtime["services"][0]["status"] == "idle"


async def test_websocket_pushes_snapshots(pipeline: Runtime) -> None:
    await publish(pipeline, make_events(50, start=time.time() - 5, spread=4))
    await stored(pipeline, 50)
    url = pipeline.api_url.replace("http://", "ws://") + "/ws/metrics?service=svc"
    async with websockets.connect(url) as ws:
        first = await asyncio.wait_for(ws.recv(), timeout=3)
        second = await asyncio.wait_for(ws.recv(), timeout=3)

    for message in (first, second):
        payload = json.loads(message)
        assert payload["type"] == "snapshot"
        assert [s["service"] for s in payload["data"]["services"]] == ["svc"]
        assert payload["data"]["services"][0]["windows"]["5m"]["requests"] == 50


async def test_prometheus_exposition(pipeline: Runtime) -> None:
    await publish(pipeline, make_events(40, start=time.time() - 20, spread=15, error_share=0.0))
    await stored(pipeline, 40)
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert 'modelmonitor_error_ratio{service="svc",window="5m"} 0.0' in lines
    assert any(
        line.startswith('modelmonitor_latency_seconds{percentile="p99",service="svc",window="5m"}')
        for line in lines
    )
    assert 'modelmonitor_dropped_events_total{proxy="test-proxy"} 0.0' in lines


async def test_thirty_days_of_history_come_from_the_hourly_tier(pipeline: Runtime) -> None:
    now = time.time()
    month = 30 * 86_400
    events = make_events(1_440, service="iris", start=now - month + 60, spread=month - 120, seed=5)
    await publish(pipeline, events)
    await stored(pipeline, len(events))
    async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
        history = (
            await client.get(
                "/api/v1/metrics/historical",
                params={"service": "iris", "metric": "requests", "start": "-30d"},
            )
        ).json()
        recent = (
            await client.get(
                "/api/v1/metrics/historical",
                params={"service": "iris", "metric": "requests", "start": "-1h"},
            )
        ).json()
    assert (history["tier"], history["step_seconds"]) == ("hour", 21_600)
    assert sum(v for _, v in history["series"][0]["points"]) == len(events)
    assert recent["tier"] == "minute"
