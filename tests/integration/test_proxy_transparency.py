"""Through the proxy, a client gets what it gets from the upstream directly."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import (
    Handler,
    Request,
    base_url,
    raw_exchange,
    read_request,
    running_proxy,
    running_upstream,
)

HOP = {"connection", "keep-alive", "x-hop", "transfer-encoding", "content-length"}
BINARY = bytes(range(256)) * 64


async def echo(
    request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Status, framing and body as the query asks; echoes what it received."""
    query = parse_qs(urlsplit(request.target).query)
    status = int(query.get("status", ["200"])[0])
    mode = query.get("mode", ["length"])[0]
    body = b"%s %s|" % (request.method.encode(), request.target.encode()) + request.body
    if "binary" in query:
        body += BINARY
    headers = [
        "Set-Cookie: a=1; Path=/",
        "X-Custom: Value With Spaces",
        "Set-Cookie: b=2; Path=/",
        "Keep-Alive: timeout=5",
        "X-Hop: hop-by-hop, listed in Connection",
    ]
    if status == 301:
        headers.append("Location: /elsewhere")
    bodiless = status in (204, 304)
    keep = True
    if bodiless:
        headers.append("Connection: X-Hop")
        body = b""
    elif mode == "chunked":
        headers += ["Transfer-Encoding: chunked", "Connection: X-Hop"]
    elif mode == "close":
        headers.append("Connection: close, X-Hop")
        keep = False
    else:
        headers += [f"Content-Length: {len(body)}", "Connection: X-Hop"]
    writer.write(f"HTTP/1.1 {status} Whatever\r\n".encode() + "\r\n".join(headers).encode())
    writer.write(b"\r\n\r\n")
    if request.method == "HEAD" or bodiless:
        return keep
    if mode == "chunked":
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            if part:
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        writer.write(b"0\r\n\r\n")
    else:
        writer.write(body)
    return keep


def end_to_end(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in HOP]


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
STATUSES = [200, 201, 204, 301, 304, 404, 500]


@pytest.mark.parametrize("mode", ["length", "chunked", "close"])
async def test_methods_statuses_and_framings_match_direct(mode: str) -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
        httpx.AsyncClient(follow_redirects=False) as client,
    ):
        url = base_url(proxy, "svc")
        for method in METHODS:
            for status in STATUSES:
                target = f"/v1/items/7?status={status}&mode={mode}"
                body = b"" if method in ("GET", "HEAD", "OPTIONS") else b'{"x": 1}'
                direct = await client.request(method, upstream.url + target, content=body)
                proxied = await client.request(method, url + target, content=body)
                where = f"{method} {status} {mode}"
                assert proxied.status_code == direct.status_code == status, where
                assert end_to_end(proxied) == end_to_end(direct), where
                assert proxied.content == direct.content, where
                assert "x-hop" not in proxied.headers and "keep-alive" not in proxied.headers
                assert proxied.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
                if status == 301:
                    assert proxied.headers["location"] == "/elsewhere"
                if method == "HEAD" and status not in (204, 304) and mode == "length":
                    assert proxied.headers["content-length"] == direct.headers["content-length"]
        assert len(capture) == len(METHODS) * len(STATUSES)


@pytest.mark.parametrize(
    "body",
    [b"", b"small", BINARY, b"x" * 300_000],
    ids=["empty", "small", "binary", "300k"],
)
async def test_request_bodies_arrive_intact(body: bytes) -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
        httpx.AsyncClient() as client,
    ):
        url = base_url(proxy, "svc")
        response = await client.post(url + "/echo", content=body)
        assert response.content == b"POST /echo|" + body
        assert upstream.requests[-1].body == body

        async def chunks():  # type: ignore[no-untyped-def]
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        response = await client.post(url + "/echo", content=chunks())
        assert response.content == b"POST /echo|" + body
        assert upstream.requests[-1].chunked
        assert upstream.requests[-1].body == body


async def test_binary_response_body() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
        httpx.AsyncClient() as client,
    ):
        for mode in ("length", "chunked", "close"):
            response = await client.get(base_url(proxy, "svc") + f"/b?binary=1&mode={mode}")
            assert response.content.endswith(BINARY)


async def test_request_headers_forwarded_and_hop_by_hop_removed() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
        httpx.AsyncClient() as client,
    ):
        url = base_url(proxy, "svc")
        await client.get(
            url + "/h",
            headers=[
                ("X-One", "1"),
                ("X-Multi", "a"),
                ("X-Multi", "b"),
                ("Connection", "keep-alive, X-Secret-Hop"),
                ("X-Secret-Hop", "must not pass"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Proxy-Connection", "keep-alive"),
                ("X-Forwarded-For", "10.0.0.1"),
            ],
        )
        seen = upstream.requests[-1]
        names = [name.lower() for name, _ in seen.headers]
        assert seen.header("x-one") == "1"
        assert seen.all("x-multi") == ["a", "b"]
        for hop in ("connection", "x-secret-hop", "keep-alive", "te", "proxy-connection"):
            assert hop not in names
        assert seen.header("host") == f"127.0.0.1:{upstream.port}"
        assert seen.header("x-forwarded-for") == "10.0.0.1, 127.0.0.1"
        assert seen.header("x-forwarded-proto") == "http"
        assert seen.header("x-forwarded-host") == proxy.addresses["svc"]


async def test_preserve_host_and_no_forwarded_headers() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(
            ServiceConfig(
                name="svc", upstream=upstream.url, preserve_host=True, forwarded_headers=False
            )
        ) as (proxy, _),
        httpx.AsyncClient() as client,
    ):
        await client.get(base_url(proxy, "svc") + "/h", headers={"Host": "api.example"})
        seen = upstream.requests[-1]
        assert seen.header("host") == "api.example"
        assert seen.header("x-forwarded-for") is None
        assert seen.header("x-forwarded-proto") is None


def gated(gate: asyncio.Event) -> Handler:
    """Sends the first event, then waits for the test to say it arrived."""

    async def handler(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        return await _gated(gate, request, writer)

    return handler


async def _gated(gate: asyncio.Event, request: Request, writer: asyncio.StreamWriter) -> bool:
    sse = "sse" in request.target
    content_type = "text/event-stream" if sse else "application/octet-stream"
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
        % content_type.encode()
    )
    first = b"data: one\n\n" if sse else b"first-chunk"
    writer.write(b"%x\r\n%s\r\n" % (len(first), first))
    await writer.drain()
    await gate.wait()
    second = b"data: two\n\n" if sse else b"second-chunk"
    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second))
    return True


@pytest.mark.parametrize("kind", ["chunked", "sse"])
async def test_streamed_responses_arrive_as_sent(kind: str) -> None:
    gate = asyncio.Event()
    async with (
        running_upstream(gated(gate)) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
        httpx.AsyncClient(timeout=5) as client,
        client.stream("GET", base_url(proxy, "svc") + f"/stream/{kind}") as response,
    ):
        chunks = response.aiter_raw()
        first = await asyncio.wait_for(anext(chunks), 3)
        assert first == (b"data: one\n\n" if kind == "sse" else b"first-chunk")
        gate.set()
        rest = b"".join([chunk async for chunk in chunks])
        assert rest == (b"data: two\n\n" if kind == "sse" else b"second-chunk")
    assert capture.snapshot()[0].response_bytes == len(first) + len(rest)


async def test_http10_client_gets_close_delimited_body() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
    ):
        port = proxy.bound[0][1]
        raw = await raw_exchange(port, b"GET /old?mode=chunked HTTP/1.0\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"chunked" not in head.lower()
        assert body == b"GET /old?mode=chunked|"
        # With a length and keep-alive asked for, the connection stays open.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):
            writer.write(b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert b"connection: keep-alive" in head.lower()
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert await reader.readexactly(length) == b"GET /k|"
        writer.close()


async def test_head_then_get_on_the_same_connection() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
        httpx.AsyncClient() as client,
    ):
        url = base_url(proxy, "svc")
        for _ in range(3):
            head = await client.head(url + "/x?mode=length")
            assert head.content == b""
            assert head.headers["content-length"] == str(len(b"HEAD /x?mode=length|"))
            got = await client.get(url + "/x")
            assert got.content == b"GET /x|"
        assert upstream.connections == 1  # the pooled connection survived the HEAD


async def test_expect_100_continue() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(len(b"POST /up|hello")) == b"POST /up|hello"
        writer.close()
        assert upstream.requests[-1].header("expect") is None


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        requests = b"".join(
            b"GET /p/%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
            % (i, b"Connection: close\r\n" if i == 2 else b"")
            for i in range(3)
        )
        raw = await raw_exchange(proxy.bound[0][1], requests)
        assert raw.count(b"HTTP/1.1 200") == 3
        assert raw.index(b"GET /p/0|") < raw.index(b"GET /p/1|") < raw.index(b"GET /p/2|")
        assert len(capture) == 3


async def test_path_prefixes_own_ports_and_unknown_paths() -> None:
    async with (
        running_upstream(echo) as a,
        running_upstream(echo) as b,
        running_upstream(echo) as c,
        running_proxy(
            ServiceConfig(name="a", upstream=a.url, path_prefix="/a"),
            ServiceConfig(name="b", upstream=b.url + "/base", path_prefix="/b", strip_prefix=False),
            ServiceConfig(name="c", upstream=c.url, listen="127.0.0.1:0"),
        ) as (proxy, capture),
        httpx.AsyncClient() as client,
    ):
        shared = base_url(proxy, "a")
        assert shared == base_url(proxy, "b") != base_url(proxy, "c")
        assert (await client.get(shared + "/a/predict?q=1")).content == b"GET /predict?q=1|"
        assert (await client.get(shared + "/a")).content == b"GET /|"
        assert (await client.get(shared + "/b/x")).content == b"GET /base/b/x|"
        assert (await client.get(base_url(proxy, "c") + "/c/y")).content == b"GET /c/y|"
        assert proxy.unrouted_total == 0
        missing = await client.get(shared + "/abc/predict")
        assert missing.status_code == 404
        assert missing.json()["error"] == "no_service"
        recorded = {(e.service, e.path) for e in capture.snapshot()}
        assert recorded == {("a", "/predict"), ("a", "/"), ("b", "/b/x"), ("c", "/c/y")}
        assert proxy.unrouted_total == 1  # no service to record it for: counted


async def test_a_default_service_takes_the_rest_of_the_shared_port() -> None:
    async with (
        running_upstream(echo) as a,
        running_upstream(echo) as default,
        running_proxy(
            ServiceConfig(name="a", upstream=a.url, path_prefix="/a"),
            ServiceConfig(name="main", upstream=default.url),
        ) as (proxy, _),
        httpx.AsyncClient() as client,
    ):
        url = base_url(proxy, "main")
        assert (await client.get(url + "/a/1")).content == b"GET /1|"
        assert (await client.get(url + "/ab/1")).content == b"GET /ab/1|"
        assert (await client.get(url + "/")).content == b"GET /|"


async def test_bad_request_gets_400() -> None:
    async with (
        running_upstream(echo) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        raw = await raw_exchange(proxy.bound[0][1], b"NOT HTTP AT ALL\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 400")
        # Counted per kind, never an event with no method and no route.
        assert proxy.refusals() == {"bad_request": 1}
        assert not capture.snapshot()
        assert not upstream.requests


async def test_upstream_reads_request_only_once() -> None:
    """The raw helper sanity check: what the upstream parsed is what was sent."""
    reader = asyncio.StreamReader()
    reader.feed_data(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    reader.feed_eof()
    request = await read_request(reader)
    assert request is not None and request.body == b"abc"


async def test_trailers_pass_through_and_never_leak_into_the_next_message() -> None:
    """Trailer fields after a chunked body reach the other side; the next request and
    response on the same connections carry none of them."""

    async def with_trailers(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if request.target == "/trailers":
            writer.write(
                b"HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\nX-Checksum: abc\r\nKeep-Alive: timeout=5\r\n\r\n"
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async with (
        running_upstream(with_trailers) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, _),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        try:
            writer.write(
                b"POST /trailers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"2\r\nhi\r\n0\r\nX-Request-Sum: 7\r\nHost: evil\r\n"
                b"X-Forwarded-For: 6.6.6.6\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"trailer: x-checksum" in head.lower()
            assert await reader.readuntil(b"\r\n\r\n") == (
                b"3\r\nabc\r\n0\r\nX-Checksum: abc\r\n\r\n"
            )  # the hop-by-hop Keep-Alive field is not passed on
            writer.write(b"GET /next HTTP/1.1\r\nHost: b\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"x-checksum" not in head.lower()
            assert b"keep-alive" not in head.lower()
            assert await reader.readexactly(2) == b"ok"
        finally:
            writer.close()
        first, second = upstream.requests
        assert (first.body, first.trailers) == (b"hi", [("X-Request-Sum", "7")])
        assert second.header("x-forwarded-host") == "b"
        assert second.header("x-forwarded-for") == "127.0.0.1"
        assert second.header("x-request-sum") is None
        assert upstream.connections == 1  # the upstream connection was reused, clean
