"""Payload sampling on the proxy side: capped copies, the bounded sink, samples ride with events."""

from __future__ import annotations

import asyncio
import time

import msgspec

from modelmonitor.bus.memory import MemoryBus
from modelmonitor.events import (
    EventBatch,
    EventIdFactory,
    PayloadSample,
    ProxyStats,
    RequestEvent,
    decode_batch,
    encode_batch,
)
from modelmonitor.proxy.capture import CaptureBuffer, Shipper
from modelmonitor.proxy.sampling import SampleSink, sampling_hooks
from modelmonitor.quality.config import SamplingConfig

_ids = EventIdFactory()


def event() -> RequestEvent:
    return RequestEvent(_ids(), time.time(), "svc", "POST", "/p", "/p", 200, 0.01, 0.005, 10, 10)


def test_hook_copies_at_most_the_cap_and_marks_truncation() -> None:
    sink = SampleSink()
    start = sampling_hooks(SamplingConfig(rate=1.0, max_body_bytes=64), sink)
    assert start is not None
    hook = start("POST", "/p", 0.0)
    assert hook is not None
    for _ in range(10):
        hook.request_body(b"x" * 50)
    hook.response_body(b'{"ok": true}')
    e = event()
    assert hook.finish(e) is e
    [sample] = sink.pop_for([e])
    assert sample.request == b"x" * 64 and sample.request_truncated
    assert sample.response == b'{"ok": true}' and not sample.response_truncated
    assert len(sink) == 0 and sink.bytes == 0


def test_rate_decides_per_request_and_zero_means_off() -> None:
    sink = SampleSink()
    assert sampling_hooks(SamplingConfig(rate=0.0), sink) is None
    rolls = iter([0.1, 0.6, 0.29, 0.3])
    start = sampling_hooks(SamplingConfig(rate=0.3), sink, rng=lambda: next(rolls))
    assert start is not None
    assert [start("GET", "/", 0.0) is not None for _ in range(4)] == [True, False, True, False]


def test_sink_is_bounded_and_evicts_the_oldest() -> None:
    sink = SampleSink(max_bytes=100)
    events = [event() for _ in range(5)]
    for e in events:
        sink.put(PayloadSample(e.id, b"a" * 30, b"b" * 10))
    assert sink.bytes <= 100 and len(sink) == 2 and sink.dropped_total == 3
    assert [s.event_id for s in sink.pop_for(events)] == [events[3].id, events[4].id]


def test_old_batches_without_samples_still_decode() -> None:
    class OldBatch(msgspec.Struct, array_like=True):
        stats: ProxyStats
        events: list[RequestEvent]

    stats = ProxyStats("p", 1.0, 0, 10, 0, 0)
    old = msgspec.msgpack.encode(OldBatch(stats, [event()]))
    assert decode_batch(old).samples == []
    sample = PayloadSample("id", b"req", b"resp", True, False)
    new = decode_batch(encode_batch(EventBatch(stats, [event()], [sample])))
    assert new.samples == [sample]


async def test_shipper_sends_each_sample_with_its_event() -> None:
    bus = MemoryBus()
    await bus.connect()
    buffer = CaptureBuffer(1000)
    buffer.samples = SampleSink()
    shipper = Shipper(buffer, bus, proxy_id="p", batch_max_events=4, flush_interval_seconds=0.02)
    received: list[EventBatch] = []

    async def drain() -> None:
        async for delivery in bus.consume():
            received.append(decode_batch(delivery.body))
            await delivery.ack()

    consumer = asyncio.create_task(drain())
    await shipper.start()
    sent = [event() for _ in range(10)]
    for i, e in enumerate(sent):
        if i % 2 == 0:
            buffer.samples.put(PayloadSample(e.id, f"req{i}".encode(), b"resp"))
        buffer.append(e)
    for _ in range(200):
        if sum(len(b.events) for b in received) >= 10:
            break
        await asyncio.sleep(0.01)
    await shipper.stop()
    await bus.close()
    await consumer
    for batch in received:
        ids = {e.id for e in batch.events}
        assert all(s.event_id in ids for s in batch.samples)
    got = {s.event_id: s.request for b in received for s in b.samples}
    assert got == {sent[i].id: f"req{i}".encode() for i in range(0, 10, 2)}
    assert len(buffer.samples) == 0
