"""Anomaly scores in the API (realtime, historical, /anomalies) and anomaly rules through
/api/v1/alerts/rules and the config file, over a running worker + API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelmonitor.alerts.models import AnomalyPoint
from modelmonitor.events import encode_batch
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import ConfigError, load_settings
from tests.helpers import make_batch, make_events


def settings(tmp_path: Path, **extra: Any) -> Any:
    return load_settings(
        data_dir=tmp_path,
        api="127.0.0.1:0",
        target="http://127.0.0.1:1",
        target_name="iris",
        **extra,
    )


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings(tmp_path), parts=Parts(proxy=False, worker=True, api=True))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    assert runtime.api_url is not None
    async with httpx.AsyncClient(base_url=f"{runtime.api_url}/api/v1") as client:
        yield client


def point(
    at: float,
    value: float,
    score: float,
    *,
    anomalous: bool = False,
    member: str = "",
    event: str = "",
) -> AnomalyPoint:
    return AnomalyPoint(
        service="iris",
        metric="latency_p95",
        at=at,
        value=value,
        score=score,
        expected=0.14,
        lower=0.12,
        upper=0.16,
        count=700,
        anomalous=anomalous,
        episode_score=score if anomalous else 0.0,
        member=member,
        event=event,
    )


async def test_scores_and_bands_in_the_api(runtime: Runtime, client: httpx.AsyncClient) -> None:
    assert runtime.alerts is not None
    now = time.time()
    stored = [point(now - 600 + 10 * i, 0.14, 0.0) for i in range(58)]
    stored.append(point(now - 10, 0.412, 0.99, anomalous=True, member="novelty"))
    await runtime.alerts.store.add_anomaly_points(stored)

    live = (await client.get("/metrics/realtime")).json()
    iris = next(s for s in live["services"] if s["service"] == "iris")
    assert iris["anomalies"]["latency_p95"] == {
        "value": 0.412,
        "score": 0.99,
        "expected": 0.14,
        "lower": 0.12,
        "upper": 0.16,
        "at": now - 10,
        "anomalous": True,
        "member": "novelty",
        "event": "",
    }

    found = (await client.get("/anomalies", params={"service": "iris", "start": "-1h"})).json()
    series = {s["metric"]: s for s in found["series"]}
    assert set(series) == {"latency_p50", "latency_p95", "latency_p99", "error_rate", "throughput"}
    p95 = series["latency_p95"]
    assert p95["unit"] == "seconds" and len(p95["points"]) == 59
    assert p95["points"][-1] == [now - 10, 0.412, 0.99, 0.14, 0.12, 0.16, True]
    assert p95["events"] == [
        {
            "at": now - 10,
            "kind": "anomaly",
            "member": "novelty",
            "value": 0.412,
            "score": 0.99,
            "expected": 0.14,
            "lower": 0.12,
            "upper": 0.16,
        }
    ]

    history = await client.get(
        "/metrics/historical",
        params={"service": "iris", "metric": "p95,requests", "anomaly": "true"},
    )
    assert history.status_code == 200, history.text
    anomalies = {s["metric"]: s for s in history.json()["anomalies"]}
    assert set(anomalies) == {"latency_p95", "throughput"}
    assert anomalies["latency_p95"]["points"][-1][2] == 0.99
    plain = (await client.get("/metrics/historical", params={"service": "iris"})).json()
    assert plain["anomalies"] is None

    bad = await client.get("/anomalies", params={"service": "iris", "metric": "cpu"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "metric"]
    schema = (await client.get(f"{runtime.api_url}/openapi.json")).json()
    assert "/api/v1/anomalies" in schema["paths"]
    assert "AnomalyList" in schema["components"]["schemas"]


ANOMALY_RULE = {
    "name": "iris p95 anomaly",
    "kind": "anomaly",
    "service": "*",
    "metric": "latency_p95",
    "sensitivity": 0.7,
    "learning_period": "2h",
    "for": "1m",
    "window": "2m",
    "severity": "critical",
    "labels": {"team": "ml"},
    "channels": [],
    "repeat_interval": "1h",
    "keep_firing_for": "30s",
}


async def test_anomaly_rule_crud(client: httpx.AsyncClient) -> None:
    created = await client.post("/alerts/rules", json=ANOMALY_RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["kind"] == "anomaly" and rule["sensitivity"] == 0.7
    assert rule["learning_period"] == "2h" and rule["window"] == 120.0 and rule["for"] == 60.0
    assert (await client.get(f"/alerts/rules/{rule['id']}")).json() == rule
    changed = await client.put(
        f"/alerts/rules/{rule['id']}", json={**ANOMALY_RULE, "learning_period": 600}
    )
    assert changed.status_code == 200 and changed.json()["learning_period"] == 600
    assert (await client.delete(f"/alerts/rules/{rule['id']}")).status_code == 204


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"sensitivity": 2}, ["body", "sensitivity"], "less than or equal to 1"),
        ({"metric": "5xx_rate"}, ["body", "metric"], "Input should be"),
        ({"learning_period": "later"}, ["body", "learning_period"], "number of points"),
        ({"learning_period": -5}, ["body", "learning_period"], ">= 0"),
        ({"window": "1h"}, ["body", "window"], "between 10s and 15m"),
        ({"threshold": 3}, ["body", "threshold"], "unknown field"),
    ],
)
async def test_invalid_anomaly_rules_are_422(
    client: httpx.AsyncClient, change: dict[str, Any], loc: list[Any], message: str
) -> None:
    answer = await client.post("/alerts/rules", json={**ANOMALY_RULE, **change})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["loc"] == loc and message in problem["msg"], problem


async def test_anomaly_rules_from_the_config_file(tmp_path: Path) -> None:
    good = settings(tmp_path, alert_rules=[ANOMALY_RULE])
    runtime = Runtime(good, parts=Parts(proxy=False, worker=True, api=False))
    await runtime.start()
    try:
        assert runtime.alerts is not None
        rules = await runtime.alerts.store.list_rules()
        assert [(r.id, r.kind) for r in rules] == [("config-iris-p95-anomaly", "anomaly")]
        assert runtime.alerts.tracker.running
    finally:
        await runtime.stop()
    bad = settings(tmp_path, alert_rules=[{**ANOMALY_RULE, "sensitivity": -1}])
    with pytest.raises(ConfigError, match=r"alert_rules\.0\.sensitivity"):
        await Runtime(bad, parts=Parts(proxy=False, worker=True, api=False)).start()


async def test_the_running_tracker_scores_live_traffic(tmp_path: Path) -> None:
    """Worker + API in real time with a 1-second step: points reach the store and the
    realtime API, and /health reports the feeding tracker."""
    runtime = Runtime(
        settings(tmp_path, anomaly_step_seconds=1),
        parts=Parts(proxy=False, worker=True, api=True),
    )
    await runtime.start()
    try:
        assert runtime.bus is not None and runtime.api_url is not None
        async with httpx.AsyncClient(base_url=runtime.api_url) as client:
            found: dict[str, Any] = {}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                events = make_events(30, service="iris", start=time.time() - 1, spread=1.0)
                await runtime.bus.publish(encode_batch(make_batch(events)))
                live = (await client.get("/api/v1/metrics/realtime")).json()
                iris = next(s for s in live["services"] if s["service"] == "iris")
                found = iris.get("anomalies") or {}
                if "latency_p95" in found:
                    break
                await asyncio.sleep(0.5)
            assert {"latency_p95", "throughput", "error_rate"} <= set(found), found
            assert found["throughput"]["score"] == 0.0  # still learning
            health = (await client.get("/health")).json()
            assert health["components"]["anomaly"]["detail"].startswith("feeding")
    finally:
        await runtime.stop()


async def test_new_normal_events_survive_thinning_and_state_size_is_exposed(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    assert runtime.alerts is not None
    now = time.time()
    stored = [point(now - 3000 + 2 * i, 0.14, 0.0) for i in range(1400)]
    stored[100] = point(now - 2800, 0.42, 0.9, anomalous=True, member="baseline")
    stored[101] = point(now - 2798, 0.42, 0.0, anomalous=True)
    stored[900] = point(now - 1200, 0.41, 0.0, event="new_normal")
    await runtime.alerts.store.add_anomaly_points(stored)
    found = await client.get(
        "/anomalies", params={"service": "iris", "metric": "latency_p95", "start": "-1h"}
    )
    series = found.json()["series"][0]
    assert len(series["points"]) <= 1000  # thinned (max_history_points)
    assert [(e["kind"], e["member"], e["at"]) for e in series["events"]] == [
        ("anomaly", "baseline", now - 2800),
        ("new_normal", "", now - 1200),
    ]

    await runtime.alerts.tracker.step()  # this process feeds the detectors: it holds the lease
    await runtime.alerts.tracker.save()
    assert runtime.api_url is not None
    text = (await client.get(f"{runtime.api_url}/metrics")).text
    assert "# TYPE modelmonitor_anomaly_state_bytes gauge" in text
    size = runtime.alerts.tracker.state_bytes
    assert f"modelmonitor_anomaly_state_bytes {float(size)}" in text
    assert "modelmonitor_anomaly_detectors " in text
