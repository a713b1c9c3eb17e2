"""Opt-in payload sampling on the proxy: copy the first bytes of sampled bodies, nothing more.

A service with ``sampling.rate > 0`` starts a :class:`SamplingHook` for that share of
its requests. The hook copies at most ``max_body_bytes`` of each body as the chunks
pass (the stream is never held or parsed here) and, when the exchange ends, leaves a
:class:`~modelmonitor.events.PayloadSample` in the proxy's :class:`SampleSink`. The
shipper sends each sample in the same batch as its event; the worker redacts,
parses and profiles it (:mod:`modelmonitor.quality.processor`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from modelmonitor.events import PayloadSample, RequestEvent
from modelmonitor.quality.config import SamplingConfig

__all__ = [
    "BodyHooks",
    "HookStarter",
    "SampleSink",
    "SamplingHook",
    "sampling_hooks",
    "with_sampling",
]

#: ``(method, path, t0) -> hook or None`` (the body-inspection hook factory's shape).
HookStarter = Callable[[str, str, float], "SamplingHook | None"]


class SampleSink:
    """Samples waiting for their events to be shipped; bounded in bytes (oldest go first)."""

    __slots__ = ("_items", "bytes", "dropped_total", "max_bytes", "sampled_total")

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: dict[str, PayloadSample] = {}
        self.bytes = 0
        self.sampled_total = 0
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, sample: PayloadSample) -> None:
        size = len(sample.request) + len(sample.response)
        items = self._items
        # Samples whose events were dropped are never taken: evicting the oldest
        # keeps memory bounded whatever happens downstream.
        while items and self.bytes + size > self.max_bytes:
            oldest = items.pop(next(iter(items)))
            self.bytes -= len(oldest.request) + len(oldest.response)
            self.dropped_total += 1
        items[sample.event_id] = sample
        self.bytes += size
        self.sampled_total += 1

    def pop_for(self, events: Sequence[RequestEvent]) -> list[PayloadSample]:
        """Remove and return the samples of these events."""
        items = self._items
        if not items:
            return []
        found = []
        for event in events:
            sample = items.pop(event.id, None)
            if sample is not None:
                self.bytes -= len(sample.request) + len(sample.response)
                found.append(sample)
        return found


class SamplingHook:
    """One sampled exchange: the first ``limit`` bytes of each body.

    A body that arrives in one chunk within the cap (the common case for model
    APIs) is kept by reference, not copied; only later chunks are appended.
    """

    __slots__ = ("limit", "request", "request_seen", "response", "response_seen", "sink")

    def __init__(self, limit: int, sink: SampleSink) -> None:
        self.limit = limit
        self.sink = sink
        self.request: bytes | bytearray = b""
        self.response: bytes | bytearray = b""
        self.request_seen = 0
        self.response_seen = 0

    def _keep(self, kept: bytes | bytearray, chunk: bytes) -> bytes | bytearray:
        room = self.limit - len(kept)
        if room <= 0:
            return kept
        piece = chunk if len(chunk) <= room else chunk[:room]
        if not kept:
            return piece
        if isinstance(kept, bytes):
            kept = bytearray(kept)
        kept += piece
        return kept

    def request_body(self, chunk: bytes) -> None:
        self.request_seen += len(chunk)
        self.request = self._keep(self.request, chunk)

    def response_body(self, chunk: bytes) -> None:
        self.response_seen += len(chunk)
        self.response = self._keep(self.response, chunk)

    def finish(self, event: RequestEvent) -> RequestEvent:
        request, response = self.request, self.response
        self.sink.put(
            PayloadSample(
                event.id,
                request if isinstance(request, bytes) else bytes(request),
                response if isinstance(response, bytes) else bytes(response),
                self.request_seen > len(request),
                self.response_seen > len(response),
            )
        )
        return event


class BodyHooks(Protocol):
    """What the proxy calls on an exchange's hook (sampling, protocol measurements)."""

    def request_body(self, chunk: bytes) -> None: ...

    def response_body(self, chunk: bytes) -> None: ...

    def finish(self, event: RequestEvent) -> RequestEvent: ...


class _Both:
    """Two hooks on one exchange, fed in order."""

    __slots__ = ("first", "second")

    def __init__(self, first: BodyHooks, second: BodyHooks) -> None:
        self.first, self.second = first, second

    def request_body(self, chunk: bytes) -> None:
        self.first.request_body(chunk)
        self.second.request_body(chunk)

    def response_body(self, chunk: bytes) -> None:
        self.first.response_body(chunk)
        self.second.response_body(chunk)

    def finish(self, event: RequestEvent) -> RequestEvent:
        return self.second.finish(self.first.finish(event))


Starter = Callable[[str, str, float], Any]


def with_sampling(existing: Starter | None, sampling: Starter | None) -> Starter | None:
    """A hook starter running ``existing`` (if any) and then ``sampling`` (if any)."""
    if existing is None or sampling is None:
        return existing or sampling

    def start(method: str, path: str, t0: float) -> Any:
        first, second = existing(method, path, t0), sampling(method, path, t0)
        if first is None or second is None:
            return first or second
        return _Both(first, second)

    return start


def sampling_hooks(
    config: SamplingConfig, sink: SampleSink, *, rng: Callable[[], float] = random.random
) -> HookStarter | None:
    """The hook factory for a service, or None when it does not sample."""
    if not config.enabled:
        return None
    rate, limit = config.rate, config.max_body_bytes

    def start(method: str, path: str, t0: float) -> SamplingHook | None:
        if rate < 1.0 and rng() >= rate:
            return None
        return SamplingHook(limit, sink)

    return start
