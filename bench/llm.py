"""LLM-parsing benchmark: what model-aware measurement costs the proxy.

Two ProxyServer processes, identical but for the service's ``protocol``: ``auto``
(recognition and LLM parsing on) and ``none`` (off). Measured in one run:

* non-LLM throughput: wrk -t1 -c32 on a KServe V1 ``:predict`` path (recognised,
  no body parsing), rounds alternating between the two; target on/off >= 0.95;
* a 10,000-token chat completion stream, paced like a fast model (~5,000 tokens/s,
  one SSE event per chunk, usage in the last one): how long after the upstream
  wrote the final bytes the client had them, on and off (same process, same clock);
  target: on adds <= 0.2 ms (median of the runs);
* for information, the same stream unpaced (the upstream writes as fast as it can):
  the proxy's CPU per token on and off.

Only 127.0.0.1; every loop is bounded.  ``python bench/llm.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HOST = "127.0.0.1"
TOKENS = 10_000
PACE_TOKENS_PER_SECOND = 5_000
MAX_THROUGHPUT_LOSS = 0.05
MAX_LAST_BYTE_MS = 0.2
PREDICT = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
    b'{"predictions":1}'
)


def _chunk(payload: dict[str, object] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    data = f"data: {text}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_chunks(tokens: int) -> list[bytes]:
    base = {"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    chunks = [_chunk({**base, "choices": [role]})]
    for index in range(tokens):
        delta = {"index": 0, "delta": {"content": f" tok{index}"}, "finish_reason": None}
        chunks.append(_chunk({**base, "choices": [delta]}))
    usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": tokens + 12}
    last = {"index": 0, "delta": {}, "finish_reason": "stop"}
    chunks.append(_chunk({**base, "choices": [last]}))
    chunks.append(_chunk({**base, "choices": [], "usage": usage}) + _chunk("[DONE]") + b"0\r\n\r\n")
    return chunks


# ---------------------------------------------------------------- the proxy child


def run_proxy(upstream: str, port: int, protocol: str) -> None:
    import uvloop

    from modelmonitor.bus.memory import MemoryBus
    from modelmonitor.proxy import CaptureBuffer, ProxyServer, Shipper
    from modelmonitor.settings import ServiceConfig

    async def main() -> None:
        bus = MemoryBus()
        await bus.connect()

        async def drain() -> None:
            async for delivery in bus.consume():
                await delivery.ack()

        consumer = asyncio.get_running_loop().create_task(drain())
        capture = CaptureBuffer(100_000)
        config = ServiceConfig(name="bench", upstream=upstream, protocol=protocol)
        proxy = ProxyServer([config], listen=f"{HOST}:{port}", capture=capture)
        shipper = Shipper(capture, bus, proxy_id="bench-llm", in_flight=proxy.in_flight)
        await shipper.start()
        await proxy.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await proxy.stop(grace=1.0)
        await shipper.stop()
        consumer.cancel()

    uvloop.run(main())


# ---------------------------------------------------------------- upstream and client


class Upstream:
    """Answers ``:predict`` with a small JSON and chat completions with a token stream;
    remembers when it wrote each stream's final bytes."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.writers: set[asyncio.StreamWriter] = set()
        self.paced = True
        self.last_written = 0.0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                if length:
                    await reader.readexactly(int(length[1]))
                if b"/chat/completions" not in head.split(b"\r\n", 1)[0]:
                    writer.write(PREDICT)
                    continue
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                await self._stream(writer)
        self.writers.discard(writer)
        writer.close()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        per_sleep = 10  # tokens between pauses: asyncio sleeps ~1 ms at the finest
        pause = per_sleep / PACE_TOKENS_PER_SECOND
        started = time.perf_counter()
        for index, chunk in enumerate(self.chunks):
            writer.write(chunk)
            if self.paced and index % per_sleep == per_sleep - 1:
                await writer.drain()
                due = started + (index + 1) / PACE_TOKENS_PER_SECOND
                await asyncio.sleep(max(0.0, min(pause, due - time.perf_counter())))
        self.last_written = time.perf_counter()
        await writer.drain()


async def one_stream(port: int) -> float:
    """Seconds from the stream's last write upstream to its last byte at the client."""
    reader, writer = await asyncio.open_connection(HOST, port)
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    tail = b""
    while True:
        data = await reader.read(1 << 16)
        if not data:
            raise RuntimeError("stream ended early")
        tail = (tail + data)[-16:]
        if tail.endswith(b"\r\n0\r\n\r\n"):
            arrived = time.perf_counter()
            break
    writer.close()
    return arrived


def wrk_rps(port: int, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", f"http://{HOST}:{port}/v1/models/iris:predict"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(found[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_proxy(upstream_port: int, protocol: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, os.path.abspath(__file__), "--role", "proxy"]
    argv += ["--upstream", f"http://{HOST}:{upstream_port}", "--port", str(port)]
    process = subprocess.Popen([*argv, "--protocol", protocol])
    for _ in range(300):
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return process, port
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the proxy did not start")


async def measure(args: argparse.Namespace) -> bool:
    upstream = Upstream(stream_chunks(TOKENS))
    server = await asyncio.start_server(upstream.serve, HOST, 0)
    upstream_port = server.sockets[0].getsockname()[1]
    proxies = {name: start_proxy(upstream_port, name) for name in ("auto", "none")}
    rps: dict[str, list[float]] = {"auto": [], "none": []}
    added: dict[str, list[float]] = {"auto": [], "none": []}
    cpu: dict[str, float] = {}
    try:
        loop = asyncio.get_running_loop()
        for round_index in range(args.rounds):
            order = ("auto", "none") if round_index % 2 == 0 else ("none", "auto")
            for name in order:
                port = proxies[name][1]
                rps[name].append(await loop.run_in_executor(None, wrk_rps, port, args.seconds))
                arrived = await one_stream(port)
                added[name].append((arrived - upstream.last_written) * 1000)
        upstream.paced = False
        for name in ("auto", "none"):
            process, port = proxies[name]
            before = cpu_seconds(process.pid)
            for _ in range(3):
                await one_stream(port)
            cpu[name] = (cpu_seconds(process.pid) - before) / (3 * TOKENS) * 1e6
    finally:
        for process, _ in proxies.values():
            process.send_signal(signal.SIGTERM)
            process.wait(15)
        for writer in list(upstream.writers):
            writer.close()
        server.close()
        await asyncio.sleep(0.1)
    return report(rps, added, cpu)


def report(
    rps: dict[str, list[float]], added: dict[str, list[float]], cpu: dict[str, float]
) -> bool:
    on, off = statistics.median(rps["auto"]), statistics.median(rps["none"])
    # Rounds alternate, so each pair ran under the same background load.
    ratio = statistics.median(a / b for a, b in zip(rps["auto"], rps["none"], strict=True))
    last_on, last_off = statistics.median(added["auto"]), statistics.median(added["none"])
    extra = last_on - last_off
    print(
        f"non-LLM throughput   parsing on {on:9.0f} req/s   off {off:9.0f} req/s   "
        f"ratio {ratio:.3f} (target >= {1 - MAX_THROUGHPUT_LOSS:.2f})"
    )
    print(
        f"{TOKENS}-token stream, paced at {PACE_TOKENS_PER_SECOND}/s: last byte after the "
        f"upstream's last write  on {last_on:.3f} ms  off {last_off:.3f} ms  "
        f"added {extra:+.3f} ms (target <= {MAX_LAST_BYTE_MS} ms)"
    )
    print(
        f"unpaced stream, proxy CPU per token   on {cpu['auto']:.2f} us   off {cpu['none']:.2f} us"
    )
    ok = ratio >= 1 - MAX_THROUGHPUT_LOSS and extra <= MAX_LAST_BYTE_MS
    print(f"LLM parsing: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["bench", "proxy"], default="bench")
    parser.add_argument("--upstream", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--protocol", default="auto")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if args.role == "proxy":
        run_proxy(args.upstream, args.port, args.protocol)
        return 0
    if not shutil.which("wrk"):
        print("wrk is missing: run scripts/ensure-bench-tools.sh", file=sys.stderr)
        return 2
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    return 0 if asyncio.run(measure(args)) else 1


if __name__ == "__main__":
    sys.exit(main())
