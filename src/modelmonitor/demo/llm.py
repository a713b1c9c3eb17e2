"""The demo's OpenAI-compatible chat completions: several models, JSON and streaming
answers with ``usage`` and finish reasons, and LLM-like timing (a prefill delay that
grows with the prompt, then a steady pace per token)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

__all__ = ["DEMO_LLMS", "add_chat_routes"]

#: Model name -> (seconds per output token, prefill seconds per prompt token).
DEMO_LLMS: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.012, 0.0004),
    "mistral-small-latest": (0.018, 0.0006),
    "llama-3.1-8b-instruct": (0.025, 0.0010),
}
_WORDS = (
    "the",
    "model",
    "answers",
    "quickly",
    "and",
    "the",
    "monitor",
    "measures",
    "every",
    "token",
    "it",
    "streams",
    "back",
    "to",
    "the",
    "caller",
    "while",
    "latency",
    "stays",
    "low",
    "and",
    "costs",
    "stay",
    "visible",
    "per",
    "consumer",
)


class Message(BaseModel):
    role: str
    content: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    stream: bool = False
    stream_options: StreamOptions | None = None


def _prompt_tokens(body: ChatRequest) -> int:
    return 4 + sum(len((m.content or "").split()) * 4 // 3 + 4 for m in body.messages)


def add_chat_routes(
    app: FastAPI, *, rng: random.Random, behave: Callable[[], Awaitable[None]]
) -> None:
    """``POST /v1/chat/completions`` on ``app``."""

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        if body.model not in DEMO_LLMS:
            raise HTTPException(status_code=404, detail=f"unknown model {body.model!r}")
        await behave()
        per_token, per_prompt = DEMO_LLMS[body.model]
        prompt = _prompt_tokens(body)
        wanted = rng.randint(8, 80)
        limit = body.max_tokens or 4096
        count = min(wanted, limit)
        reason = "length" if wanted > limit else "stop"
        if rng.random() < 0.01:
            count, reason = rng.randint(1, 5), "content_filter"
        words = [rng.choice(_WORDS) for _ in range(count)]
        usage = {"prompt_tokens": prompt, "completion_tokens": count}
        usage["total_tokens"] = prompt + count
        head = {"id": f"chatcmpl-{rng.getrandbits(48):x}", "created": int(time.time())}
        head["model"] = body.model
        prefill = 0.05 + prompt * per_prompt * rng.uniform(0.7, 1.5)
        if not body.stream:
            await asyncio.sleep(prefill + count * per_token)
            message = {"role": "assistant", "content": " ".join(words)}
            choice = {"index": 0, "message": message, "finish_reason": reason}
            return {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        async def events() -> AsyncIterator[bytes]:
            base = {**head, "object": "chat.completion.chunk"}

            def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
                return f"data: {json.dumps({**base, 'choices': choices, **extra})}\n\n".encode()

            yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
            await asyncio.sleep(prefill)
            for index, word in enumerate(words):
                text = word if index == 0 else " " + word
                yield event([{"index": 0, "delta": {"content": text}, "finish_reason": None}])
                await asyncio.sleep(per_token * rng.uniform(0.6, 1.4))
            yield event([{"index": 0, "delta": {}, "finish_reason": reason}])
            if include_usage:
                yield event([], usage=usage)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
