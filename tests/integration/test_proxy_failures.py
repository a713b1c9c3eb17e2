"""Upstream failures become 502/504 with an error kind; monitoring never fails a request."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import httpx
import pytest

from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import (
    Handler,
    Request,
    base_url,
    closed_port,
    running_proxy,
    running_upstream,
    wait_for_events,
)


async def ok(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    body = request.target.encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


async def test_upstream_down_is_a_502_with_upstream_connect() -> None:
    port = closed_port()
    service = ServiceConfig(name="svc", upstream=f"http://127.0.0.1:{port}")
    async with running_proxy(service) as (proxy, capture), httpx.AsyncClient() as client:
        response = await client.get(base_url(proxy, "svc") + "/v1/predict")
        assert response.status_code == 502
        assert response.json()["error"] == "upstream_connect"
        assert "connect" in response.json()["detail"]
        # The client connection is still usable afterwards.
        assert (await client.get(base_url(proxy, "svc") + "/again")).status_code == 502
        await wait_for_events(capture, 2)
        event = capture.snapshot()[0]
        assert (event.status, event.error, event.route) == (502, "upstream_connect", "/v1/predict")


def answer_when(release: asyncio.Event) -> Handler:
    """An upstream that answers once ``release`` is set (or after 5 seconds)."""

    async def slow(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await release.wait()
        return await ok(request, reader, writer)

    return slow


async def test_slow_upstream_is_a_504_with_upstream_timeout() -> None:
    release = asyncio.Event()
    slow = answer_when(release)

    async with running_upstream(slow) as upstream:
        service = ServiceConfig(name="svc", upstream=upstream.url, timeout_seconds=0.3)
        async with running_proxy(service) as (proxy, capture), httpx.AsyncClient() as client:
            started = time.monotonic()
            response = await client.get(base_url(proxy, "svc") + "/slow")
            elapsed = time.monotonic() - started
            release.set()
            assert response.status_code == 504
            assert response.json()["error"] == "upstream_timeout"
            assert 0.25 <= elapsed < 2.0
            await wait_for_events(capture, 1)
            assert capture.snapshot()[0].error == "upstream_timeout"
            assert proxy.in_flight() == {"svc": 0}


async def test_connect_timeout_is_a_504() -> None:
    # A listening socket that never accepts, with its backlog filled: SYNs go unanswered.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        service = ServiceConfig(
            name="svc", upstream=f"http://127.0.0.1:{port}", connect_timeout_seconds=0.3
        )
        async with running_proxy(service) as (proxy, capture), httpx.AsyncClient() as client:
            started = time.monotonic()
            response = await client.get(base_url(proxy, "svc") + "/x")
            if response.status_code == 200:  # pragma: no cover - kernel accepted anyway
                pytest.skip("the kernel accepted past the backlog")
            assert response.status_code == 504
            assert response.json()["error"] == "upstream_timeout"
            assert time.monotonic() - started < 2.0
            await wait_for_events(capture, 1)
            assert capture.snapshot()[0].error == "upstream_timeout"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_reset_mid_body_truncates_and_records_upstream_reset() -> None:
    async def breaking(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()
        return False

    async with (
        running_upstream(breaking) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(b"GET /model HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            received = await reader.read(-1)  # the proxy closes: truncated
        writer.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert 0 < len(body) < 100000
        await wait_for_events(capture, 1)
        event = capture.snapshot()[0]
        assert (event.status, event.error) == (200, "upstream_reset")
        assert event.response_bytes == len(body)


async def test_upstream_closing_before_answering_is_a_502() -> None:
    async def rude(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        return False  # close without a response, every time

    async with (
        running_upstream(rude) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
        httpx.AsyncClient() as client,
    ):
        response = await client.get(base_url(proxy, "svc") + "/x")
        assert response.status_code == 502
        assert response.json()["error"] == "upstream_reset"
        await wait_for_events(capture, 1)
        assert capture.snapshot()[0].error == "upstream_reset"


async def test_garbage_from_upstream_is_a_502_protocol_error() -> None:
    async def garbage(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        return True

    async with (
        running_upstream(garbage) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
        httpx.AsyncClient() as client,
    ):
        response = await client.get(base_url(proxy, "svc") + "/x")
        assert response.status_code == 502
        assert response.json()["error"] == "upstream_protocol"
        await wait_for_events(capture, 1)


async def test_idle_closing_upstream_never_surfaces_an_error() -> None:
    """uvicorn/gunicorn close idle keep-alive connections silently."""
    async with (
        running_upstream(ok, idle_close=0.05) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
        httpx.AsyncClient() as client,
    ):
        url = base_url(proxy, "svc")
        for index in range(30):
            response = await client.get(url + f"/r/{index}")
            assert response.status_code == 200, response.text
            assert response.text == f"/r/{index}"
            await asyncio.sleep(0.07 if index % 3 == 0 else 0.045)
        await wait_for_events(capture, 30)
        assert all(event.error == "" for event in capture.snapshot())
        assert upstream.connections > 5


@pytest.mark.parametrize("body", [b"", b'{"model": "m"}'], ids=["empty", "small-body"])
async def test_stale_pooled_connection_is_retried_once_on_a_fresh_one(body: bytes) -> None:
    """The upstream takes the request on a reused connection and closes without answering
    (the race of an idle close): the proxy replays it on a fresh connection."""
    served: dict[asyncio.StreamWriter, int] = {}  # strong keys: no id() reuse

    async def first_only(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        served[writer] = served.get(writer, 0) + 1
        if served[writer] > 1:
            return False  # close without a response
        await ok(request, reader, writer)
        return True

    async with (
        running_upstream(first_only) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
        httpx.AsyncClient() as client,
    ):
        url = base_url(proxy, "svc")
        for index in range(10):
            response = await client.post(url + f"/r/{index}", content=body)
            assert response.status_code == 200, response.text
        await wait_for_events(capture, 10)
        assert all(event.status == 200 and not event.error for event in capture.snapshot())
        assert all(request.body == body for request in upstream.requests)


async def test_client_disconnect_is_recorded_and_frees_the_upstream() -> None:
    release = asyncio.Event()
    slow = answer_when(release)

    async with (
        running_upstream(slow) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        assert proxy.in_flight() == {"svc": 1}
        writer.transport.abort()
        await wait_for_events(capture, 1)
        event = capture.snapshot()[0]
        assert (event.error, event.status) == ("client_disconnect", 499)
        assert proxy.in_flight() == {"svc": 0}
        release.set()


async def test_full_buffer_drops_events_but_serves_requests() -> None:
    async with (
        running_upstream(ok) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url), capacity=5) as (
            proxy,
            capture,
        ),
        httpx.AsyncClient() as client,
    ):
        for index in range(20):
            response = await client.get(base_url(proxy, "svc") + f"/r/{index}")
            assert response.status_code == 200
        for _ in range(100):
            if capture.captured_total + capture.dropped_total == 20:
                break
            await asyncio.sleep(0.01)
        assert (capture.captured_total, capture.dropped_total, capture.size) == (5, 15, 5)


async def test_oversized_request_head_is_refused() -> None:
    async with (
        running_upstream(ok) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        async with asyncio.timeout(5):
            answer = await reader.read(-1)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 431")
        assert not upstream.requests
        assert proxy.refusals() == {"head_too_large": 1}
        assert not capture.snapshot()


async def test_idle_client_connections_are_closed() -> None:
    async with (
        running_upstream(ok) as upstream,
        running_proxy(
            ServiceConfig(name="svc", upstream=upstream.url), idle_timeout_seconds=0.2
        ) as (proxy, _),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert await reader.readexactly(2) == b"/1"
        started = time.monotonic()
        async with asyncio.timeout(5):
            assert await reader.read(-1) == b""  # closed by the proxy
        assert 0.15 < time.monotonic() - started < 2.0
        writer.close()
