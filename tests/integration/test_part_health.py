"""A lone proxy and a lone worker answer GET /health for orchestrators' probes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from tests.integration.services_support import Backends, free_port


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "modelmonitor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def health(port: int) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                return await client.get(f"http://127.0.0.1:{port}/health")
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answered on {port}")


async def test_proxy_and_worker_report_their_health(backends: Backends) -> None:
    proxy_health, worker_health = free_port(), free_port()
    common = ["--broker", backends.broker_url]
    proxy = start(
        "proxy",
        *common,
        "--target",
        "http://127.0.0.1:1",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--health",
        f"127.0.0.1:{proxy_health}",
    )
    worker = start(
        "worker",
        *common,
        "--database",
        backends.database_url,
        "--cache",
        backends.cache_url,
        "--health",
        f"127.0.0.1:{worker_health}",
    )
    try:
        proxy_answer = await health(proxy_health)
        worker_answer = await health(worker_health)
    finally:
        for process in (proxy, worker):
            process.terminate()
        outputs = [process.communicate(timeout=30) for process in (proxy, worker)]
    assert proxy_answer.status_code == 200, proxy_answer.text
    assert worker_answer.status_code == 200, worker_answer.text
    proxy_body, worker_body = proxy_answer.json(), worker_answer.json()
    assert proxy_body["status"] == "ok"
    assert set(proxy_body["components"]) == {"bus", "proxy"}
    assert proxy_body["components"]["proxy"]["detail"] == (
        "buffer 0/100000, 0 dropped, 0 open tunnels, 0 unrouted (404)"
    )
    assert worker_body["components"]["worker"]["status"] == "ok"
    assert worker_body["components"]["bus"]["status"] == "ok"
    assert f"http://127.0.0.1:{proxy_health}/health" in outputs[0][0]


async def test_health_says_so_when_the_worker_consumer_dies(tmp_path: Path) -> None:
    """The worker's pump stops (its bus closed under it): /health turns down and names it."""
    settings = load_settings(data_dir=tmp_path, api="127.0.0.1:0", target="http://127.0.0.1:1")
    runtime = Runtime(settings, parts=Parts(proxy=False, worker=True, api=True))
    await runtime.start()
    try:
        assert runtime.bus is not None and runtime.api_url is not None
        async with httpx.AsyncClient(base_url=runtime.api_url) as client:
            assert (await client.get("/health")).json()["components"]["worker"]["status"] == "ok"
            await runtime.bus.close()
            for _ in range(100):
                response = await client.get("/health")
                if response.json()["components"]["worker"]["status"] == "down":
                    break
                await asyncio.sleep(0.05)
        assert response.status_code == 503
        worker = response.json()["components"]["worker"]
        assert worker["status"] == "down"
        assert "pump failed (stopped unexpectedly)" in worker["detail"]
    finally:
        await runtime.stop()
