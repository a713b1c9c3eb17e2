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

from modelmonitor.events import PayloadSample, RequestEvent
from modelmonitor.quality.config import SamplingConfig

__all__ = ["HookStarter", "SampleSink", "SamplingHook", "sampling_hooks"]

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
    """One sampled exchange: the first ``limit`` bytes of each body."""

    __slots__ = ("limit", "request", "request_seen", "response", "response_seen", "sink")

    def __init__(self, limit: int, sink: SampleSink) -> None:
        self.limit = limit
        self.sink = sink
        self.request = bytearray()
        self.response = bytearray()
        self.request_seen = 0
        self.response_seen = 0

    def request_body(self, chunk: bytes) -> None:
        self.request_seen += len(chunk)
        room = self.limit - len(self.request)
        if room > 0:
            self.request += chunk[:room] if len(chunk) > room else chunk

    def response_body(self, chunk: bytes) -> None:
        self.response_seen += len(chunk)
        room = self.limit - len(self.response)
        if room > 0:
            self.response += chunk[:room] if len(chunk) > room else chunk

    def finish(self, event: RequestEvent) -> RequestEvent:
        self.sink.put(
            PayloadSample(
                event.id,
                bytes(self.request),
                bytes(self.response),
                self.request_seen > len(self.request),
                self.response_seen > len(self.response),
            )
        )
        return event


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
