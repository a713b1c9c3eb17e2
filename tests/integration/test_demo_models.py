"""The demo model API speaks OpenAI chat completions and KServe V2, and ``demo traffic``
drives them with several consumers: through the proxy, everything is recognised."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import openai
import uvicorn

from modelmonitor.demo.kserve import DEMO_VERSIONS
from modelmonitor.demo.llm import DEMO_LLMS
from modelmonitor.demo.model_api import create_demo_app
from modelmonitor.demo.traffic import drive_traffic
from modelmonitor.protocols.awareness import ModelAwareness
from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import base_url, events, running_proxy


@contextlib.asynccontextmanager
async def demo_api() -> AsyncIterator[str]:
    app = create_demo_app(seed=3, base_latency_ms=1.0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_demo_traffic_shows_models_versions_tokens_and_consumers() -> None:
    async with demo_api() as url:
        config = ServiceConfig(name="demo", upstream=url)
        async with running_proxy(config, models=ModelAwareness(secret=b"d" * 32)) as (
            proxy,
            capture,
        ):
            target = base_url(proxy, "demo")
            async with openai.AsyncOpenAI(
                base_url=target + "/v1", api_key="k", max_retries=0
            ) as client:
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                usage = [c.usage async for c in stream if c.usage is not None]
            report = await drive_traffic(target, rps=60, duration=4, seed=5)
            for _ in range(200):
                if len(capture) >= report.sent + 1:
                    break
                await asyncio.sleep(0.05)
    recorded = events(capture)
    first = recorded[0]
    assert usage and first.completion_tokens == usage[0].completion_tokens
    assert first.ttft_seconds > first.ttfb_seconds and first.cost_usd > 0
    chats = [e for e in recorded if e.protocol == "openai" and e.task == "chat" and e.status == 200]
    assert {e.model for e in chats} == set(DEMO_LLMS)
    assert any(e.streamed for e in chats) and any(not e.streamed for e in chats)
    assert {"stop", "length"} <= {e.finish_reason for e in chats}
    assert all(e.completion_tokens > 0 for e in chats)
    v2 = [e for e in recorded if e.protocol == "kserve-v2" and e.status == 200]
    assert {(e.model, e.model_version) for e in v2} == set(DEMO_VERSIONS.items())
    consumers = {e.consumer for e in recorded[1:] if e.protocol}
    assert {"alice", "bob"} <= consumers
    assert len({c for c in consumers if c.startswith("key:")}) == 2
