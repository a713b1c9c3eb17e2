"""Limits at the proxy's edge: sizes, counts, and deadlines that slow peers cannot stretch.

Raw sockets on the client side, raw upstreams the tests start."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from modelmonitor.settings import ConfigError, ProxyLimits, ServiceConfig, load_settings
from tests.integration.proxy_upstreams import (
    Request,
    raw_exchange,
    running_proxy,
    running_upstream,
    wait_for_events,
)


async def ok(request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return True


@pytest.mark.parametrize(
    ("raw", "status", "kind"),
    [
        pytest.param(
            b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "url_too_long", id="url"
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(20))
            + b"\r\n",
            431,
            "too_many_headers",
            id="header-count",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n",
            431,
            "head_too_large",
            id="head-size",
        ),
    ],
)
async def test_request_heads_over_the_limits_are_refused(
    raw: bytes, status: int, kind: str
) -> None:
    limits = {"max_url_bytes": 512, "max_headers": 16, "max_head_bytes": 2048}
    async with (
        running_upstream(ok) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url), **limits) as (
            proxy,
            capture,
        ),
    ):
        answer = await raw_exchange(proxy.bound[0][1], raw)
        assert answer.startswith(b"HTTP/1.1 %d " % status)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"content-type: application/json" in head.lower()
        assert b'"error": "%s"' % kind.encode() in body
        assert proxy.refusals() == {kind: 1}
        assert not upstream.requests
        assert not capture.snapshot()
        # Just under every limit is served.
        fine = b"GET /" + b"a" * 400 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert (await raw_exchange(proxy.bound[0][1], fine)).startswith(b"HTTP/1.1 200")


async def test_a_head_sent_a_byte_at_a_time_hits_a_total_deadline() -> None:
    """Each byte used to reset the idle timer: a 64 KB head could take 18 hours."""
    async with (
        running_upstream(ok) as upstream,
        running_proxy(
            ServiceConfig(name="svc", upstream=upstream.url), header_timeout_seconds=0.5
        ) as (proxy, _),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        started = time.monotonic()
        answer = b""

        async def trickle() -> None:
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        async with asyncio.timeout(5):
            answer = await reader.read(-1)
        elapsed = time.monotonic() - started
        sender.cancel()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"header_timeout" in answer
        assert 0.4 <= elapsed < 2.5
        assert proxy.refusals() == {"header_timeout": 1}
        assert not upstream.requests


async def test_a_client_that_never_reads_is_cut_off() -> None:
    """Its response stops at the proxy's buffer; after the write timeout the proxy lets
    go of the client and of the upstream connection."""
    big = b"x" * (1 << 20)

    async def flood(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 * len(big)))
        for _ in range(64):
            writer.write(big)
            await writer.drain()
        return False

    async with (
        running_upstream(flood) as upstream,
        running_proxy(
            ServiceConfig(name="svc", upstream=upstream.url), write_timeout_seconds=0.5
        ) as (proxy, capture),
    ):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", proxy.bound[0][1]))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
        try:
            await wait_for_events(capture, 1, seconds=10)
        finally:
            sock.close()
        event = capture.snapshot()[0]
        assert (event.status, event.error) == (200, "client_disconnect")
        assert event.response_bytes < 64 * len(big)
        assert proxy.refusals() == {"write_timeout": 1}
        assert proxy.in_flight() == {"svc": 0}
        assert upstream.connections == 1


async def test_an_endless_upstream_head_is_a_502_in_bounded_memory() -> None:
    """An upstream that keeps sending header lines used to grow the proxy to gigabytes."""

    async def endless(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Filler: " + b"f" * 1000 + b"\r\n"
        for _ in range(100_000):  # 100 MB if nobody stops it
            writer.write(line * 64)
            await writer.drain()
        return False

    async with (
        running_upstream(endless) as upstream,
        running_proxy(
            ServiceConfig(name="svc", upstream=upstream.url), max_upstream_head_bytes=32768
        ) as (proxy, capture),
    ):
        answer = await raw_exchange(
            proxy.bound[0][1], b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n", until_close=False
        )
        assert answer.startswith(b"HTTP/1.1 502")
        assert b'"error": "upstream_head_too_large"' in answer
        await wait_for_events(capture, 1)
        assert capture.snapshot()[0].error == "upstream_head_too_large"
        assert proxy.refusals() == {"upstream_head_too_large": 1}


async def test_a_trickling_upstream_head_still_times_out() -> None:
    """A header line every 0.1 s used to keep the upstream timeout from ever firing."""

    async def trickle(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for index in range(100):
            writer.write(b"X-Line-%d: 1\r\n" % index)
            await writer.drain()
            await asyncio.sleep(0.1)
        return False

    async with (
        running_upstream(trickle) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url, timeout_seconds=0.5)) as (
            proxy,
            capture,
        ),
    ):
        started = time.monotonic()
        answer = await raw_exchange(
            proxy.bound[0][1], b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n", until_close=False
        )
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 504")
        assert b'"error": "upstream_head_timeout"' in answer
        assert 0.45 <= elapsed < 3.0
        await wait_for_events(capture, 1)
        assert capture.snapshot()[0].error == "upstream_head_timeout"
        assert proxy.refusals() == {"upstream_head_timeout": 1}


def test_limits_are_settings_that_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELMONITOR_PROXY_LIMITS__MAX_HEADERS", "50")
    settings = load_settings(proxy_limits={"header_timeout_seconds": "10s"})
    assert settings.proxy_limits.max_headers == 50
    assert settings.proxy_limits.header_timeout_seconds == 10.0
    assert settings.proxy_limits.max_routes_per_service == 1000
    with pytest.raises(ConfigError, match=r"proxy_limits\.max_head_bytes"):
        load_settings(proxy_limits={"max_head_bytes": 10})
    with pytest.raises(ConfigError, match="max_url_bytes must not exceed max_head_bytes"):
        load_settings(proxy_limits={"max_head_bytes": 4096, "max_url_bytes": 8192})
    assert ProxyLimits().write_timeout_seconds == 60.0


async def test_endless_trailer_fields_are_bounded_both_ways() -> None:
    """After a chunked body, trailer lines count against the head limit: neither a client
    nor an upstream can grow the proxy's memory with them."""

    async def endless_trailers(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
        for index in range(100_000):
            writer.write(b"X-T-%d: %s\r\n" % (index, b"t" * 1000))
            await writer.drain()
        return False

    async with (
        running_upstream(endless_trailers) as upstream,
        running_proxy(
            ServiceConfig(name="svc", upstream=upstream.url),
            max_head_bytes=16384,
            max_upstream_head_bytes=16384,
        ) as (proxy, capture),
    ):
        port = proxy.bound[0][1]
        answer = await raw_exchange(port, b"GET /down HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")  # the head went out; the body is cut
        assert not answer.endswith(b"\r\n\r\n")
        await wait_for_events(capture, 1)
        assert capture.snapshot()[0].error == "upstream_head_too_large"

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
        with contextlib.suppress(ConnectionError):
            for index in range(100):
                writer.write(b"X-T-%d: %s\r\n" % (index, b"t" * 1000))
                await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read(-1)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 431")
        assert proxy.refusals() == {"head_too_large": 1, "upstream_head_too_large": 1}
