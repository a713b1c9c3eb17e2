"""WebSocket (and any ``Upgrade``) through the proxy: a real websockets server and client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import (
    Request,
    running_proxy,
    running_upstream,
    wait_for_events,
)
from tests.integration.proxy_upstreams import events as captured


async def echo(websocket: ServerConnection) -> None:
    """Greets first (its frame may share a packet with the 101), then echoes."""
    await websocket.send(f"hello {websocket.request.path if websocket.request else ''}")
    with contextlib.suppress(ConnectionClosed):
        async for message in websocket:
            await websocket.send(message)


@contextlib.asynccontextmanager
async def websocket_upstream() -> AsyncIterator[str]:
    async with serve(echo, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def test_websocket_messages_flow_both_ways_and_the_handshake_is_recorded() -> None:
    async with (
        websocket_upstream() as upstream,
        running_proxy(ServiceConfig(name="ws", upstream=upstream)) as (proxy, capture),
    ):
        url = f"ws://{proxy.addresses['ws']}/v1/stream/42"
        async with connect(url, max_size=None) as websocket:
            assert await websocket.recv() == "hello /v1/stream/42"
            assert proxy.open_tunnels == 1
            await websocket.send("ping")
            assert await websocket.recv() == "ping"
            big = bytes(range(256)) * 8192  # 2 MiB: flow control both ways
            await websocket.send(big)
            assert await websocket.recv() == big
        await wait_for_events(capture, 1)
        (event,) = captured(capture)
        assert (event.service, event.method, event.status) == ("ws", "GET", 101)
        assert event.route == "/v1/stream/{id}"
        assert event.error == ""
        assert 0 < event.ttfb_seconds <= event.latency_seconds
        for _ in range(200):  # the tunnel is gone once both sides have closed
            if not proxy.open_tunnels:
                break
            await asyncio.sleep(0.01)
        assert proxy.open_tunnels == 0


async def test_many_websockets_at_once_do_not_mix_up() -> None:
    async with (
        websocket_upstream() as upstream,
        running_proxy(ServiceConfig(name="ws", upstream=upstream)) as (proxy, capture),
    ):

        async def session(n: int) -> None:
            async with connect(f"ws://{proxy.addresses['ws']}/s/{n}") as websocket:
                assert await websocket.recv() == f"hello /s/{n}"
                for i in range(20):
                    await websocket.send(f"{n}:{i}")
                    assert await websocket.recv() == f"{n}:{i}"

        await asyncio.gather(*(session(n) for n in range(20)))
        await wait_for_events(capture, 20)
        assert {event.status for event in captured(capture)} == {101}


async def test_plain_requests_still_work_next_to_websockets() -> None:
    async def ok(request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async with (
        websocket_upstream() as ws_upstream,
        running_upstream(ok) as http_upstream,
        running_proxy(
            ServiceConfig(name="ws", upstream=ws_upstream, path_prefix="/ws"),
            ServiceConfig(name="api", upstream=http_upstream.url),
        ) as (proxy, _),
    ):
        address = proxy.addresses["api"]
        async with connect(f"ws://{address}/ws/chat") as websocket:
            assert await websocket.recv() == "hello /chat"  # prefix stripped
            async with httpx.AsyncClient(base_url=f"http://{address}") as client:
                for _ in range(3):
                    assert (await client.get("/predict")).text == "ok"
            await websocket.send("still here")
            assert await websocket.recv() == "still here"


async def test_an_upstream_that_refuses_the_upgrade_answers_and_closes() -> None:
    async def refuse(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        # The proxy forwards the Upgrade headers; this upstream does not speak WebSocket.
        assert request.header("upgrade") == "websocket"
        assert "upgrade" in (request.header("connection") or "").lower()
        writer.write(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 4\r\n\r\nnope")
        return True

    async with (
        running_upstream(refuse) as upstream,
        running_proxy(ServiceConfig(name="ws", upstream=upstream.url)) as (proxy, capture),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{proxy.addresses['ws']}/chat"):
                pass
        assert refused.value.response.status_code == 426
        await wait_for_events(capture, 1)
        (event,) = captured(capture)
        assert (event.status, event.error) == (426, "")
        assert len(upstream.requests) == 1


async def test_upstream_switching_protocols_unasked_is_a_502() -> None:
    async def rogue(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"
        )
        return False

    async with (
        running_upstream(rogue) as upstream,
        running_proxy(ServiceConfig(name="ws", upstream=upstream.url)) as (proxy, capture),
        httpx.AsyncClient(base_url=f"http://{proxy.addresses['ws']}") as client,
    ):
        response = await client.get("/plain")
        assert response.status_code == 502
        assert response.json()["error"] == "upstream_protocol"
        await wait_for_events(capture, 1)
        assert captured(capture)[0].error == "upstream_protocol"


async def test_stopping_the_proxy_closes_open_tunnels() -> None:
    async with websocket_upstream() as upstream:
        async with running_proxy(ServiceConfig(name="ws", upstream=upstream)) as (proxy, _):
            websocket = await connect(f"ws://{proxy.addresses['ws']}/long")
            assert await websocket.recv() == "hello /long"
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                await websocket.recv()
        await websocket.close()


async def test_a_raw_upgraded_protocol_relays_bytes_and_half_close() -> None:
    """Not only WebSocket: any protocol the upstream switches to, byte for byte."""

    async def shout(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        assert request.header("upgrade") == "shout/1"
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout/1\r\n\r\n"
            b"ready\n"
        )
        received = await reader.read()  # until the client's half-close arrives
        writer.write(received.upper() + b"bye\n")
        await writer.drain()
        return False

    async with (
        running_upstream(shout) as upstream,
        running_proxy(ServiceConfig(name="raw", upstream=upstream.url)) as (proxy, capture),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(
            b"GET /shout HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: shout/1\r\n\r\n"
            b"early "  # sent before the 101: held, then relayed
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"upgrade: shout/1" in head.lower()
        assert await reader.readline() == b"ready\n"
        writer.write(b"words")
        writer.write_eof()
        async with asyncio.timeout(5):
            assert await reader.read() == b"EARLY WORDSbye\n"
        writer.close()
        await wait_for_events(capture, 1)
        assert captured(capture)[0].status == 101


async def test_h2c_upgrades_are_not_passed_on() -> None:
    """``curl --http2`` on http:// asks for h2c: HTTP/2 in a tunnel would hide every
    request, so the upstream never sees the Upgrade and answers over HTTP/1.1."""

    async def http11(
        request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        seen = f"{request.header('upgrade')}|{request.header('http2-settings')}".encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(seen), seen))
        return True

    async with (
        running_upstream(http11) as upstream,
        running_proxy(ServiceConfig(name="api", upstream=upstream.url)) as (proxy, capture),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(
            b"GET /models HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
        )
        async with asyncio.timeout(5):
            response = await reader.read()  # answered, then closed: no HTTP after it
        writer.close()
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert response.endswith(b"\r\n\r\nNone|None")
        await wait_for_events(capture, 1)
        assert captured(capture)[0].status == 200


async def test_a_slow_reader_holds_the_upstream_back_instead_of_filling_memory() -> None:
    """Flow control inside a tunnel: the proxy stops reading the upstream while the
    client is not reading, so what it buffers stays small whatever the upstream sends."""
    total = 24 * 1024 * 1024

    async def flood(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: flood\r\n\r\n"
        )
        block = b"x" * 65536
        for _ in range(total // len(block)):
            writer.write(block)
            await writer.drain()
        return False

    async with (
        running_upstream(flood) as upstream,
        running_proxy(ServiceConfig(name="raw", upstream=upstream.url)) as (proxy, _),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1], limit=65536)
        writer.write(b"GET /f HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: flood\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1.0)  # not reading: kernel buffers fill, then the proxy's
        (tunnel,) = next(listener.tunnels for _, _, listener in proxy._plan if listener.tunnels)
        buffered = tunnel.client.transport.get_write_buffer_size()
        assert buffered < 2 * 1024 * 1024, f"the proxy buffered {buffered} bytes"
        assert tunnel.bytes_down < total  # the upstream was held back
        received = 0
        async with asyncio.timeout(20):
            while chunk := await reader.read(1 << 20):
                received += len(chunk)
        writer.close()
        assert received == total
