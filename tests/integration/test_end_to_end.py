"""The whole system as users run it: a real model API, the proxy, the pipeline, the API."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from modelmonitor import ModelAPIMonitor
from modelmonitor.storage.base import RequestFilter
from modelmonitor.storage.sqlite import SQLiteStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def model_api() -> Iterator[int]:
    """The bundled demo model API, a real scikit-learn server in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "modelmonitor", "demo", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(params=[False, True], ids=["proxy-in-process", "proxy-process"])
async def monitor(
    model_api: int, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ModelAPIMonitor]:
    monitor = ModelAPIMonitor(
        {
            "proxy_process": request.param,
            "target_host": "127.0.0.1",
            "target_port": model_api,
            "monitoring_host": "127.0.0.1",
            "monitoring_port": 0,
            "api_port": 0,
            "data_dir": str(tmp_path),
            "service_name": "iris-api",
        }
    )
    await monitor.start_monitoring()
    try:
        yield monitor
    finally:
        await monitor.stop_monitoring()


async def send(url: str, count: int) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(index: int) -> None:
            response = await client.post(
                "/v1/models/iris/predict" if index % 2 else f"/v1/models/wine/predict?n={index}",
                json={"instances": [[5.1, 3.5, 1.4, 0.2]] if index % 2 else [[13.0] * 13]},
                headers={"X-Model-Name": "iris" if index % 2 else "wine"},
            )
            statuses.append(response.status_code)

        for offset in range(0, count, 50):
            await asyncio.gather(*(one(i) for i in range(offset, min(count, offset + 50))))
    return statuses


async def test_every_request_is_counted_once(monitor: ModelAPIMonitor, tmp_path: Path) -> None:
    statuses = await send(monitor.proxy_url, 400)
    assert len(statuses) == 400
    await monitor.stop_monitoring()  # flushes the capture buffer into the store

    store = SQLiteStore(f"sqlite:///{tmp_path / 'modelmonitor.db'}")
    await store.connect()
    try:
        assert await store.count_events() == 400
        events = await store.recent_requests(RequestFilter(limit=1000))
        assert sorted(e.status for e in events) == sorted(statuses)
        assert {e.route for e in events} == {"/v1/models/iris/predict", "/v1/models/wine/predict"}
        assert {e.model for e in events} == {"iris", "wine"}
        assert all(e.service == "iris-api" and e.ttfb_seconds <= e.latency_seconds for e in events)
        rows = await store.rollups(start=0, end=time.time() + 60, service="iris-api")
        assert sum(row.requests for row in rows) == 400
        assert sum(row.errors for row in rows) == sum(s >= 500 for s in statuses)
    finally:
        await store.close()


async def test_percentiles_match_the_raw_events(monitor: ModelAPIMonitor) -> None:
    await send(monitor.proxy_url, 300)
    async with httpx.AsyncClient(base_url=monitor.api_url) as client:
        for _ in range(50):
            page = (await client.get("/api/v1/requests", params={"limit": 1000})).json()
            if len(page["requests"]) == 300:
                break
            await asyncio.sleep(0.1)
        latencies = sorted(r["latency_seconds"] for r in page["requests"])
        starts = [r["start"] for r in page["requests"]]
        step = 3600
        history = (
            await client.get(
                "/api/v1/metrics/historical",
                params={
                    "service": "iris-api",
                    "metric": "requests,p50,p99",
                    "start": str(math.floor(min(starts) / step) * step),
                    "end": str(max(starts) + 1),
                    "step": "1h",
                },
            )
        ).json()
    series = {s["metric"]: s["points"] for s in history["series"]}
    if len(series["requests"]) == 1:  # all inside one hour: one merged sketch to compare
        for metric, q in (("p50", 0.5), ("p99", 0.99)):
            exact = latencies[math.floor(q * (len(latencies) - 1))]
            assert series[metric][0][1] == pytest.approx(exact, rel=0.01)
    assert sum(v for _, v in series["requests"]) == 300


async def test_upstream_down_is_a_502_and_an_event(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    async with (
        ModelAPIMonitor(
            {
                "target_host": "127.0.0.1",
                "target_port": port,
                "monitoring_host": "127.0.0.1",
                "monitoring_port": 0,
                "api_port": 0,
                "data_dir": str(tmp_path),
            }
        ) as monitor,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(monitor.proxy_url + "/predict")
        assert response.status_code == 502
        assert "error" in response.json()
        for _ in range(50):
            found = (
                await client.get(
                    monitor.api_url + "/api/v1/requests", params={"errors_only": "true"}
                )
            ).json()["requests"]
            if found:
                break
            await asyncio.sleep(0.1)
    assert found[0]["error"] == "upstream_connect"
    assert found[0]["status"] == 502


def test_up_serves_then_flushes_on_sigterm(model_api: int, tmp_path: Path) -> None:
    proxy_port, api_port = free_port(), free_port()
    env = dict(os.environ, MODELMONITOR_TARGET=f"http://127.0.0.1:{model_api}")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelmonitor",
            "up",
            "--listen",
            f"127.0.0.1:{proxy_port}",
            "--api",
            f"127.0.0.1:{api_port}",
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_port(api_port)
        wait_port(proxy_port)
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy_port}") as client:
            for _ in range(120):
                assert client.get("/v1/models").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{proxy_port}" in out
    assert f"http://127.0.0.1:{api_port}" in out

    async def count() -> int:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'modelmonitor.db'}")
        await store.connect()
        try:
            return await store.count_events()
        finally:
            await store.close()

    assert asyncio.run(count()) == 120
