"""OpenTelemetry export over OTLP: a span per request, and the request metrics.

Runs in the worker, never in the proxy: the proxy only stamps W3C trace context on
the event (when a service propagates traces). Spans follow the HTTP server and GenAI
semantic conventions; metrics are the cumulative counters and histograms that
``/metrics`` serves, so a collector sees the same figures as Prometheus.

``http://`` and ``https://`` endpoints speak OTLP/HTTP (protobuf, ``/v1/traces`` and
``/v1/metrics``); ``grpc://`` (plaintext) and ``grpcs://`` speak OTLP/gRPC. The queue
of spans is bounded: when the collector is away, spans are dropped and counted, and
ingestion never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.events import RequestEvent
from modelmonitor.telemetry._requests import (
    LABEL_NAMES,
    LATENCY_BUCKETS_SECONDS,
    LAYOUT,
    MetricsSnapshot,
)

__all__ = ["OtlpExporter", "OtlpStats", "request_spans"]

log = logging.getLogger("modelmonitor.otlp")

_NANOS = 1_000_000_000
#: ``task`` on the event -> GenAI ``gen_ai.operation.name``.
_GENAI_OPERATIONS = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    "responses": "chat",
}


def _attribute(key: str, value: str | int | float | bool | Sequence[str]) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    values = [AnyValue(string_value=item) for item in value]
    return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=values)))


def _ids(event: RequestEvent) -> tuple[bytes, bytes, bytes]:
    """(trace id, span id, parent span id) as bytes; fresh random ids when the event
    carries none (its service does not propagate traces)."""
    if event.trace_id and event.span_id:
        parent = bytes.fromhex(event.parent_span_id) if event.parent_span_id else b""
        return bytes.fromhex(event.trace_id), bytes.fromhex(event.span_id), parent
    return os.urandom(16), os.urandom(8), b""


def _span_attributes(event: RequestEvent) -> list[Any]:
    pairs: list[tuple[str, str | int | float | bool | Sequence[str]]] = [
        ("http.request.method", event.method),
        ("url.path", event.path),
        ("modelmonitor.service", event.service),
        ("http.request.body.size", event.request_bytes),
        ("http.response.body.size", event.response_bytes),
    ]
    if event.route:
        pairs.append(("http.route", event.route))
    if event.status:
        pairs.append(("http.response.status_code", event.status))
    if event.error:
        pairs.append(("error.type", event.error))
    elif event.status >= 500:
        pairs.append(("error.type", str(event.status)))
    if event.client:
        pairs.append(("client.address", event.client))
    if event.consumer:
        pairs.append(("modelmonitor.consumer", event.consumer))
    if event.model:
        pairs += [("gen_ai.request.model", event.model), ("gen_ai.response.model", event.model)]
    if event.protocol:
        pairs.append(("modelmonitor.protocol", event.protocol))
    if event.task in _GENAI_OPERATIONS:
        pairs.append(("gen_ai.operation.name", _GENAI_OPERATIONS[event.task]))
    if event.prompt_tokens or event.completion_tokens:
        pairs += [
            ("gen_ai.usage.input_tokens", event.prompt_tokens),
            ("gen_ai.usage.output_tokens", event.completion_tokens),
        ]
    if event.finish_reason:
        pairs.append(("gen_ai.response.finish_reasons", [event.finish_reason]))
    if event.cost_usd:
        pairs.append(("modelmonitor.cost_usd", event.cost_usd))
    return [_attribute(key, value) for key, value in pairs]


def request_spans(events: Iterable[RequestEvent]) -> list[Any]:
    """One OTLP ``Span`` (kind SERVER) per request."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    spans = []
    for event in events:
        trace_id, span_id, parent = _ids(event)
        start = int(event.start * _NANOS)
        span_events = []
        if event.ttfb_seconds > 0:
            span_events.append(
                Span.Event(
                    name="first_byte", time_unix_nano=start + int(event.ttfb_seconds * _NANOS)
                )
            )
        if event.ttft_seconds > 0:
            span_events.append(
                Span.Event(
                    name="gen_ai.first_token",
                    time_unix_nano=start + int(event.ttft_seconds * _NANOS),
                )
            )
        failed = event.is_error
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                name=f"{event.method} {event.route}" if event.route else event.method,
                kind=Span.SpanKind.SPAN_KIND_SERVER,
                start_time_unix_nano=start,
                end_time_unix_nano=start + int(event.latency_seconds * _NANOS),
                attributes=_span_attributes(event),
                events=span_events,
                status=Status(
                    code=Status.StatusCode.STATUS_CODE_ERROR
                    if failed
                    else Status.StatusCode.STATUS_CODE_UNSET
                ),
            )
        )
    return spans


def _resource(service_name: str) -> Any:
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    from modelmonitor import __version__

    return Resource(
        attributes=[
            _attribute("service.name", service_name),
            _attribute("service.version", __version__),
            _attribute("telemetry.sdk.name", "modelmonitor"),
        ]
    )


def _scope() -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

    from modelmonitor import __version__

    return InstrumentationScope(name="modelmonitor", version=__version__)


def metrics_request(
    snapshot: MetricsSnapshot, *, service_name: str, start: float, now: float
) -> Any:
    """The request counters and histograms as cumulative OTLP metrics."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        AggregationTemporality,
        Histogram,
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )

    cumulative = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    start_ns, now_ns = int(start * _NANOS), int(now * _NANOS)
    sums: dict[str, list[Any]] = {"requests": [], "errors": []}
    histograms: dict[str, list[Any]] = {"duration": [], "ttfb": []}
    for key, values in sorted(snapshot.series.items()):
        labels = [_attribute(name, value) for name, value in zip(LABEL_NAMES, key, strict=True)]
        for name, index in (("requests", LAYOUT.requests), ("errors", LAYOUT.errors)):
            sums[name].append(
                NumberDataPoint(
                    attributes=labels,
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now_ns,
                    as_int=int(values[index]),
                )
            )
        for name, at, total in (
            ("duration", LAYOUT.latency_buckets, LAYOUT.latency_sum),
            ("ttfb", LAYOUT.ttfb_buckets, LAYOUT.ttfb_sum),
        ):
            counts = [int(count) for count in values[at : at + LAYOUT.buckets]]
            histograms[name].append(
                HistogramDataPoint(
                    attributes=labels,
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now_ns,
                    count=sum(counts),
                    sum=values[total],
                    bucket_counts=counts,
                    explicit_bounds=list(LATENCY_BUCKETS_SECONDS),
                )
            )
    metrics = [
        Metric(
            name="modelmonitor.requests",
            description="Requests proxied.",
            unit="{request}",
            sum=Sum(
                data_points=sums["requests"], aggregation_temporality=cumulative, is_monotonic=True
            ),
        ),
        Metric(
            name="modelmonitor.errors",
            description="Requests that failed (5xx or transport error).",
            unit="{request}",
            sum=Sum(
                data_points=sums["errors"], aggregation_temporality=cumulative, is_monotonic=True
            ),
        ),
        Metric(
            name="http.server.request.duration",
            description="Duration of proxied requests.",
            unit="s",
            histogram=Histogram(
                data_points=histograms["duration"], aggregation_temporality=cumulative
            ),
        ),
        Metric(
            name="modelmonitor.time_to_first_byte",
            description="Time to the response's first byte.",
            unit="s",
            histogram=Histogram(data_points=histograms["ttfb"], aggregation_temporality=cumulative),
        ),
    ]
    return ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=_resource(service_name),
                scope_metrics=[ScopeMetrics(scope=_scope(), metrics=metrics)],
            )
        ]
    )


class OtlpStats:
    __slots__ = ("export_failures", "metrics_exported", "spans_dropped", "spans_exported")

    def __init__(self) -> None:
        self.spans_exported = 0
        self.spans_dropped = 0
        self.export_failures = 0
        self.metrics_exported = 0


class OtlpExporter:
    """Batches spans from :meth:`submit` and sends them, and the metrics, to a collector."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str = "modelmonitor",
        traces: bool = True,
        metrics: bool = True,
        metrics_interval_seconds: float = 10.0,
        max_queue: int = 10_000,
        max_batch: int = 512,
        flush_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https", "grpc", "grpcs"):
            raise ValueError(f"otlp endpoint must be http(s):// or grpc(s)://, not {endpoint!r}")
        self.endpoint = endpoint
        self._grpc = parts.scheme.startswith("grpc")
        self._headers = dict(headers or {})
        self._service_name = service_name
        self._traces = traces
        self._metrics = metrics
        self._metrics_interval = metrics_interval_seconds
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._flush = flush_seconds
        self._timeout = timeout_seconds
        self._queue: list[RequestEvent] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self._channel: Any = None
        self._started = time.time()
        self._snapshot: Any = None
        self.stats = OtlpStats()

    def submit(self, events: Sequence[RequestEvent]) -> None:
        """Queue spans for these events; never waits, drops (counted) past the bound."""
        if not self._traces:
            return
        room = self._max_queue - len(self._queue)
        if room < len(events):
            self.stats.spans_dropped += len(events) - max(room, 0)
            events = events[: max(room, 0)]
        self._queue.extend(events)
        if len(self._queue) >= self._max_batch:
            self._wake.set()

    async def start(self, snapshot: Any = None) -> None:
        """Start sending; ``snapshot()`` returns the metrics to export (None: no metrics)."""
        self._snapshot = snapshot
        if self._grpc:
            import grpc

            target = urlsplit(self.endpoint).netloc
            self._channel = (
                grpc.aio.secure_channel(target, grpc.ssl_channel_credentials())
                if self.endpoint.startswith("grpcs")
                else grpc.aio.insecure_channel(target)
            )
        else:
            import httpx

            self._client = httpx.AsyncClient(timeout=self._timeout, headers=self._headers)
        self._tasks.append(asyncio.create_task(self._send_spans(), name="otlp-spans"))
        if self._metrics and snapshot is not None:
            self._tasks.append(asyncio.create_task(self._send_metrics(), name="otlp-metrics"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        with contextlib.suppress(OSError, RuntimeError, ValueError, TimeoutError):
            await asyncio.wait_for(self._export_queued(), timeout=self._timeout)
            if self._metrics and self._snapshot is not None:
                await asyncio.wait_for(self._export_metrics(), timeout=self._timeout)
        if self._client is not None:
            await self._client.aclose()
        if self._channel is not None:
            await self._channel.close()

    async def _send_spans(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._flush)
            self._wake.clear()
            await self._export_queued()

    async def _export_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                await self._export_spans(batch)
                self.stats.spans_exported += len(batch)
            except (OSError, RuntimeError, ValueError) as exc:
                self._failed(exc)
                self.stats.spans_dropped += len(batch)

    async def _send_metrics(self) -> None:
        while True:
            await asyncio.sleep(self._metrics_interval)
            try:
                await self._export_metrics()
            except (OSError, RuntimeError, ValueError) as exc:
                self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.stats.export_failures += 1
        log.warning("OTLP export to %s failed: %s", self.endpoint, exc)

    async def _export_spans(self, events: Sequence[RequestEvent]) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
        from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=_resource(self._service_name),
                    scope_spans=[ScopeSpans(scope=_scope(), spans=request_spans(events))],
                )
            ]
        )
        await self._post("traces", request)

    async def _export_metrics(self) -> None:
        snapshot = self._snapshot()
        request = metrics_request(
            snapshot, service_name=self._service_name, start=self._started, now=time.time()
        )
        await self._post("metrics", request)
        self.stats.metrics_exported += 1

    async def _post(self, signal: str, request: Any) -> None:
        if self._grpc:
            await self._post_grpc(signal, request)
            return
        import httpx

        url = self.endpoint.rstrip("/") + f"/v1/{signal}"
        try:
            response = await self._client.post(
                url,
                content=request.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
        except httpx.HTTPError as exc:
            raise OSError(str(exc)) from exc
        if response.status_code >= 300:
            raise RuntimeError(f"collector answered {response.status_code} on {url}")

    async def _post_grpc(self, signal: str, request: Any) -> None:
        import grpc

        if signal == "traces":
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
                TraceServiceStub,
            )

            call = TraceServiceStub(self._channel).Export  # type: ignore[no-untyped-call]
        else:
            from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import (
                MetricsServiceStub,
            )

            call = MetricsServiceStub(self._channel).Export  # type: ignore[no-untyped-call]
        metadata = [(key.lower(), value) for key, value in self._headers.items()]
        try:
            await call(request, timeout=self._timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise RuntimeError(f"collector answered {exc.code().name}: {exc.details()}") from exc
