"""Hostile-traffic benchmark: 100,000 distinct random paths through `modelmonitor up`.

Issue 10 found that ~80,000 requests to random paths (``/r/<12 letters>``) made one
route each: RSS 85 -> 353 MB, and an ordinary request took seconds for minutes
afterwards. This runs the product as users run it (``modelmonitor up`` on embedded
defaults, in front of a trivial upstream), then:

1. warms it with ordinary traffic, measures the RSS of its process tree and the
   latency of an ordinary request (sequential, one connection);
2. sends ``--paths`` requests, each to a distinct random path;
3. lets the pipeline settle and measures both again, plus ``/api/v1/routes``.

PASS when RSS grew at most 10 % and an ordinary request's p50 at most
max(2x, +0.5 ms). Only 127.0.0.1; every loop is bounded.

    python bench/hostile.py                  # 100,000 paths, ~1-2 minutes
    python bench/hostile.py --paths 20000    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import ROOT, free_port, rss_mib, wait_http

HOST = "127.0.0.1"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
    b'{"prediction": 1}'
)
RSS_TOLERANCE = 0.10
LATENCY_FACTOR = 2.0
LATENCY_SLACK_MS = 0.5


# ---------------------------------------------------------------- upstream role


class _Upstream(asyncio.Protocol):
    """Answers every request with the same small JSON (counts request heads)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        data = self.pending + data
        heads = data.count(b"\r\n\r\n")
        self.pending = data[data.rfind(b"\r\n\r\n") + 4 :] if heads else data
        if heads:
            self.transport.write(RESPONSE * heads)


def run_upstream(port: int) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Upstream, HOST, port, backlog=1024)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


# ---------------------------------------------------------------- measuring


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its descendants."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            total += rss_mib(current)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> None:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n")[0].decode())


async def load(port: int, paths: list[str], connections: int) -> float:
    """Send every path once over ``connections`` keep-alive connections; seconds taken."""
    queue = list(reversed(paths))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        while queue:
            await _get(reader, writer, queue.pop())
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started


async def probe(port: int, samples: int) -> tuple[float, float]:
    """p50 and p99 (ms) of an ordinary request, sequential on one connection."""
    reader, writer = await asyncio.open_connection(HOST, port)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await _get(reader, writer, "/v1/models/iris/predict")
        times.append((time.perf_counter() - started) * 1000)
    writer.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def random_paths(count: int, seed: int) -> list[str]:
    """``/r/<12 random letters>``, all distinct (the attack of issue 10)."""
    rng = random.Random(seed)
    paths: set[str] = set()
    while len(paths) < count:
        paths.add("/r/" + "".join(rng.choices(string.ascii_lowercase, k=12)))
    return list(paths)


# ---------------------------------------------------------------- main


def _child(role: str, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, os.path.abspath(__file__), "--role", role, *args]
    return subprocess.Popen(command)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def scenario(args: argparse.Namespace, proxy_port: int, api_port: int, pid: int) -> bool:
    import httpx

    async def settled(label: str) -> tuple[float, float]:
        """Let the pipeline settle; the tree's RSS and an ordinary request's p50."""
        await asyncio.sleep(args.settle)
        rss = tree_rss_mib(pid)
        p50, p99 = await probe(proxy_port, args.samples)
        print(f"  {label:<11} rss {rss:7.1f} MiB  ordinary p50 {p50:.3f} ms  p99 {p99:.3f} ms")
        return rss, p50

    ordinary = [f"/v1/models/m{index % 50}/predict" for index in range(args.warmup)]
    await load(proxy_port, ordinary, args.connections)
    rss_before, p50_before = await settled("before")

    paths = random_paths(args.paths, seed=10)
    half = len(paths) // 2
    elapsed = await load(proxy_port, paths[:half], args.connections)
    print(f"  hostile 1/2 {half} distinct paths in {elapsed:.1f} s ({half / elapsed:.0f} req/s)")
    rss_half, _ = await settled("halfway")
    elapsed = await load(proxy_port, paths[half:], args.connections)
    print(
        f"  hostile 2/2 {len(paths) - half} more in {elapsed:.1f} s "
        f"({(len(paths) - half) / elapsed:.0f} req/s), rss {tree_rss_mib(pid):.1f} MiB"
    )
    p50_during, p99_during = await probe(proxy_port, args.samples)
    print(f"  right after ordinary p50 {p50_during:.3f} ms  p99 {p99_during:.3f} ms")
    rss_after, p50_after = await settled("after")

    async with httpx.AsyncClient(base_url=f"http://{HOST}:{api_port}", timeout=60) as api:
        started = time.perf_counter()
        response = await api.get("/api/v1/routes", params={"service": "default"})
        took = time.perf_counter() - started
        routes = response.json()
        count = len(routes.get("routes", routes) if isinstance(routes, dict) else routes)
        health = (await api.get("/api/v1/health")).json()
    detail = health.get("components", {}).get("proxy", {}).get("detail", "")
    print(
        f"  /api/v1/routes  {count} routes, {len(response.content) / 1024:.0f} KiB "
        f"in {took * 1000:.0f} ms"
    )
    if detail:
        print(f"  proxy health    {detail}")
    for proxy in health.get("proxies", []):
        print(f"  proxy stats     {proxy['proxy_id']}: edge {proxy.get('edge', {})}")

    # The routes up to the cap cost memory by design (live windows per route); flat
    # means the second half of the distinct paths adds nothing that stays.
    growth = rss_after / rss_half - 1
    latency_bar = max(LATENCY_FACTOR * p50_before, p50_before + LATENCY_SLACK_MS)
    memory_ok = growth <= RSS_TOLERANCE
    latency_ok = p50_after <= latency_bar
    print(
        f"memory  {growth * 100:+.1f} % over the second {len(paths) - half} paths "
        f"(target <= {RSS_TOLERANCE * 100:.0f} %); {(rss_after / rss_before - 1) * 100:+.1f} % "
        f"since before (the route cap's worth)  {'PASS' if memory_ok else 'FAIL'}"
    )
    print(
        f"latency p50 {p50_after:.3f} ms after vs {p50_before:.3f} ms before "
        f"(target <= {latency_bar:.3f} ms)  {'PASS' if latency_ok else 'FAIL'}"
    )
    return memory_ok and latency_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default="main", choices=["main", "upstream"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--paths", type=int, default=100_000, help="distinct random paths")
    parser.add_argument("--warmup", type=int, default=10_000, help="ordinary requests first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--samples", type=int, default=300, help="ordinary requests per probe")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before measuring")
    args = parser.parse_args()
    if args.role == "upstream":
        with contextlib.suppress(KeyboardInterrupt):
            run_upstream(args.port)
        return 0

    upstream_port, proxy_port, api_port = free_port(), free_port(), free_port()
    print(
        f"hostile-paths benchmark: {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; `modelmonitor up` on embedded defaults"
    )
    upstream = _child("upstream", "--port", str(upstream_port))
    with tempfile.TemporaryDirectory(prefix="mm-hostile-") as data_dir:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), MODELMONITOR_LOG_LEVEL="warning")
        command = [
            sys.executable, "-m", "modelmonitor", "up",
            "--target", f"http://{HOST}:{upstream_port}",
            "--listen", f"{HOST}:{proxy_port}",
            "--api", f"{HOST}:{api_port}",
            "--data-dir", data_dir,
        ]  # fmt: skip
        product = subprocess.Popen(command, env=env)
        try:
            wait_http(f"http://{HOST}:{api_port}/health", timeout=60)
            wait_http(f"http://{HOST}:{proxy_port}/", timeout=30)
            ok = asyncio.run(scenario(args, proxy_port, api_port, product.pid))
        finally:
            _stop(product)
            _stop(upstream)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
