"""100 MB each way through a proxy in its own process: bytes intact, memory flat."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest

from tests.integration.proxy_upstreams import Request, running_upstream

SIZE = 100 * 1024 * 1024
BLOCK = 256 * 1024
ROOT = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def big(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    if request.method == "POST":  # count the upload without keeping it
        remaining = int(request.header("content-length") or 0)
        received = 0
        while remaining:
            data = await reader.read(min(BLOCK, remaining))
            if not data:
                return False
            received += len(data)
            remaining -= len(data)
        body = b"%d" % received
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True
    chunked = "chunked" in request.target
    if chunked:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    else:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
    block = b"z" * BLOCK
    for _ in range(SIZE // BLOCK):
        writer.write(b"%x\r\n%s\r\n" % (BLOCK, block) if chunked else block)
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
    return True


async def download(port: int, target: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    total = 0
    if b"transfer-encoding: chunked" in head.lower():
        while size := int((await reader.readline()).strip(), 16):
            for _ in range(size // BLOCK + 1):
                data = await reader.readexactly(min(BLOCK, size))
                total += len(data)
                size -= len(data)
                if not size:
                    break
            await reader.readexactly(2)
    else:
        while data := await reader.read(BLOCK):
            total += len(data)
    writer.close()
    return total


async def upload(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % SIZE)
    block = b"u" * BLOCK
    for _ in range(SIZE // BLOCK):
        writer.write(block)
        await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    writer.close()
    return body


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_100mb_each_way_in_flat_memory() -> None:
    async with running_upstream(big, read_body=False) as upstream:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.proxy_process",
            upstream.url,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout is not None and process.stdin is not None
        try:
            port = int(await asyncio.wait_for(process.stdout.readline(), 20))
            # Warm up (imports, first buffers) before the baseline.
            assert await download(port, "/warm") == SIZE
            baseline = rss_mb(process.pid)
            samples: list[float] = []

            async def sample() -> None:
                for _ in range(100_000):
                    samples.append(rss_mb(process.pid))
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            try:
                async with asyncio.timeout(120):
                    assert await upload(port) == b"%d" % SIZE
                    assert await download(port, "/length") == SIZE
                    assert await download(port, "/chunked") == SIZE
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            peak = max(samples)
            assert peak - baseline < 16, f"RSS grew from {baseline:.1f} MB to {peak:.1f} MB"
        finally:
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
