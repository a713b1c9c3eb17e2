"""Consumers through the proxy: configured headers, hashed API keys with labels, and the
client address from trusted proxies only. The raw key is never recorded."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest

from modelmonitor.bus.memory import MemoryBus
from modelmonitor.events import EventBatch, ProxyStats, encode_batch
from modelmonitor.protocols.awareness import ModelAwareness
from modelmonitor.protocols.config import ConsumerConfig
from modelmonitor.protocols.consumers import hash_key, load_secret
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import ServiceConfig, load_settings
from tests.integration.openai_server import running_openai_server
from tests.integration.proxy_upstreams import (
    Request,
    base_url,
    events,
    running_proxy,
    running_upstream,
    wait_for_events,
)

SECRET = b"k" * 32
KEY = "sk-live-THE-RAW-KEY-0123456789"


async def ok(request: Request, _: asyncio.StreamReader, writer: Any) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
    return True


async def record(consumers: ConsumerConfig, *requests: dict[str, Any]) -> list[Any]:
    async with running_upstream(ok) as upstream:
        config = ServiceConfig(name="svc", upstream=upstream.url, consumers=consumers)
        models = ModelAwareness(secret=SECRET)
        async with running_proxy(config, models=models) as (proxy, capture):
            async with httpx.AsyncClient(base_url=base_url(proxy, "svc")) as client:
                for request in requests:
                    await client.post("/v1/chat/completions", content=b"{}", **request)
            await wait_for_events(capture, len(requests))
    assert all(r.header("authorization") in (None, f"Bearer {KEY}") for r in upstream.requests)
    return events(capture)


async def test_header_key_hash_labels_and_nothing_raw() -> None:
    hashed = hash_key(SECRET, KEY.encode())
    consumers = ConsumerConfig(headers=["X-Tenant"], labels={hashed: "search-team"})
    recorded = await record(
        consumers,
        {"headers": {"X-Tenant": "acme", "Authorization": f"Bearer {KEY}"}},
        {"headers": {"Authorization": f"Bearer {KEY}"}},
        {"headers": {"api-key": "other-key"}},
        {"headers": {"x-api-key": "third-key"}},
        {},
    )
    assert [e.consumer for e in recorded] == [
        "acme",
        "search-team",
        hash_key(SECRET, b"other-key"),
        hash_key(SECRET, b"third-key"),
        "",
    ]
    assert recorded[2].consumer.startswith("key:") and len(recorded[2].consumer) == 16
    wire = encode_batch(EventBatch(stats=ProxyStats("p", 0.0, 0, 1, 0, 0), events=recorded))
    assert KEY.encode() not in wire and b"other-key" not in wire
    assert KEY not in msgspec.json.encode(recorded).decode()


async def test_forwarded_addresses_count_only_from_trusted_proxies() -> None:
    spoof = {"headers": {"X-Forwarded-For": "203.0.113.9"}}
    untrusted = await record(ConsumerConfig(), spoof)
    assert untrusted[0].client == "127.0.0.1"
    chain = {"headers": {"X-Forwarded-For": "198.51.100.7, 10.0.0.5"}}
    forwarded = {"headers": {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}}
    trusted = await record(
        ConsumerConfig(trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"]), spoof, chain, forwarded, {}
    )
    assert [e.client for e in trusted] == [
        "203.0.113.9",
        "198.51.100.7",
        "2001:db8::1",
        "127.0.0.1",
    ]


def test_the_secret_is_made_once_and_kept_private(tmp_path: Any) -> None:
    first = load_secret(tmp_path)
    assert load_secret(tmp_path) == first and len(first) == 32
    assert (tmp_path / "consumer-secret").stat().st_mode & 0o077 == 0
    assert load_secret(tmp_path, "given") == b"given"


async def test_an_api_key_reaches_no_byte_of_store_bus_logs_or_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    published: list[bytes] = []
    original = MemoryBus.publish

    async def spy(self: MemoryBus, body: bytes) -> None:
        published.append(body)
        await original(self, body)

    monkeypatch.setattr(MemoryBus, "publish", spy)
    async with running_openai_server() as server:
        settings = load_settings(
            data_dir=tmp_path / "data",
            api="127.0.0.1:0",
            listen="127.0.0.1:0",
            target=f"http://127.0.0.1:{server.port}",
            target_name="llm",
            log_level="debug",
        )
        runtime = Runtime(settings, parts=Parts())
        await runtime.start()
        try:
            proxy = f"http://{runtime.proxy_addresses['llm']}"
            async with openai.AsyncOpenAI(
                base_url=proxy + "/v1", api_key=KEY, max_retries=0
            ) as client:
                await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}]
                )
                stream = await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                _ = [chunk async for chunk in stream]
            answers = await _api_answers(runtime)
        finally:
            await runtime.stop()
    consumer = hash_key(load_secret(tmp_path / "data"), KEY.encode())
    assert consumer in answers  # the hashed name is what the API shows
    needles = [KEY.encode(), KEY.encode()[3:20]]
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), path
    assert published and not any(n in body for body in published for n in needles)
    assert not any(n in answers.encode() for n in needles)
    assert KEY not in caplog.text


async def _api_answers(runtime: Runtime) -> str:
    assert runtime.store is not None and runtime.api_url is not None
    for _ in range(200):
        if await runtime.store.count_events() >= 2:
            break
        await asyncio.sleep(0.05)
    texts = []
    async with httpx.AsyncClient(base_url=runtime.api_url) as client:
        for path, params in (
            ("/api/v1/requests", {}),
            ("/api/v1/requests", {"format": "csv"}),
            ("/api/v1/metrics/realtime", {}),
            ("/api/v1/services", {}),
            ("/metrics", {}),
        ):
            response = await client.get(path, params=params)
            assert response.status_code == 200, path
            texts.append(response.text)
    return "\n".join(texts)
