"""The OTLP exporter never holds ingestion back: a bounded queue, counted drops."""

from __future__ import annotations

import asyncio
import socket

from modelmonitor.telemetry._otlp import OtlpExporter, request_spans
from tests.helpers import make_events


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_collector_costs_counted_drops_not_waiting() -> None:
    exporter = OtlpExporter(
        f"http://127.0.0.1:{closed_port()}", max_queue=100, flush_seconds=0.05, metrics=False
    )
    await exporter.start()
    try:
        exporter.submit(make_events(250, start=0.0))  # returns at once, 150 past the bound
        assert exporter.stats.spans_dropped == 150
        for _ in range(100):
            if exporter.stats.export_failures:
                break
            await asyncio.sleep(0.05)
    finally:
        await exporter.stop()
    assert exporter.stats.export_failures >= 1
    assert exporter.stats.spans_exported == 0
    assert exporter.stats.spans_dropped == 250


def test_spans_keep_the_trace_context_the_proxy_stamped() -> None:
    import msgspec

    (event,) = make_events(1, start=100.0)
    event = msgspec.structs.replace(
        event,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        parent_span_id="a3ce929d0e0e4736",
    )
    (span,) = request_spans([event])
    assert span.trace_id.hex() == event.trace_id
    assert span.span_id.hex() == event.span_id
    assert span.parent_span_id.hex() == event.parent_span_id
    assert span.start_time_unix_nano == 100 * 1_000_000_000
