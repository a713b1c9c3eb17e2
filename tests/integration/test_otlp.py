"""OpenTelemetry export: spans and metrics reach an OTLP receiver the test starts, over
OTLP/HTTP and OTLP/gRPC, decoded from the protobuf messages the collector would get."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from tests.integration.proxy_upstreams import Request, running_upstream


class Received:
    def __init__(self) -> None:
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.headers: list[dict[str, str]] = []

    def spans(self) -> list[Span]:
        return [
            span
            for request in self.traces
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def metric(self, name: str) -> Any:
        for request in reversed(self.metrics):
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        if metric.name == name:
                            return metric
        return None


@contextlib.asynccontextmanager
async def http_receiver() -> AsyncIterator[tuple[str, Received]]:
    received = Received()

    async def collector(request: Request, reader: asyncio.StreamReader, writer: Any) -> bool:
        if request.target == "/v1/traces":
            received.traces.append(
                trace_service_pb2.ExportTraceServiceRequest.FromString(request.body)
            )
        elif request.target == "/v1/metrics":
            received.metrics.append(
                metrics_service_pb2.ExportMetricsServiceRequest.FromString(request.body)
            )
        received.headers.append({k.lower(): v for k, v in request.headers})
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        )
        return True

    async with running_upstream(collector) as server:
        yield server.url, received


@contextlib.asynccontextmanager
async def grpc_receiver() -> AsyncIterator[tuple[str, Received]]:
    received = Received()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request: Any, context: Any) -> Any:
            received.traces.append(request)
            received.headers.append(dict(context.invocation_metadata()))
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        async def Export(self, request: Any, context: Any) -> Any:
            received.metrics.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"grpc://127.0.0.1:{port}", received
    finally:
        await server.stop(grace=None)


async def model_api(request: Request, reader: asyncio.StreamReader, writer: Any) -> bool:
    status = b"503 Service Unavailable" if request.target.startswith("/fail") else b"200 OK"
    await asyncio.sleep(0.02)
    writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\n\r\nok")
    return True


async def wait_until(predicate: Any, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_spans_and_metrics_reach_the_collector(transport: str, tmp_path: Path) -> None:
    receiver = http_receiver() if transport == "http" else grpc_receiver()
    async with receiver as (endpoint, received), running_upstream(model_api) as upstream:
        settings = load_settings(
            data_dir=tmp_path,
            target=upstream.url,
            target_name="iris",
            listen="127.0.0.1:0",
            api="127.0.0.1:0",
            otlp={
                "endpoint": endpoint,
                "headers": {"X-Collector-Key": "k-123"},
                "service_name": "mm-test",
                "metrics_interval_seconds": 0.2,
            },
        )
        runtime = Runtime(settings, parts=Parts())
        await runtime.start()
        try:
            url = f"http://{runtime.proxy_addresses['iris']}"
            async with httpx.AsyncClient(base_url=url) as client:
                for path in ["/v1/models/7/predict"] * 4 + ["/fail"]:
                    await client.post(path, content=b'{"x": 1}')
            await wait_until(lambda: len(received.spans()) >= 5)
            await wait_until(lambda: received.metric("modelmonitor.requests") is not None)
        finally:
            await runtime.stop()

    spans = received.spans()
    assert len(spans) == 5
    resource = received.traces[0].resource_spans[0].resource
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "mm-test"
    ok = [span for span in spans if span.status.code != Status.StatusCode.STATUS_CODE_ERROR]
    (failed,) = [span for span in spans if span.status.code == Status.StatusCode.STATUS_CODE_ERROR]
    assert len(ok) == 4
    span = ok[0]
    values = {a.key: a.value for a in span.attributes}
    assert span.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert span.name == "POST /v1/models/{id}/predict"
    assert values["http.request.method"].string_value == "POST"
    assert values["http.route"].string_value == "/v1/models/{id}/predict"
    assert values["url.path"].string_value == "/v1/models/7/predict"
    assert values["http.response.status_code"].int_value == 200
    assert values["http.request.body.size"].int_value == 8
    assert values["modelmonitor.service"].string_value == "iris"
    assert len(span.trace_id) == 16 and len(span.span_id) == 8
    duration = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
    assert 0.02 <= duration < 5
    assert len({bytes(s.trace_id) for s in spans}) == 5  # no propagation: a trace each
    failed_values = {a.key: a.value for a in failed.attributes}
    assert failed_values["error.type"].string_value == "503"
    # The collector's key travels with every export.
    assert received.headers[0]["x-collector-key"] == "k-123"
    requests = received.metric("modelmonitor.requests")
    assert sum(point.as_int for point in requests.sum.data_points) == 5
    assert requests.sum.is_monotonic
    duration_metric = received.metric("http.server.request.duration")
    points = duration_metric.histogram.data_points
    assert sum(point.count for point in points) == 5
    assert all(sum(point.bucket_counts) == point.count for point in points)
    assert list(points[0].explicit_bounds)[:3] == [0.005, 0.01, 0.025]


async def test_a_service_that_propagates_joins_the_callers_trace(tmp_path: Path) -> None:
    """The model server's parent is the proxy's span, whose parent is the caller's; the
    exported span and the request log carry the same ids."""
    seen: list[str | None] = []

    async def model(request: Request, reader: asyncio.StreamReader, writer: Any) -> bool:
        seen.append(request.header("traceparent"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        return True

    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with http_receiver() as (endpoint, received), running_upstream(model) as upstream:
        settings = load_settings(
            data_dir=tmp_path,
            listen="127.0.0.1:0",
            api="127.0.0.1:0",
            services=[
                {"name": "traced", "upstream": upstream.url, "propagate_trace": True},
                {"name": "plain", "upstream": upstream.url, "path_prefix": "/plain"},
            ],
            otlp={"endpoint": endpoint, "metrics": False},
        )
        runtime = Runtime(settings, parts=Parts())
        await runtime.start()
        try:
            url = f"http://{runtime.proxy_addresses['traced']}"
            async with httpx.AsyncClient(base_url=url) as client:
                incoming = f"00-{caller_trace}-{caller_span}-01"
                await client.get("/joined", headers={"traceparent": incoming})
                await client.get("/started")
                await client.get("/plain/x", headers={"traceparent": incoming})
            await wait_until(lambda: len(received.spans()) >= 3)
            assert runtime.api_url is not None
            async with httpx.AsyncClient(base_url=runtime.api_url) as api:
                log = (await api.get("/api/v1/requests", params={"service": "traced"})).json()
        finally:
            await runtime.stop()

    joined, started, plain = seen
    assert joined is not None and started is not None
    version, trace_id, proxy_span, flags = joined.split("-")
    assert (version, trace_id, flags) == ("00", caller_trace, "01")
    assert proxy_span != caller_span
    # Untouched where the service does not propagate.
    assert plain == f"00-{caller_trace}-{caller_span}-01"
    spans = {span.name: span for span in received.spans()}
    span = spans["GET /joined"]
    assert span.trace_id.hex() == caller_trace
    assert span.span_id.hex() == proxy_span
    assert span.parent_span_id.hex() == caller_span
    # No caller trace: the proxy starts one, and is its root.
    _, new_trace, new_span, _ = started.split("-")
    assert new_trace != caller_trace
    assert spans["GET /started"].trace_id.hex() == new_trace
    assert spans["GET /started"].span_id.hex() == new_span
    assert spans["GET /started"].parent_span_id == b""
    by_path = {entry["path"]: entry for entry in log["requests"]}
    assert by_path["/joined"]["trace_id"] == caller_trace
    assert by_path["/joined"]["parent_span_id"] == caller_span
