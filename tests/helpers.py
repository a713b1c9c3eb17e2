"""Builders shared by tests."""

from __future__ import annotations

import random
import time

from modelmonitor.events import EventBatch, EventIdFactory, ProxyStats, RequestEvent

__all__ = ["make_batch", "make_events", "proxy_stats"]


def proxy_stats(proxy_id: str = "test-proxy", *, sent_at: float | None = None) -> ProxyStats:
    return ProxyStats(
        proxy_id=proxy_id,
        sent_at=time.time() if sent_at is None else sent_at,
        buffer_size=0,
        buffer_capacity=1000,
        dropped_total=0,
        captured_total=0,
    )


def make_events(
    count: int,
    *,
    service: str = "svc",
    start: float,
    spread: float = 60.0,
    seed: int = 0,
    routes: tuple[str, ...] = ("/v1/models/{id}/predict", "/health"),
    error_share: float = 0.1,
) -> list[RequestEvent]:
    rng = random.Random(seed)
    ids = EventIdFactory()
    events = []
    for index in range(count):
        failed = rng.random() < error_share
        events.append(
            RequestEvent(
                id=ids(),
                start=start + spread * index / max(count, 1),
                service=service,
                method="POST" if index % 3 else "GET",
                route=routes[index % len(routes)],
                path="/v1/models/7/predict",
                status=500 if failed else 200,
                latency_seconds=rng.lognormvariate(-4, 0.8),
                ttfb_seconds=0.001,
                request_bytes=100,
                response_bytes=250,
                model="iris",
                client="127.0.0.1",
            )
        )
    return events


def make_batch(events: list[RequestEvent], proxy_id: str = "test-proxy") -> EventBatch:
    return EventBatch(stats=proxy_stats(proxy_id), events=events)
