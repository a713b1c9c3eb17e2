"""The official ``openai`` client through the proxy against an OpenAI-compatible server:
tokens, time to first token, finish reasons, cost and cut streams as recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from modelmonitor.events import RequestEvent
from modelmonitor.protocols.awareness import ModelAwareness
from modelmonitor.protocols.config import ModelPrice
from modelmonitor.protocols.pricing import PriceTable
from modelmonitor.proxy import CaptureBuffer, ProxyServer
from modelmonitor.settings import ServiceConfig
from tests.integration.openai_server import OpenAIServer, running_openai_server
from tests.integration.proxy_upstreams import base_url, events, running_proxy, wait_for_events

LLM = tuple[OpenAIServer, ProxyServer, CaptureBuffer]
PRICES = PriceTable({"local-llama": ModelPrice(input=0.5, output=1.5)})


@pytest.fixture
async def llm() -> AsyncIterator[LLM]:
    async with running_openai_server() as server:
        config = ServiceConfig(name="llm", upstream=f"http://127.0.0.1:{server.port}")
        models = ModelAwareness(prices=PRICES, secret=b"s" * 32)
        async with running_proxy(config, models=models) as (proxy, capture):
            yield server, proxy, capture


def client_for(proxy: ProxyServer, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=base_url(proxy, "llm") + "/v1",
        api_key="sk-test-never-stored",
        default_headers=headers,
        max_retries=0,
    )


async def one_event(capture: CaptureBuffer, count: int = 1) -> RequestEvent:
    await wait_for_events(capture, count)
    return events(capture)[count - 1]


async def test_chat_completion_tokens_cost_and_finish_reason(llm: LLM) -> None:
    server, proxy, capture = llm
    async with client_for(proxy) as client:
        answer = await client.chat.completions.create(
            model="local-llama", messages=[{"role": "user", "content": "Capital of France?"}]
        )
    event = await one_event(capture)
    assert answer.usage is not None
    assert (event.prompt_tokens, event.completion_tokens) == (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
    )
    assert server.usages[-1]["completion_tokens"] == event.completion_tokens
    assert not event.tokens_estimated and not event.streamed
    assert event.finish_reason == answer.choices[0].finish_reason == "length"
    assert (event.model, event.protocol, event.task) == ("local-llama", "openai", "chat")
    assert event.route == "/v1/chat/completions"
    assert event.cost_usd == pytest.approx(
        (event.prompt_tokens * 0.5 + event.completion_tokens * 1.5) / 1e6
    )
    assert event.ttft_seconds == 0.0


async def test_streaming_with_usage_ttft_differs_from_ttfb(llm: LLM) -> None:
    _, proxy, capture = llm
    async with client_for(proxy, **{"X-Test-First-Token-Ms": "120"}) as client:
        stream = await client.chat.completions.create(
            model="local-llama",
            messages=[{"role": "user", "content": "Capital of France?"}],
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage, reasons = "", None, []
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                if choice.finish_reason:
                    reasons.append(choice.finish_reason)
    event = await one_event(capture)
    assert usage is not None and text
    assert (event.prompt_tokens, event.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert event.streamed and not event.tokens_estimated
    assert event.finish_reason == reasons[-1] == "stop"
    # The role-only first chunk is the first byte; the first token came 120 ms later.
    assert event.ttfb_seconds < 0.1
    assert event.ttft_seconds >= 0.12
    assert event.ttft_seconds - event.ttfb_seconds >= 0.1
    assert event.ttft_seconds <= event.latency_seconds
    assert event.cost_usd == pytest.approx((usage.prompt_tokens * 0.5 + 12 * 1.5) / 1e6)


async def test_stream_without_usage_is_estimated(llm: LLM) -> None:
    _, proxy, capture = llm
    async with client_for(proxy) as client:
        stream = await client.chat.completions.create(
            model="local-llama", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream if c.choices and c.choices[0].delta.content]
    event = await one_event(capture)
    assert event.tokens_estimated and event.streamed
    assert event.completion_tokens == len(chunks) == 12
    assert event.prompt_tokens > 0
    assert event.finish_reason == "length"


async def test_a_stream_cut_mid_way_is_recorded_with_what_arrived(llm: LLM) -> None:
    _, proxy, capture = llm
    received = 0
    async with client_for(proxy, **{"X-Test-Cut": "5"}) as client:
        stream = await client.chat.completions.create(
            model="local-llama",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
        with pytest.raises(openai.APIError):  # the body ended early
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    received += 1
    event = await one_event(capture)
    assert received == 5
    assert event.error == "upstream_reset"
    assert event.streamed and event.tokens_estimated
    assert event.completion_tokens == 5
    assert event.finish_reason == ""
    assert event.ttft_seconds > 0


async def test_text_completions_embeddings_and_responses(llm: LLM) -> None:
    _, proxy, capture = llm
    async with client_for(proxy) as client:
        stream = await client.completions.create(
            model="local-llama", prompt="Say hi", stream=True, max_tokens=5
        )
        pieces = [c.choices[0].text async for c in stream if c.choices and c.choices[0].text]
        embedded = await client.embeddings.create(model="text-embedding-3-small", input="hello")
        response = await client.responses.create(model="gpt-4o", input="hello")
    await wait_for_events(capture, 3)
    completion, embedding, answered = events(capture)[:3]
    assert (completion.task, completion.completion_tokens) == ("completion", len(pieces))
    assert completion.tokens_estimated and completion.finish_reason == "length"
    assert (embedding.task, embedding.prompt_tokens) == ("embedding", embedded.usage.prompt_tokens)
    assert embedding.cost_usd == pytest.approx(embedded.usage.prompt_tokens * 0.02 / 1e6)
    assert response.usage is not None
    assert (answered.task, answered.prompt_tokens, answered.completion_tokens) == (
        "response",
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    assert answered.finish_reason == "length"
    assert answered.cost_usd == pytest.approx(
        (response.usage.input_tokens * 2.5 + response.usage.output_tokens * 10) / 1e6
    )
