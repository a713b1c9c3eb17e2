"""Proxy benchmark: ModelMonitor's ProxyServer against nginx, same run, same upstream.

Measures, alternating between targets (each a single process; ``--pin`` pins them):

* direct      wrk -> trivial upstream
* modelmonitor wrk -> ProxyServer (capture ON: events -> MemoryBus, drained) -> upstream
* nginx       wrk -> nginx (1 process, upstream keepalive) -> upstream

Saturated throughput (wrk -t1 -c32) and latency at ~100 and ~1000 req/s (paced with
a wrk Lua ``delay()``), then ModelMonitor's memory under sustained load (``--soak``)
and while a 100 MB body streams through it each way. Prints a table, the ratios
and PASS/FAIL against the targets. Only 127.0.0.1; every loop is bounded.

    python bench/proxy.py                 # ~10 minutes (the memory run is 5 of them)
    python bench/proxy.py --soak 60       # a shorter memory run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
    b'{"prediction": 1}'
)
BIG = 100 * 1024 * 1024
CHUNK = 256 * 1024

# Targets (from the issue).
MIN_THROUGHPUT_RATIO = 0.4
LATENCY_FACTOR = 2.0
LATENCY_SLACK_MS = 0.3
RSS_TOLERANCE = 0.10


# ---------------------------------------------------------------- child roles


PIN = False  # --pin: CPU affinity for every process (only on an otherwise idle machine)


def _set_cpu(cpu: int | None) -> None:
    if PIN and cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


def run_upstream(port: int) -> None:
    """A minimal fast upstream: a fixed small response per request, keep-alive."""
    import uvloop

    class Upstream(asyncio.Protocol):
        transport: asyncio.Transport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            count = data.count(b"\r\n\r\n")
            if count:
                self.transport.write(RESPONSE * count)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Upstream, HOST, port, backlog=4096)
        print("ready", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    uvloop.run(main())


def run_big_upstream(port: int) -> None:
    """Upstream for the big-body check: POST reads and discards, GET sends 100 MB."""
    import uvloop

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            for _ in range(1000):
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                match = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if match:
                    length = int(match.group(1))
                received = 0
                while received < length:
                    data = await reader.read(min(CHUNK, length - received))
                    if not data:
                        return
                    received += len(data)
                if head.startswith(b"GET"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
                    block = b"x" * CHUNK
                    for _ in range(BIG // CHUNK):
                        writer.write(block)
                        await writer.drain()
                else:
                    body = b"%d" % received
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                await writer.drain()
        writer.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(serve, HOST, port)
        print("ready", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    uvloop.run(main())


def run_proxy(upstream: str, port: int, big_upstream: str, big_port: int) -> None:
    """ModelMonitor's ProxyServer with capture on: events go to a drained MemoryBus."""
    import uvloop

    from modelmonitor.bus.memory import MemoryBus
    from modelmonitor.proxy import CaptureBuffer, ProxyServer, Shipper
    from modelmonitor.settings import ServiceConfig

    async def main() -> None:
        loop = asyncio.get_running_loop()
        bus = MemoryBus()
        await bus.connect()
        received = 0

        async def drain() -> None:
            nonlocal received
            async for delivery in bus.consume():
                received += 1
                await delivery.ack()

        consumer = loop.create_task(drain())
        capture = CaptureBuffer(100_000)
        services = [ServiceConfig(name="bench", upstream=upstream)]
        if big_upstream:
            services.append(
                ServiceConfig(name="big", upstream=big_upstream, listen=f"{HOST}:{big_port}")
            )
        proxy = ProxyServer(services, listen=f"{HOST}:{port}", capture=capture)
        shipper = Shipper(capture, bus, proxy_id="bench", in_flight=proxy.in_flight)
        await shipper.start()
        await proxy.start()
        print("ready", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await proxy.stop(grace=1.0)
        await shipper.stop()
        await bus.close()
        consumer.cancel()
        print(
            f"stats captured={capture.captured_total} dropped={capture.dropped_total} "
            f"shipped={shipper.events_sent} batches={received}",
            flush=True,
        )

    uvloop.run(main())


# ---------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                out, _ = self.process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, _ = self.process.communicate(timeout=5)
            return out or ""
        return ""


def start_child(name: str, argv: list[str], cpu: int | None, ready_port: int) -> Child:
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=(lambda: _set_cpu(cpu)),
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {process.stdout.read() if process.stdout else ''}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, ready_port), 0.2):
            return Child(name, process)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{name} did not start listening on {ready_port}")


def python_child(role: str, *args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--role", role, *args]


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream model {{
        server {host}:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen {host}:{port} reuseport backlog=4096;
        location / {{
            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $proxy_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise SystemExit("nginx not found: run scripts/ensure-bench-tools.sh")
    return found


@contextlib.contextmanager
def nginx_proxy(upstream_port: int, port: int, cpu: int | None) -> Iterator[Child]:
    with tempfile.TemporaryDirectory(prefix="mm-nginx-") as tmp:
        conf = Path(tmp, "nginx.conf")
        conf.write_text(
            NGINX_CONF.format(tmp=tmp, host=HOST, upstream_port=upstream_port, port=port)
        )
        child = start_child("nginx", [nginx_binary(), "-p", tmp, "-c", str(conf)], cpu, port)
        try:
            yield child
        finally:
            child.stop()


# ---------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = float("nan")  # the proxy's CPU time per request


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process, from /proc (nan when unknown)."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    port: int,
    *,
    seconds: float,
    connections: int,
    rate: float | None,
    tmp: Path,
    pid: int | None = None,
) -> WrkResult:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if rate:
        script = tmp / f"pace-{connections}-{rate:g}.lua"
        delay_ms = connections * 1000.0 / rate
        script.write_text(f"function delay()\n  return {delay_ms:.3f}\nend\n")
        argv += ["-s", str(script)]
    argv.append(f"http://{HOST}:{port}/v1/models/iris/predict")
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        preexec_fn=(lambda: _set_cpu(1)),
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    if not (rps and p50 and p99):
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    total = re.search(r"(\d+) requests in", out)
    cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / max(1, int(total.group(1)) if total else 1)
    return WrkResult(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors, cpu_us)


# ---------------------------------------------------------------- memory


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def soak(pid: int, port: int, seconds: float, tmp: Path) -> tuple[list[float], WrkResult]:
    """Sustained saturated load; RSS sampled every second."""
    warm = min(5.0, seconds / 4)
    samples: list[float] = []
    process = subprocess.Popen(
        [
            "wrk",
            "-t1",
            "-c32",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            f"http://{HOST}:{port}/v1/models/iris/predict",
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: _set_cpu(1)),
    )
    started = time.monotonic()
    while process.poll() is None and time.monotonic() - started < seconds + 30:
        time.sleep(1.0)
        if time.monotonic() - started >= warm:
            samples.append(rss_mb(pid))
    out = process.communicate(timeout=30)[0]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    result = WrkResult(
        float(rps.group(1)) if rps else 0.0,
        _ms(p50.group(1)) if p50 else float("nan"),
        _ms(p99.group(1)) if p99 else float("nan"),
        0,
    )
    return samples, result


async def _big_transfer(port: int, upload: bool) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        if upload:
            writer.write(
                b"POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n" % BIG
            )
            block = b"y" * CHUNK
            for _ in range(BIG // CHUNK):
                writer.write(block)
                await writer.drain()
        else:
            writer.write(b"GET /download HTTP/1.1\r\nHost: bench\r\n\r\n")
            await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"(?i)content-length:\s*(\d+)", head)
        length = int(match.group(1)) if match else 0
        received = 0
        while received < length:
            data = await reader.read(CHUNK)
            if not data:
                break
            received += len(data)
        return received
    finally:
        writer.close()


async def big_body(pid: int, port: int) -> tuple[float, list[float], bool]:
    before = rss_mb(pid)
    samples: list[float] = []
    done = asyncio.Event()

    async def sample() -> None:
        for _ in range(100_000):
            samples.append(rss_mb(pid))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await done.wait()
            if done.is_set():
                return

    sampler = asyncio.create_task(sample())
    async with asyncio.timeout(300):
        up = await _big_transfer(port, upload=True)
        down = await _big_transfer(port, upload=False)
    done.set()
    await sampler
    ok = up == len(str(BIG)) and down == BIG
    return before, samples, ok


# ---------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def latency_ok(mm_added: float, nginx_added: float) -> bool:
    nginx_added = max(nginx_added, 0.0)
    return mm_added <= LATENCY_FACTOR * nginx_added or mm_added <= nginx_added + LATENCY_SLACK_MS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--role", choices=["bench", "upstream", "big-upstream", "proxy"], default="bench"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--big-upstream", default="")
    parser.add_argument("--big-port", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--seconds", type=float, default=5, help="saturated run length")
    parser.add_argument("--paced-seconds", type=float, default=10, help="paced run length")
    parser.add_argument("--soak", type=float, default=300, help="sustained-load memory check (s)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--pin", action="store_true", help="pin proxies to CPU 0, the rest to 1")
    args = parser.parse_args()
    global PIN
    PIN = args.pin

    if args.role == "upstream":
        run_upstream(args.port)
        return 0
    if args.role == "big-upstream":
        run_big_upstream(args.port)
        return 0
    if args.role == "proxy":
        run_proxy(args.upstream, args.port, args.big_upstream, args.big_port)
        return 0

    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: run scripts/ensure-bench-tools.sh")
    cpus = os.cpu_count() or 1
    placement = "proxies on CPU 0, wrk and upstream on CPU 1" if PIN else "no CPU pinning"
    print(f"proxy benchmark: {cpus} CPUs, load average {os.getloadavg()[0]:.2f}; {placement}")
    upstream_port, mm_port, nginx_port = free_port(), free_port(), free_port()
    upstream = start_child(
        "upstream", python_child("upstream", "--port", str(upstream_port)), 1, upstream_port
    )
    upstream_url = f"http://{HOST}:{upstream_port}"
    scenarios = [
        ("saturated", 32, None, args.seconds),
        ("~100 req/s", 4, 100.0, args.paced_seconds),
        ("~1000 req/s", 10, 1000.0, args.paced_seconds),
    ]
    results: dict[tuple[str, str], list[WrkResult]] = {}
    proxy_stats = ""
    try:
        mm = start_child(
            "modelmonitor",
            python_child("proxy", "--upstream", upstream_url, "--port", str(mm_port)),
            0,
            mm_port,
        )
        try:
            with (
                nginx_proxy(upstream_port, nginx_port, 0) as nginx,
                tempfile.TemporaryDirectory() as tmp,
            ):
                ports = {"direct": upstream_port, "modelmonitor": mm_port, "nginx": nginx_port}
                pids = {"direct": upstream.pid, "modelmonitor": mm.pid, "nginx": nginx.pid}
                for port in ports.values():  # warm up every path
                    wrk(port, seconds=1, connections=8, rate=None, tmp=Path(tmp))
                for round_index in range(args.rounds):
                    order = list(ports) if round_index % 2 == 0 else list(reversed(ports))
                    for scenario, connections, rate, seconds in scenarios:
                        for name in order:
                            result = wrk(
                                ports[name],
                                seconds=seconds,
                                connections=connections,
                                rate=rate,
                                tmp=Path(tmp),
                                pid=pids[name],
                            )
                            results.setdefault((scenario, name), []).append(result)
                            print(
                                f"  round {round_index + 1} {scenario:<12} {name:<13} "
                                f"{result.rps:>10.0f} req/s  p50 {result.p50_ms:.3f} ms  "
                                f"p99 {result.p99_ms:.3f} ms  errors {result.errors}  "
                                f"cpu {result.cpu_us:.1f} us/req",
                                flush=True,
                            )
        finally:
            out = mm.stop()
            proxy_stats = next((ln for ln in out.splitlines() if ln.startswith("stats ")), "")
    except BaseException:
        upstream.stop()
        raise

    def med(scenario: str, name: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[(scenario, name)])

    print()
    print(
        f"{'scenario':<13}{'target':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'errors':>8}{'cpu us/req':>12}"
    )
    for scenario, *_ in scenarios:
        for name in ("direct", "modelmonitor", "nginx"):
            errors = sum(r.errors for r in results[(scenario, name)])
            print(
                f"{scenario:<13}{name:<14}{med(scenario, name, 'rps'):>10.0f}"
                f"{med(scenario, name, 'p50_ms'):>10.3f}{med(scenario, name, 'p99_ms'):>10.3f}"
                f"{errors:>8}{med(scenario, name, 'cpu_us'):>12.1f}"
            )
    print()
    all_ok = True
    ratio = med("saturated", "modelmonitor", "rps") / med("saturated", "nginx", "rps")
    ok = ratio >= MIN_THROUGHPUT_RATIO
    all_ok &= ok
    print(
        f"throughput ratio modelmonitor/nginx: {ratio:.2f} "
        f"(target >= {MIN_THROUGHPUT_RATIO}) {verdict(ok)}"
    )
    cpu_ratio = med("saturated", "nginx", "cpu_us") / med("saturated", "modelmonitor", "cpu_us")
    print(
        f"  (CPU per request, nginx/modelmonitor: {cpu_ratio:.2f}; the throughput each "
        f"would reach with a CPU to itself)"
    )
    for scenario in ("~100 req/s", "~1000 req/s"):
        for field, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
            direct = med(scenario, "direct", field)
            mm_added = med(scenario, "modelmonitor", field) - direct
            nginx_added = med(scenario, "nginx", field) - direct
            ok = latency_ok(mm_added, nginx_added)
            all_ok &= ok
            print(
                f"added latency {scenario:<11} {label}: modelmonitor {mm_added:+.3f} ms, "
                f"nginx {nginx_added:+.3f} ms "
                f"(target <= 2x nginx or nginx + {LATENCY_SLACK_MS} ms) {verdict(ok)}"
            )

    if not args.skip_memory:
        all_ok &= memory_checks(args, upstream_url)
    upstream.stop()
    print(f"capture: {' '.join(proxy_stats.split()[1:]) if proxy_stats else 'n/a'}")
    print(f"overall: {verdict(all_ok)}")
    return 0 if all_ok else 1


def memory_checks(args: argparse.Namespace, upstream_url: str) -> bool:
    big_port, mm_port, mm_big_port = free_port(), free_port(), free_port()
    big = start_child(
        "big-upstream", python_child("big-upstream", "--port", str(big_port)), 1, big_port
    )
    mm = start_child(
        "modelmonitor",
        python_child(
            "proxy",
            "--upstream",
            upstream_url,
            "--port",
            str(mm_port),
            "--big-upstream",
            f"http://{HOST}:{big_port}",
            "--big-port",
            str(mm_big_port),
        ),
        0,
        mm_port,
    )
    ok_all = True
    out = ""
    try:
        idle = rss_mb(mm.pid)
        with tempfile.TemporaryDirectory() as tmp:
            samples, result = soak(mm.pid, mm_port, args.soak, Path(tmp))
        if samples:
            start, end, peak = samples[0], samples[-1], max(samples)
            ok = peak <= start * (1 + RSS_TOLERANCE)
            ok_all &= ok
            print(
                f"memory, sustained load {args.soak:g}s at {result.rps:.0f} req/s: "
                f"idle {idle:.1f} MB, start {start:.1f} MB, end {end:.1f} MB, max {peak:.1f} MB "
                f"(flat within {RSS_TOLERANCE:.0%}) {verdict(ok)}"
            )
        before, big_samples, transferred = asyncio.run(big_body(mm.pid, mm_big_port))
        peak = max(big_samples, default=before)
        end = big_samples[-1] if big_samples else before
        ok = transferred and peak <= before * (1 + RSS_TOLERANCE)
        ok_all &= ok
        print(
            f"memory, 100 MB body up and down: start {before:.1f} MB, end {end:.1f} MB, "
            f"max {peak:.1f} MB, bytes ok={transferred} "
            f"(flat within {RSS_TOLERANCE:.0%}) {verdict(ok)}"
        )
    finally:
        out = mm.stop()
        big.stop()
    stats = next((ln for ln in out.splitlines() if ln.startswith("stats ")), "")
    if stats:
        print(f"capture during the memory checks: {' '.join(stats.split()[1:])}")
    return ok_all


if __name__ == "__main__":
    sys.exit(main())
