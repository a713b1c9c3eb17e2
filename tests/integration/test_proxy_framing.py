"""Strict framing at the proxy's edge (RFC 9112): what would let a message be read two
ways is refused, and what is forwarded is framed one way only. Raw sockets both sides."""

from __future__ import annotations

import asyncio

import pytest

from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import (
    Request,
    raw_exchange,
    running_proxy,
    running_upstream,
    wait_for_events,
)


async def echo(request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Answers ``<method> <target>|<body>`` with a Content-Length."""
    body = f"{request.method} {request.target}|".encode() + request.body
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


async def test_connection_cannot_strip_content_length_from_a_request() -> None:
    """The smuggling of issue 10: the body must stay the POST's body, never a request."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(
            b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: Content-Length, Host\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(smuggled), smuggled)
        )
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert await reader.readexactly(length) == b"POST /a|" + smuggled
        writer.close()
        await wait_for_events(capture, 1)
        assert [r.target for r in upstream.requests] == ["/a"]
        assert upstream.requests[0].header("content-length") == str(len(smuggled))
        assert upstream.requests[0].header("host")


async def test_connection_cannot_strip_content_length_from_a_response() -> None:
    """An upstream naming Content-Length in Connection must not glue responses together."""

    async def hostile(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        body = request.target.encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: Content-Length, Transfer-Encoding\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        return True

    async with (
        running_upstream(hostile) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        async with asyncio.timeout(5):
            for target in (b"/first", b"/second"):
                writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
                head = await reader.readuntil(b"\r\n\r\n")
                assert b"content-length: %d\r\n" % len(target) in head.lower()
                assert await reader.readexactly(len(target)) == target
        writer.close()


async def test_codings_and_lengths_are_forwarded_in_one_spelling() -> None:
    """``gzip, chunked`` keeps its gzip coding both ways; ``0005`` becomes ``5``."""

    async def coded(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if request.target == "/gzip":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
                b"\r\n3\r\nabc\r\n0\r\n\r\n"
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nok")
        return True

    async with (
        running_upstream(coded) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        async with asyncio.timeout(5):
            writer.write(
                b"POST /gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                b"2\r\nhi\r\n0\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"transfer-encoding: gzip, chunked\r\n" in head.lower()
            assert await reader.readuntil(b"0\r\n\r\n") == b"3\r\nabc\r\n0\r\n\r\n"
            writer.write(b"POST /length HTTP/1.1\r\nHost: x\r\nContent-Length: 0005\r\n\r\nhello")
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"content-length: 2\r\n" in head.lower()
            assert await reader.readexactly(2) == b"ok"
        writer.close()
        gzip, length = upstream.requests
        assert gzip.all("transfer-encoding") == ["gzip, chunked"]
        assert gzip.body == b"hi"
        assert length.all("content-length") == ["5"]
        assert length.body == b"hello"


REFUSED = [
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        400,
        "bad_framing",
        id="content-length-and-transfer-encoding",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        400,
        "bad_framing",
        id="final-coding-not-chunked",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
        "bad_framing",
        id="differing-content-lengths",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
        400,
        "bad_framing",
        id="content-length-list",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        400,
        "bad_framing",
        id="negative-content-length",
    ),
    pytest.param(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400,
        "bad_framing",
        id="transfer-encoding-in-http-1.0",
    ),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, "bad_host", id="no-host"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_host", id="two-hosts"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400, "bad_host", id="invalid-host"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400, "bad_request", id="obs-fold"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x01c\r\n\r\n", 400, "bad_request", id="ctl-in-value"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad_request", id="space-before-colon"
    ),
    pytest.param(b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request", id="ctl-in-url"),
    pytest.param(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "bad_version", id="http-2.0"),
]


@pytest.mark.parametrize(("raw", "status", "kind"), REFUSED)
async def test_ambiguous_or_malformed_requests_are_refused(
    raw: bytes, status: int, kind: str
) -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        answer = await raw_exchange(proxy.bound[0][1], raw)
        assert answer.startswith(b"HTTP/1.1 %d " % status)
        assert b'"error": "%s"' % kind.encode() in answer
        assert b"connection: close" in answer.lower()
        assert not upstream.requests
        assert proxy.refusals() == {kind: 1}
        await asyncio.sleep(0.05)
        assert not capture.snapshot()  # counted, not stored as an empty event


async def test_http10_without_host_is_still_served() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
    ):
        answer = await raw_exchange(proxy.bound[0][1], b"GET /old HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b"GET /old|")
        assert proxy.refusals() == {}


async def test_a_refused_pipelined_request_is_answered_after_the_ones_before() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        answer = await raw_exchange(
            proxy.bound[0][1],
            b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        )
        first, _, rest = answer.partition(b"GET /ok|")
        assert first.startswith(b"HTTP/1.1 200")
        assert rest.startswith(b"HTTP/1.1 400") and b"bad_host" in rest
        await wait_for_events(capture, 1)
        assert [event.route for event in capture.snapshot()] == ["/ok"]
        assert proxy.refusals() == {"bad_host": 1}
