"""Sampling end to end through the proxy: a scikit-learn model served by the demo (MLflow's
``/invocations`` protocol), traffic from the training distribution, then shifted; and
secrets sent in bodies reach neither the store, the logs nor the API."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelmonitor.demo.tabular import feature_names, traffic_rows
from modelmonitor.runtime import Runtime
from modelmonitor.settings import load_settings
from tests.integration.test_end_to_end import free_port, wait_port

SECRETS = [
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "4000056655665556",
    "sk-live-0123456789abcdefABCDEF",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
]


@pytest.fixture(scope="module")
def demo() -> Iterator[int]:
    import subprocess
    import sys

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


@pytest.fixture
async def runtime(demo: int, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = load_settings(
        data_dir=tmp_path,
        api="127.0.0.1:0",
        listen="127.0.0.1:0",
        quality_bucket_seconds=1,
        services=[
            {
                "name": "wine",
                "upstream": f"http://127.0.0.1:{demo}",
                "sampling": {"rate": 1.0, "max_body_bytes": 65536},
            }
        ],
    )
    rt = Runtime(settings)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def score(
    client: httpx.AsyncClient, requests: int, rng: np.random.Generator, **shift: Any
) -> None:
    columns = feature_names()

    async def one() -> None:
        rows = traffic_rows(20, rng=rng, **shift)
        body = {
            "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
        }
        response = await client.post("/invocations", json=body)
        assert response.status_code in (200, 503)

    for start in range(0, requests, 20):
        await asyncio.gather(*(one() for _ in range(min(20, requests - start))))


async def all_profiled(rt: Runtime, requests: int) -> None:
    for _ in range(600):
        if rt.quality.stats.samples_total >= requests:
            await rt.quality.flush()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"only {rt.quality.stats.samples_total} of {requests} samples reached the worker"
    )


async def test_shifted_features_and_only_they_drift(runtime: Runtime) -> None:
    proxy = f"http://{runtime.proxy_addresses['wine']}"
    rng = np.random.default_rng(3)
    async with httpx.AsyncClient(base_url=proxy, timeout=30) as client:
        steady_from = time.time() - 1
        await score(client, 400, rng)
        await all_profiled(runtime, 400)
        await asyncio.sleep(1.1)  # past the steady requests' last profile bucket
        # Start the shift on a bucket boundary, so no 1 s bucket holds both kinds.
        now = time.time()
        shifted_from = float(math.ceil(now))
        await asyncio.sleep(shifted_from - now + 0.01)
        await score(
            client,
            200,
            rng,
            shift={"magnesium": 0.6},
            channel_shares={"web": 0.3, "app": 0.2, "partner": 0.5},
        )
        await all_profiled(runtime, 600)
    async with httpx.AsyncClient(base_url=runtime.api_url, timeout=30) as api:
        pinned = await api.put(
            "/api/v1/services/wine/references/steady",
            json={"start": str(steady_from), "end": str(shifted_from - 0.5)},
        )
        assert pinned.status_code == 201, pinned.text
        answer = await api.get(
            "/api/v1/services/wine/drift",
            params={"reference": "steady", "start": str(shifted_from), "end": "now"},
        )
        assert answer.status_code == 200, answer.text
        report = answer.json()["report"]
        assert report["reference_rows"] >= 7000 and report["current_rows"] >= 3500
        drifted = {f["name"] for f in report["features"] if f["drifted"]}
        assert drifted == {"magnesium", "channel"}, [
            (f["name"], f["score"]) for f in report["features"]
        ]
        methods = {f["name"]: f["method"] for f in report["features"]}
        assert methods["magnesium"] == "wasserstein" and methods["channel"] == "jensenshannon"
        assert {o["name"] for o in report["outputs"]} == {"prediction"}
        html = await api.get(
            "/api/v1/services/wine/drift",
            params={"reference": "steady", "start": str(shifted_from), "format": "html"},
        )
        assert "magnesium" in html.text and "DRIFT" in html.text
        sampled = (
            await api.get(
                "/api/v1/requests", params={"service": "wine", "sampled": "true", "limit": 5}
            )
        ).json()
        assert len(sampled["requests"]) == 5 and sampled["next_cursor"]
        one = (await api.get(f"/api/v1/samples/{sampled['requests'][0]['id']}")).json()
        assert one["event"]["route"] == "/invocations" and "dataframe_split" in one["request"]
        assert one["features"]["channel"] in {"web", "app", "partner"}


async def test_secrets_in_bodies_reach_no_store_log_or_answer(
    runtime: Runtime,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = f"http://{runtime.proxy_addresses['wine']}"
    rows = traffic_rows(len(SECRETS), rng=np.random.default_rng(0))
    async with httpx.AsyncClient(base_url=proxy, timeout=30) as client:
        for row, secret in zip(rows, SECRETS, strict=True):
            record = {**row, "contact": f"reach me at {secret} please", "api_key": secret}
            answer = await client.post("/invocations", json={"dataframe_records": [record]})
            assert answer.status_code in (200, 503)
        # A body that is not JSON is scrubbed as text.
        await client.post("/invocations", content=f"contact={SECRETS[0]}&card={SECRETS[1]}")
    await all_profiled(runtime, len(SECRETS) + 1)
    async with httpx.AsyncClient(base_url=runtime.api_url, timeout=30) as api:
        answers = [
            (await api.get("/api/v1/samples", params={"service": "wine", "limit": 50})).text,
            (await api.get("/api/v1/requests", params={"service": "wine", "sampled": "true"})).text,
            (await api.get("/api/v1/requests", params={"service": "wine"})).text,
            (await api.get("/api/v1/services/wine/drift", params={"start": "-1h"})).text,
        ]
        found = (await api.get("/api/v1/samples", params={"contains": "reach me at"})).json()
    assert len(found["samples"]) == len(SECRETS)
    assert "[email]" in answers[0] and "[card]" in answers[0] and "[token]" in answers[0]
    await runtime.stop()  # flush everything to disk before reading it
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    logs = caplog.text + "".join(capfd.readouterr())
    for secret in SECRETS:
        for haystack, where in ((stored, "store"),):
            assert secret.encode() not in haystack, where
            assert secret.replace(" ", "").encode() not in haystack, where
        assert secret not in logs
        assert all(secret not in text for text in answers)
