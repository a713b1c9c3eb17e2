"""A small OpenAI-compatible server for the tests (raw asyncio, port 0), speaking the
exact wire shapes vLLM and OpenAI send: chat and text completions, JSON and
server-sent events (role-only first chunk, ``stream_options.include_usage``),
embeddings and the Responses API. Headers steer it: ``X-Test-First-Token-Ms``
delays the first content chunk, ``X-Test-Cut`` drops the connection after that many
content chunks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from tests.integration.proxy_upstreams import Request, read_request

__all__ = ["OpenAIServer", "running_openai_server", "words_of"]

_WORDS = ["Paris", " is", " the", " capital", " of", " France", ".", " It", " has", " museums"]


def words_of(count: int) -> list[str]:
    return [_WORDS[i % len(_WORDS)] for i in range(count)]


def _prompt_tokens(body: dict[str, Any]) -> int:
    text = json.dumps(body.get("messages") or body.get("prompt") or body.get("input") or "")
    return 3 + len(text.split())


class OpenAIServer:
    def __init__(self) -> None:
        self.usages: list[dict[str, int]] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                if not await self._answer(request, writer):
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        body = json.loads(request.body or b"{}")
        path = request.target.partition("?")[0]
        model = body.get("model", "")
        prompt = _prompt_tokens(body)
        if path == "/v1/embeddings":
            usage = {"prompt_tokens": prompt, "total_tokens": prompt}
            self.usages.append(usage)
            data = [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]}]
            answer = {"object": "list", "data": data, "model": model, "usage": usage}
            self._json(writer, answer)
            return True
        max_tokens = int(body.get("max_tokens") or body.get("max_output_tokens") or 12)
        count = min(max_tokens, 12)
        reason = "length" if max_tokens <= 12 else "stop"
        usage = {"prompt_tokens": prompt, "completion_tokens": count}
        usage["total_tokens"] = prompt + count
        if path == "/v1/responses":
            self._json(writer, self._response(model, prompt, count, max_tokens))
            return True
        self.usages.append(usage)
        kind = "chat.completion" if path == "/v1/chat/completions" else "text_completion"
        if not body.get("stream"):
            text = "".join(words_of(count))
            choice: dict[str, Any] = {"index": 0, "finish_reason": reason, "logprobs": None}
            if kind == "chat.completion":
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            answer = {
                "id": "cmpl-1",
                "object": kind,
                "created": int(time.time()),
                "model": model + "-2024-08-06" if model.startswith("gpt") else model,
                "choices": [choice],
                "usage": usage,
            }
            self._json(writer, answer)
            return True
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(request, writer, kind, model, count, reason, usage, include_usage)

    def _response(self, model: str, prompt: int, count: int, max_tokens: int) -> dict[str, Any]:
        usage = {"input_tokens": prompt, "output_tokens": count, "total_tokens": prompt + count}
        self.usages.append({"prompt_tokens": prompt, "completion_tokens": count})
        incomplete = max_tokens <= 12
        return {
            "id": "resp_1",
            "object": "response",
            "created_at": int(time.time()),
            "model": model,
            "status": "incomplete" if incomplete else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "".join(words_of(count))}],
                }
            ],
            "usage": usage,
        }

    async def _stream(
        self,
        request: Request,
        writer: asyncio.StreamWriter,
        kind: str,
        model: str,
        count: int,
        reason: str,
        usage: dict[str, int],
        include_usage: bool,
    ) -> bool:
        first_delay = float(request.header("X-Test-First-Token-Ms") or 0) / 1000
        cut = int(request.header("X-Test-Cut") or -1)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )

        def send(payload: dict[str, Any] | str) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            data = f"data: {text}\n\n".encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))

        chat = kind == "chat.completion"
        base = {"id": "chatcmpl-1", "object": kind + ".chunk", "created": 1, "model": model}
        if include_usage:
            base["usage"] = None  # as OpenAI sends: null on every chunk but the last
        if chat:
            role = {"index": 0, "delta": {"role": "assistant", "content": ""}}
            send({**base, "choices": [{**role, "logprobs": None, "finish_reason": None}]})
        await writer.drain()
        await asyncio.sleep(first_delay)
        for index, word in enumerate(words_of(count)):
            if index == cut:
                await writer.drain()
                writer.transport.abort()
                return False
            piece = {"delta": {"content": word}} if chat else {"text": word}
            send({**base, "choices": [{"index": 0, **piece, "finish_reason": None}]})
            await writer.drain()
            await asyncio.sleep(0.002)
        end = {"delta": {}} if chat else {"text": ""}
        send({**base, "choices": [{"index": 0, **end, "finish_reason": reason}]})
        if include_usage:
            send({**base, "choices": [], "usage": usage})
        send("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    @staticmethod
    def _json(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(data), data)
        )


@contextlib.asynccontextmanager
async def running_openai_server() -> AsyncIterator[OpenAIServer]:
    server_state = OpenAIServer()
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    server_state.port = server.sockets[0].getsockname()[1]
    try:
        yield server_state
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)
