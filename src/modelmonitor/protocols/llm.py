"""Language-model measurements from an OpenAI-compatible exchange, as it passes.

:class:`LLMMeter` is a body hook (see :mod:`modelmonitor.proxy.inspect`). It keeps a
bounded prefix of the request, and reads the response either as one JSON document
(a bounded head and tail) or as a server-sent-event stream scanned chunk by chunk:

- time to first token: when the first non-empty content delta arrives (a role-only
  first chunk is not a token);
- prompt and completion tokens from ``usage`` (the final chunk of a stream with
  ``stream_options.include_usage``); without one, the content deltas are counted
  and the prompt is estimated from its text, and the event says so;
- finish reason, streamed or not, the model the server answered with, and cost.

Per chunk, only C-level scans run (regex searches and counts over the new bytes);
JSON is decoded only for the ``usage`` object and for small complete answers.
"""

from __future__ import annotations

import json
import re
from time import perf_counter
from typing import Any

import msgspec

from modelmonitor.events import RequestEvent
from modelmonitor.protocols.pricing import PriceTable
from modelmonitor.protocols.recognise import Call
from modelmonitor.proxy.inspect import Capped
from modelmonitor.proxy.model import json_field

__all__ = ["DEFAULT_BUDGET", "LLMMeter", "read_usage"]

#: Bytes of the request and of a JSON answer's head kept per exchange.
DEFAULT_BUDGET = 64 * 1024
_TAIL = 8 * 1024
#: An SSE line longer than this is not inspected (its bytes still pass).
_MAX_LINE = 256 * 1024

_UNKNOWN, _JSON, _SSE, _OTHER = 0, 1, 2, 3
_SPACE = b" \t\r\n"
#: The JSON keys whose non-empty string values are text deltas, per task: each such
#: value is about one token. The first key is the usual one; the others (tool-call
#: arguments, reasoning) are looked for only in events without it.
_DELTA_KEYS = {
    "chat": (b"content", b"arguments", b"reasoning_content", b"reasoning"),
    "completion": (b"text",),
    "response": (b"delta",),
}
_COLON = (b'":"', b'": "')  # compact JSON (most servers) and Python's json.dumps spacing
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"([^"]{1,40})"')
_INCOMPLETE = re.compile(rb'"incomplete_details"\s*:\s*\{\s*"reason"\s*:\s*"([^"]{1,40})"')
_COMPLETED = re.compile(rb'"type"\s*:\s*"response\.completed"')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"]{1,200})"')
_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_RESPONSE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
_decoder = json.JSONDecoder()


def read_usage(usage: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens from a ``usage`` object (chat or Responses naming)."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return prompt, completion


def _usage_at(data: bytes, start: int) -> tuple[int, int] | None:
    """Decode the ``usage`` object whose ``{`` is at ``start``."""
    try:
        value, _ = _decoder.raw_decode(data[start : start + 4096].decode("utf-8", "replace"))
    except ValueError:
        return None
    return read_usage(value)


class LLMMeter:
    """Tokens, TTFT, finish reason and cost of one OpenAI-compatible exchange."""

    __slots__ = (
        "_carry",
        "_deltas",
        "_empty",
        "_first_at",
        "_head",
        "_kind",
        "_model",
        "_rare",
        "_reason",
        "_tail",
        "_usage",
        "call",
        "chunks",
        "prices",
        "request",
        "t0",
    )

    def __init__(self, call: Call, prices: PriceTable, t0: float, budget: int) -> None:
        self.call = call
        self.prices = prices
        self.t0 = t0
        self.request = Capped(budget)
        self._head = Capped(budget)
        self._tail = b""
        self._carry = b""
        self._kind = _UNKNOWN
        self._deltas: tuple[bytes, ...] = ()
        self._empty: tuple[bytes, ...] = ()
        self._rare: tuple[bytes, ...] = ()
        self._first_at = 0.0
        self._usage: tuple[int, int] | None = None
        self._reason = b""
        self._model = b""
        #: Content deltas seen in a stream.
        self.chunks = 0

    # -- feeding ----------------------------------------------------------------

    def request_body(self, chunk: bytes) -> None:
        self.request.add(chunk)

    def response_body(self, chunk: bytes) -> None:
        kind = self._kind
        if kind == _SSE:
            self._stream(chunk)
        elif kind == _JSON:
            self._head.add(chunk)
            if self._head.truncated:
                self._tail = (self._tail + chunk)[-_TAIL:]
        elif kind == _UNKNOWN:
            start = chunk.lstrip(_SPACE)[:1]
            if start:
                self._kind = _JSON if start in b"{[" else _SSE if start in b"de:ir" else _OTHER
                self.response_body(chunk)

    def _stream(self, chunk: bytes) -> None:
        """One piece of an event stream: a few ``bytes.count``/``find`` over its
        complete lines (an incomplete last line waits for the next piece)."""
        data = self._carry + chunk if self._carry else chunk
        end = data.rfind(b"\n") + 1
        if not end:
            self._carry = data if len(data) <= _MAX_LINE else b""
            return
        self._carry = data[end:] if end < len(data) else b""
        block = data[:end] if self._carry else data
        if not self._deltas and block.find(b'":') >= 0:
            self._learn_spacing(block)
        if not self._model and block.find(b'"model"') >= 0:
            found = _MODEL.search(block)
            if found:
                self._model = found[1]
        count = 0
        for opening, empty in zip(self._deltas, self._empty, strict=True):
            count = block.count(opening)
            if count:
                count -= block.count(empty)
                break
        if count > 0:
            if not self.chunks:
                self._first_at = perf_counter()
            self.chunks += count
        for marker in self._rare:
            if block.find(marker) >= 0:
                self._read_rare(block)
                break

    def _learn_spacing(self, block: bytes) -> None:
        colon = _COLON[1] if b'": ' in block else _COLON[0]
        keys = _DELTA_KEYS.get(self.call.task, _DELTA_KEYS["chat"])
        self._deltas = tuple(b'"' + key + colon for key in keys)
        self._empty = tuple(opening + b'"' for opening in self._deltas)
        usage = b'"usage' + colon[:-1] + b"{"
        if self.call.task == "response":
            self._rare = (b'"response.completed"', b'"response.incomplete"', usage)
        else:
            self._rare = (b"_reason" + colon, usage)

    def _read_rare(self, block: bytes) -> None:
        """An event with a finish reason or usage (the last ones of a stream)."""
        for match in _USAGE.finditer(block):
            self._usage = _usage_at(block, match.end() - 1) or self._usage
        self._scan_reason(block)
        if not self._reason and _COMPLETED.search(block):
            self._reason = b"stop"

    def _scan_reason(self, data: bytes) -> None:
        reasons = _FINISH.findall(data)
        if reasons:
            self._reason = reasons[-1]
        incomplete = _INCOMPLETE.search(data)
        if incomplete:
            self._reason = _RESPONSE_REASONS.get(incomplete[1].decode(), "").encode()

    # -- the end ----------------------------------------------------------------

    def finish(self, event: RequestEvent) -> RequestEvent:
        call = self.call
        streamed = self._kind == _SSE
        if self._kind == _JSON:
            self._read_json()
        request_model = event.model or call.model or self._request_model()
        answered = self._model.decode("utf-8", "replace")
        model = request_model or answered
        version = event.model_version or (answered if answered != model else "")
        prompt = completion = 0
        estimated = False
        if self._usage is not None:
            prompt, completion = self._usage
        elif 200 <= event.status < 300 or (streamed and self.chunks):
            prompt, completion, estimated = self._estimate(), self.chunks, True
        ttft = self._first_at - self.t0 if self._first_at else 0.0
        return msgspec.structs.replace(
            event,
            model=model,
            model_version=version,
            protocol=call.protocol,
            task=call.task,
            prompt_tokens=prompt,
            completion_tokens=completion,
            tokens_estimated=estimated,
            ttft_seconds=max(ttft, 0.0),
            finish_reason=self._reason.decode("ascii", "replace"),
            streamed=streamed,
            cost_usd=self.prices.cost(model, prompt, completion)
            or self.prices.cost(answered, prompt, completion),
        )

    def _read_json(self) -> None:
        head = self._head
        body = bytes(head.data)
        if not head.truncated:
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            if isinstance(document, dict):
                self._read_document(document)
                return
        found = _MODEL.search(body)
        if found:
            self._model = found[1]
        tail = self._tail or body
        usage = list(_USAGE.finditer(tail))
        if usage:
            self._usage = _usage_at(tail, usage[-1].end() - 1)
        self._scan_reason(tail)
        if not self._reason:
            self._scan_reason(body)

    def _read_document(self, document: dict[str, Any]) -> None:
        model = document.get("model")
        if isinstance(model, str):
            self._model = model.encode()
        self._usage = read_usage(document.get("usage"))
        choices = document.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[-1], dict):
            reason = choices[-1].get("finish_reason")
            if isinstance(reason, str):
                self._reason = reason.encode()
        status = document.get("status")
        if status == "completed":
            self._reason = b"stop"
        elif status == "incomplete":
            details = document.get("incomplete_details") or {}
            reason = details.get("reason", "") if isinstance(details, dict) else ""
            self._reason = _RESPONSE_REASONS.get(reason, "length").encode()
        if self._usage is None and isinstance(choices, list) and choices:
            # A complete answer without usage: about four characters of text per token.
            self.chunks = max(1, len(json.dumps(choices, ensure_ascii=False)) // 4)

    def _request_model(self) -> str:
        return json_field(bytes(self.request.data), "model") if self.request.seen else ""

    def _estimate(self) -> int:
        """Prompt tokens from the request's size (about four bytes of text per token)."""
        return (self.request.seen + 3) // 4
