"""Small real upstream servers for the proxy tests (raw asyncio streams, port 0)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from modelmonitor.events import RequestEvent
from modelmonitor.protocols.awareness import ModelAwareness
from modelmonitor.proxy import CaptureBuffer, ProxyServer
from modelmonitor.settings import ProxyLimits, ServiceConfig

__all__ = [
    "Handler",
    "Request",
    "Upstream",
    "base_url",
    "closed_port",
    "events",
    "raw_exchange",
    "read_request",
    "running_proxy",
    "running_upstream",
    "wait_for_events",
]


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunked: bool = False
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


async def read_request(reader: asyncio.StreamReader, *, read_body: bool = True) -> Request | None:
    """One HTTP/1.1 request (``None`` at EOF); the body is read unless told not to."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    request = Request(method, target, version, headers)
    if not read_body:
        return request
    codings = (request.header("transfer-encoding") or "").lower().split(",")
    if codings[-1].strip() == "chunked":
        request.chunked = True
        parts = []
        while True:
            size = int((await reader.readline()).strip().split(b";")[0], 16)
            if size == 0:
                while line := (await reader.readline()).decode("latin-1").strip():
                    name, _, value = line.partition(":")
                    request.trailers.append((name, value.strip()))
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        request.body = b"".join(parts)
    elif request.header("content-length"):
        request.body = await reader.readexactly(int(request.header("content-length") or 0))
    return request


Handler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class Upstream:
    """A running upstream: its port, the requests it saw, its connection count."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def running_upstream(
    handler: Handler, *, read_body: bool = True, idle_close: float | None = None
) -> AsyncIterator[Upstream]:
    """Serve ``handler`` (returns whether to keep the connection) on 127.0.0.1:0.

    ``idle_close`` closes a keep-alive connection silently after that many idle
    seconds, like uvicorn and gunicorn do.
    """
    upstream = Upstream()
    tasks: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.add(writer)
        try:
            for _ in range(100_000):
                try:
                    async with asyncio.timeout(idle_close):
                        request = await read_request(reader, read_body=read_body)
                except TimeoutError:
                    break  # idle too long: close silently
                if request is None:
                    break
                upstream.requests.append(request)
                if not await handler(request, reader, writer):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            tasks.discard(task)
            writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    upstream.server = server
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        if tasks:
            await asyncio.wait(list(tasks), timeout=2.0)


@contextlib.asynccontextmanager
async def running_proxy(
    *services: ServiceConfig,
    capacity: int = 10_000,
    listen: str = "127.0.0.1:0",
    tls: ssl.SSLContext | None = None,
    models: ModelAwareness | None = None,
    **limits: float,
) -> AsyncIterator[tuple[ProxyServer, CaptureBuffer]]:
    """A started :class:`ProxyServer` for ``services`` and its capture buffer;
    keyword arguments set :class:`ProxyLimits` fields."""
    capture = CaptureBuffer(capacity)
    proxy = ProxyServer(
        list(services),
        listen=listen,
        capture=capture,
        tls=tls,
        limits=ProxyLimits.model_validate(limits),
        models=models,
    )
    await proxy.start()
    try:
        yield proxy, capture
    finally:
        await proxy.stop(grace=1.0)


def base_url(proxy: ProxyServer, service: str) -> str:
    return f"http://{proxy.addresses[service]}"


def events(capture: CaptureBuffer) -> list[RequestEvent]:
    """Everything captured so far (test helper: reads without draining)."""
    return capture.snapshot()


async def wait_for_events(capture: CaptureBuffer, count: int, seconds: float = 5.0) -> None:
    """Events are recorded when a response completes; wait until ``count`` are in."""
    for _ in range(int(seconds / 0.01)):
        if len(capture) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(capture)} events, expected {count}")


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def raw_exchange(port: int, data: bytes, *, until_close: bool = True) -> bytes:
    """Send raw bytes to 127.0.0.1:``port``; what comes back (until close, or one read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(5):
            return await reader.read(-1) if until_close else await reader.read(65536)
    finally:
        writer.close()
