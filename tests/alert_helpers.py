"""Builders for the alerting tests: a controllable clock, traffic, and HTTP/SMTP receivers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from modelmonitor.alerts.channels.base import (
    ChannelConfig,
    DeliveryError,
    NotificationChannel,
    SendResult,
)
from modelmonitor.alerts.models import AlertNotice, Notification
from modelmonitor.events import EventBatch, EventIdFactory, ProxyStats, RequestEvent
from modelmonitor.live.base import LiveState

__all__ = [
    "FakeChannel",
    "Receiver",
    "SimClock",
    "batch",
    "events_for_second",
    "feed",
    "sample_notification",
    "serve",
]

#: A Unix time that starts a 10-second bucket, so window edges are easy to reason about.
T0 = 1_700_000_000.0


class SimClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_ids = EventIdFactory()


def events_for_second(
    second: float,
    *,
    service: str = "svc",
    count: int = 10,
    errors: int = 0,
    latency: float = 0.05,
    route: str = "/predict",
) -> list[RequestEvent]:
    """``count`` requests finishing inside the second starting at ``second``."""
    events = []
    for index in range(count):
        finished = second + (index + 0.5) / count
        failed = index < errors
        events.append(
            RequestEvent(
                id=_ids(),
                start=finished - latency,
                service=service,
                method="POST",
                route=route,
                path=route,
                status=500 if failed else 200,
                latency_seconds=latency,
                ttfb_seconds=latency / 2,
                request_bytes=10,
                response_bytes=20,
            )
        )
    return events


def batch(
    events: list[RequestEvent], *, sent_at: float, dropped_total: int = 0, proxy_id: str = "p1"
) -> EventBatch:
    stats = ProxyStats(
        proxy_id=proxy_id,
        sent_at=sent_at,
        buffer_size=0,
        buffer_capacity=1000,
        dropped_total=dropped_total,
        captured_total=0,
    )
    return EventBatch(stats=stats, events=events)


async def feed(
    live: LiveState,
    clock: SimClock,
    seconds: int,
    *,
    service: str = "svc",
    count: int = 10,
    errors: int = 0,
    latency: float = 0.05,
) -> None:
    """Record ``seconds`` seconds of traffic starting at the clock, advancing it."""
    for _ in range(seconds):
        events = events_for_second(
            clock.now, service=service, count=count, errors=errors, latency=latency
        )
        clock.advance(1.0)
        await live.record(batch(events, sent_at=clock.now))


class FakeChannel(NotificationChannel[ChannelConfig]):
    """Records notifications; fails the first ``fail`` attempts; may be slow."""

    type = "fake"
    config_model = ChannelConfig

    def __init__(
        self,
        name: str,
        *,
        fail: int = 0,
        retryable: bool = True,
        delay: float = 0.0,
        **config: Any,
    ) -> None:
        settings = {"type": "fake", "backoff_seconds": 0.0, **config}
        super().__init__(name, ChannelConfig.model_validate(settings))
        self.fail = fail
        self.retryable = retryable
        self.delay = delay
        self.attempts = 0
        self.received: list[Notification] = []

    async def send(self, notification: Notification) -> SendResult:
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail > 0:
            self.fail -= 1
            raise DeliveryError("HTTP 503: unavailable", retryable=self.retryable, http_status=503)
        self.received.append(notification)
        return SendResult(http_status=200)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 recording what is POSTed to it."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    #: The path of each request, in the same order.
    paths: list[str] = field(default_factory=list)
    #: Status codes to answer with, in order; 200 once exhausted.
    statuses: list[int] = field(default_factory=list)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def receive(request: Request) -> Response:
            body = await request.body()
            status = self.statuses.pop(0) if self.statuses else 200
            self.requests.append((dict(request.headers), body))
            self.paths.append(request.url.path)
            return Response(status_code=status)

        return app

    async def wait_for(self, count: int, seconds: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while len(self.requests) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"received {len(self.requests)} of {count} requests")
            await asyncio.sleep(0.02)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port); yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def sample_notification(
    status: str = "firing",
    *,
    notification_id: str = "n-1",
    labels: dict[str, str] | None = None,
    started: float | None = None,
) -> Notification:
    """One critical ``error_rate > 0.05`` alert on service ``iris``, firing or resolved."""
    now = time.time()
    notice = AlertNotice(
        id="r1:iris",
        rule_id="r1",
        rule_name="High error rate",
        status=status,
        reason=status,
        severity="critical",
        service="iris",
        metric="error_rate",
        comparator=">",
        threshold=0.05,
        value=0.5,
        window="1m",
        labels={"team": "ml"} if labels is None else labels,
        starts_at=now - 60 if started is None else started,
        ends_at=now if status == "resolved" else None,
    )
    return Notification(
        id=notification_id, service="iris", status=status, created_at=now, alerts=[notice]
    )
