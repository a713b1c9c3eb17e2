"""LLMMeter on exact wire bytes: any chunking gives the same figures, memory stays bounded."""

from __future__ import annotations

import json
import random
from time import perf_counter

import pytest

from modelmonitor.events import RequestEvent
from modelmonitor.protocols.config import ProtocolName
from modelmonitor.protocols.llm import LLMMeter
from modelmonitor.protocols.pricing import PriceTable
from modelmonitor.protocols.recognise import Recogniser

CHAT = Recogniser(ProtocolName.AUTO).recognise("/v1/chat/completions")
BASE = RequestEvent(
    "id",
    0.0,
    "svc",
    "POST",
    "/v1/chat/completions",
    "/v1/chat/completions",
    200,
    1.0,
    0.01,
    100,
    1000,
)


def sse(tokens: int, *, usage: bool, spaces: bool = False) -> bytes:
    sep = (", ", ": ") if spaces else (",", ":")
    chunks = [
        {"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    ]
    chunks += [
        {"model": "m", "choices": [{"index": 0, "delta": {"content": f'w{i} "q"'}}]}
        for i in range(tokens)
    ]
    chunks.append({"model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        chunks.append(
            {
                "model": "m",
                "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": tokens},
            }
        )
    lines = [f"data: {json.dumps(c, separators=sep)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def run(body: bytes, pieces: list[int], request: bytes = b'{"model":"m"}') -> RequestEvent:
    assert CHAT is not None
    meter = LLMMeter(CHAT, PriceTable(), perf_counter(), 64 * 1024)
    meter.request_body(request)
    offset = 0
    for size in pieces:
        meter.response_body(body[offset : offset + size])
        offset += size
    meter.response_body(body[offset:])
    return meter.finish(BASE)


@pytest.mark.parametrize("spaces", [False, True])
def test_any_chunking_gives_the_same_figures(spaces: bool) -> None:
    body = sse(40, usage=False, spaces=spaces)
    whole = run(body, [])
    assert (whole.completion_tokens, whole.finish_reason, whole.model) == (40, "stop", "m")
    assert whole.tokens_estimated and whole.streamed and whole.ttft_seconds > 0
    rng = random.Random(4)
    for _ in range(30):
        pieces = [rng.randint(1, 90) for _ in range(len(body) // 40)]
        split = run(body, pieces)
        assert (split.completion_tokens, split.finish_reason, split.model) == (40, "stop", "m")
    byte_by_byte = run(body, [1] * len(body))
    assert byte_by_byte.completion_tokens == 40


def test_usage_in_the_last_chunk_wins_over_counting() -> None:
    event = run(sse(7, usage=True), [13] * 200)
    assert (event.prompt_tokens, event.completion_tokens, event.tokens_estimated) == (9, 7, False)


def test_a_long_json_answer_reads_usage_from_its_tail() -> None:
    text = "x" * 300_000
    answer = {
        "id": "c",
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 70_000, "total_tokens": 70_011},
    }
    body = json.dumps(answer).encode()
    event = run(body, [4096] * (len(body) // 4096), request=b'{"model":"gpt-4o"}')
    assert (event.prompt_tokens, event.completion_tokens) == (11, 70_000)
    assert (event.finish_reason, event.model, event.model_version) == (
        "length",
        "gpt-4o",
        "gpt-4o-2024-08-06",
    )
    assert event.cost_usd == pytest.approx((11 * 2.5 + 70_000 * 10) / 1e6)


def test_memory_stays_bounded_for_a_line_without_end() -> None:
    assert CHAT is not None
    meter = LLMMeter(CHAT, PriceTable(), perf_counter(), 1024)
    meter.response_body(b"data: {")
    for _ in range(200):
        meter.response_body(b"a" * 10_000)  # one endless line: 2 MB
    assert len(meter._carry) <= 256 * 1024
    meter.request_body(b"y" * 100_000)
    assert len(meter.request.data) == 1024 and meter.request.truncated


def test_prices_match_the_longest_priced_prefix() -> None:
    prices = PriceTable()
    assert prices.price("gpt-4o-mini-2024-07-18") == prices.price("gpt-4o-mini")
    assert prices.price("gpt-4o-2024-08-06") == prices.price("gpt-4o")
    assert prices.price("openai/gpt-4.1") == prices.price("gpt-4.1")
    assert prices.price("gpt-4oo") is None and prices.price("llama-3") is None
    assert prices.cost("llama-3", 10, 10) == 0.0


def test_a_streamed_responses_api_answer() -> None:
    call = Recogniser(ProtocolName.AUTO).recognise("/v1/responses")
    assert call is not None
    events = [
        ("response.created", {"response": {"id": "r", "model": "gpt-4o", "status": "in_progress"}}),
        *[
            ("response.output_text.delta", {"item_id": "m", "delta": word})
            for word in ["Hi", " there", ""]
        ],
        ("response.output_text.done", {"item_id": "m", "text": "Hi there"}),
        (
            "response.completed",
            {
                "response": {
                    "id": "r",
                    "model": "gpt-4o",
                    "status": "completed",
                    "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
                }
            },
        ),
    ]
    body = "".join(
        f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n" for name, data in events
    ).encode()
    meter = LLMMeter(call, PriceTable(), perf_counter(), 4096)
    for offset in range(0, len(body), 7):
        meter.response_body(body[offset : offset + 7])
    event = meter.finish(BASE)
    assert (event.prompt_tokens, event.completion_tokens, event.tokens_estimated) == (5, 2, False)
    assert (event.finish_reason, event.model, event.task) == ("stop", "gpt-4o", "response")
    assert meter.chunks == 2 and event.ttft_seconds > 0
