"""Proxy benchmark: ModelMonitor as users run it, against nginx, same run, same upstream.

Targets, all running at once and measured in alternating order each round:

* direct         wrk -> the fixed small upstream (the baseline latency is subtracted)
* nginx          wrk -> nginx (one worker, upstream keepalive) -> upstream
* bare           wrk -> ``ProxyServer`` alone, capture drained and thrown away (the ceiling)
* up             wrk -> ``modelmonitor up`` (embedded defaults, everything on, as ``make
                 run`` starts it, a dashboard WebSocket open) -> upstream
* up-single      the same with ``--single-process`` (proxy and pipeline on one event
                 loop, as before issue 12); only with ``--targets ...,up-single``
* proxy-amqp     wrk -> ``modelmonitor proxy`` publishing to RabbitMQ, with a
                 ``modelmonitor worker`` consuming so the queue does not grow

Saturated throughput (wrk, 50 connections) and added latency at ~100 and ~1,000 req/s
(p50 and p99 minus the direct run's). Then on ``up``: memory over a sustained-load
soak, memory after 100,000 requests to distinct paths, models and consumers against
the same count to one path, and a 100 MB body each way. Prints the per-round lines,
a median table, the ratios against nginx and PASS/FAIL per target of issue 12.

    python bench/proxy.py                   # ~15 minutes (the soak is 5 of them)
    python bench/proxy.py --soak 30 --rounds 1 --distinct 20000   # a quick look
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
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import cpu_seconds, free_port, process_label, process_tree, rss_mib

HOST = "127.0.0.1"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
    b'{"prediction": 1}'
)
BIG = 100 * 1024 * 1024
CHUNK = 256 * 1024
AMQP = os.environ.get("MODELMONITOR_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
PATH = "/v1/models/iris/predict"

# Targets (issue 12).
MIN_RATIO = {"up": 0.5, "proxy-amqp": 0.6, "up-single": 0.5}
LATENCY_FACTOR = 2.0
LATENCY_SLACK_MS = 0.3
RSS_TOLERANCE = 0.10

PIN = False  # --pin: CPU affinity (only meaningful on an otherwise idle machine)


def _set_cpu(cpu: int | None) -> None:
    if PIN and cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


# ---------------------------------------------------------------- child roles


async def _serve_until_term(server: asyncio.AbstractServer) -> None:
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


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
        await _serve_until_term(await loop.create_server(Upstream, HOST, port, backlog=4096))

    uvloop.run(main())


def run_big_upstream(port: int) -> None:
    """Upstream for the big-body check: POST reads and discards, GET sends 100 MB."""
    import uvloop

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            for _ in range(1000):
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)content-length:\s*(\d+)", head)
                length = int(match.group(1)) if match else 0
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
        await _serve_until_term(await asyncio.start_server(serve, HOST, port))

    uvloop.run(main())


def run_bare_proxy(upstream: str, port: int) -> None:
    """``ProxyServer`` with capture on; events go to a MemoryBus that is drained."""
    import uvloop

    from modelmonitor.bus.memory import MemoryBus
    from modelmonitor.proxy import CaptureBuffer, ProxyServer, Shipper
    from modelmonitor.settings import ServiceConfig

    async def main() -> None:
        loop = asyncio.get_running_loop()
        bus = MemoryBus()
        await bus.connect()

        async def drain() -> None:
            async for delivery in bus.consume():
                await delivery.ack()

        consumer = loop.create_task(drain())
        capture = CaptureBuffer(100_000)
        services = [ServiceConfig(name="bench", upstream=upstream)]
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

    uvloop.run(main())


# ---------------------------------------------------------------- processes


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode

    def tail(self, lines: int = 20) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
        return True
    return False


def start_child(
    name: str,
    argv: list[str],
    ready_ports: list[int],
    *,
    cpu: int | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Child:
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=(lambda: _set_cpu(cpu)),
    )
    child = Child(name, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{child.tail()}")
        if all(_answers(port) for port in ready_ports):
            return child
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not listen on {ready_ports} within {timeout:.0f}s")


def bench_role(role: str, *args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--role", role, *args]


def modelmonitor(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelmonitor", *args]


def clean_env() -> dict[str, str]:
    """The environment without MODELMONITOR_* settings that would change what runs."""
    return {key: value for key, value in os.environ.items() if not key.startswith("MODELMONITOR_")}


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


@dataclass
class Target:
    """One thing wrk drives: its port, and the processes whose CPU and memory are its cost."""

    name: str
    port: int
    roots: list[Child]
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    api_port: int = 0

    def pids(self) -> list[int]:
        return [pid for child in self.roots for pid in process_tree(child.pid)]

    def stop(self) -> None:
        for child in self.roots:
            code = child.stop()
            if code not in (0, -signal.SIGTERM):
                print(f"  {self.name}: {child.name} exited with {code}\n{child.tail()}")
        for step in self.cleanup:
            with contextlib.suppress(Exception):
                step()


def start_nginx(upstream_port: int, tmp: Path) -> Target:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, host=HOST, upstream_port=upstream_port, port=port))
    child = start_child("nginx", [nginx_binary(), "-p", str(tmp), "-c", str(conf)], [port], cpu=0)
    return Target("nginx", port, [child])


def start_bare(upstream: str) -> Target:
    port = free_port()
    child = start_child(
        "bare", bench_role("bare", "--upstream", upstream, "--port", str(port)), [port], cpu=0
    )
    return Target("bare", port, [child])


def start_up(upstream: str, big_upstream: str, tmp: Path, *, single: bool = False) -> Target:
    """``modelmonitor up`` as ``make run`` starts it, with a second service for big bodies
    (``single``: with ``--single-process``, everything on one event loop, as before)."""
    name = "up-single" if single else "up"
    tmp = tmp / name
    tmp.mkdir()
    port, big_port, api_port = free_port(), free_port(), free_port()
    config = tmp / "modelmonitor.yaml"
    config.write_text(
        "services:\n"
        f"  - {{name: bench, upstream: '{upstream}'}}\n"
        f"  - {{name: big, upstream: '{big_upstream}', listen: '{HOST}:{big_port}'}}\n"
    )
    argv = modelmonitor(
        "up",
        "--config",
        str(config),
        "--listen",
        f"{HOST}:{port}",
        "--api",
        f"{HOST}:{api_port}",
        "--data-dir",
        str(tmp / "data"),
        "--log-level",
        "warning",
        *(["--single-process"] if single else []),
    )
    child = start_child(
        name, argv, [port, big_port, api_port], cpu=0, log=tmp / "up.log", env=clean_env()
    )
    target = Target(name, port, [child], api_port=api_port)
    target.cleanup.append(open_dashboard(api_port))
    target.big_port = big_port  # type: ignore[attr-defined]
    return target


def start_proxy_amqp(upstream: str, tmp: Path) -> Target:
    """``modelmonitor proxy`` on RabbitMQ, with one ``modelmonitor worker`` consuming."""
    port, worker_health = free_port(), free_port()
    queue = f"bench.{uuid.uuid4().hex[:10]}"
    broker = f"{AMQP}?queue={queue}"
    env = clean_env()
    worker = start_child(
        "worker",
        modelmonitor(
            "worker",
            "--broker",
            broker,
            "--data-dir",
            str(tmp / "worker"),
            "--health",
            f"{HOST}:{worker_health}",
            "--log-level",
            "warning",
        ),
        [worker_health],
        cpu=1,
        log=tmp / "worker.log",
        env=env,
    )
    proxy = start_child(
        "proxy",
        modelmonitor(
            "proxy",
            "--broker",
            broker,
            "--target",
            upstream,
            "--listen",
            f"{HOST}:{port}",
            "--data-dir",
            str(tmp / "proxy"),
            "--log-level",
            "warning",
        ),
        [port],
        cpu=0,
        log=tmp / "proxy.log",
        env=env,
    )
    # The worker is the consumer that keeps the queue short; only the proxy is measured.
    target = Target("proxy-amqp", port, [proxy])
    target.cleanup += [lambda: worker.stop(), lambda: delete_queue(queue)]
    return target


def delete_queue(queue: str) -> None:
    async def delete() -> None:
        import aio_pika

        connection = await aio_pika.connect(AMQP)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)

    asyncio.run(delete())


def open_dashboard(api_port: int) -> Callable[[], None]:
    """A dashboard left open: one WebSocket reading the live feed. Returns a closer."""
    from websockets.sync.client import connect

    stop = threading.Event()

    def read() -> None:
        with contextlib.suppress(Exception), connect(f"ws://{HOST}:{api_port}/ws/metrics") as ws:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    ws.recv(timeout=0.5)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(timeout=5)

    return close


# ---------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float = float("nan")  # the target's CPU time per request


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(
        float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors, int(total.group(1))
    )


PACE = "function delay()\n  return {delay:.3f}\nend\n"

# 100,000 requests, each to a new path with a new model name and a new API key, then stop.
DISTINCT = """
local count, limit = 0, {limit}
local letters = "abcdefghijklmnopqrstuvwxyz"
math.randomseed({seed})
request = function()
  local t = {{}}
  for i = 1, 12 do
    local r = math.random(1, 26)
    t[i] = letters:sub(r, r)
  end
  local word = table.concat(t)
  local path = {path}
  return wrk.format("GET", path, {{
    ["X-Model-Name"] = {model},
    ["Authorization"] = "Bearer sk-" .. word,
  }})
end
response = function(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
"""


def wrk(
    target: Target,
    *,
    seconds: float,
    connections: int,
    rate: float | None = None,
    script: str | None = None,
    tmp: Path,
) -> WrkResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    argv += ["--timeout", "5s"]
    if rate:
        script = PACE.format(delay=connections * 1000.0 / rate)
    if script:
        path = tmp / f"script-{uuid.uuid4().hex[:8]}.lua"
        path.write_text(script)
        argv += ["-s", str(path)]
    argv.append(f"http://{HOST}:{target.port}{PATH}")
    pids = target.pids()
    before = cpu_seconds(pids)
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        preexec_fn=(lambda: _set_cpu(1)),
    ).stdout
    result = parse_wrk(out)
    result.cpu_us = (cpu_seconds(pids) - before) * 1e6 / max(1, result.requests)
    return result


# ---------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def latency_bar(nginx_added: float) -> float:
    nginx_added = max(nginx_added, 0.0)
    return max(LATENCY_FACTOR * nginx_added, nginx_added + LATENCY_SLACK_MS)


SCENARIOS = [("saturated", 50, None), ("~100 req/s", 4, 100.0), ("~1000 req/s", 10, 1000.0)]


def measure(
    targets: dict[str, Target], args: argparse.Namespace, tmp: Path
) -> dict[tuple[str, str], list[WrkResult]]:
    results: dict[tuple[str, str], list[WrkResult]] = {}
    for target in targets.values():  # warm every path (connections, caches, JIT-free Python)
        wrk(target, seconds=2, connections=8, tmp=tmp)
    for round_index in range(args.rounds):
        names = list(targets) if round_index % 2 == 0 else list(reversed(targets))
        for scenario, connections, rate in SCENARIOS:
            seconds = args.seconds if rate is None else args.paced_seconds
            for name in names:
                result = wrk(
                    targets[name], seconds=seconds, connections=connections, rate=rate, tmp=tmp
                )
                results.setdefault((scenario, name), []).append(result)
                print(
                    f"  round {round_index + 1} {scenario:<12} {name:<11}"
                    f"{result.rps:>9.0f} req/s  p50 {result.p50_ms:.3f} ms  "
                    f"p99 {result.p99_ms:.3f} ms  errors {result.errors}  "
                    f"cpu {result.cpu_us:.1f} us/req  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    return results


def report(results: dict[tuple[str, str], list[WrkResult]], names: list[str]) -> bool:
    def med(scenario: str, name: str, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in results[(scenario, name)])

    print()
    print(
        f"{'scenario':<13}{'target':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'cpu us/req':>12}"
    )
    for scenario, *_ in SCENARIOS:
        for name in names:
            errors = sum(r.errors for r in results[(scenario, name)])
            print(
                f"{scenario:<13}{name:<12}{med(scenario, name, 'rps'):>9.0f}"
                f"{med(scenario, name, 'p50_ms'):>9.3f}{med(scenario, name, 'p99_ms'):>9.3f}"
                f"{errors:>8}{med(scenario, name, 'cpu_us'):>12.1f}"
            )
    print()
    all_ok = True
    nginx_rps = med("saturated", "nginx", "rps")
    nginx_cpu = med("saturated", "nginx", "cpu_us")
    for name in names:
        if name in ("direct", "nginx"):
            continue
        ratio = med("saturated", name, "rps") / nginx_rps
        cpu_ratio = nginx_cpu / med("saturated", name, "cpu_us")
        goal = MIN_RATIO.get(name)
        ok = goal is None or ratio >= goal
        all_ok &= ok
        target = f"(target >= {goal}) {verdict(ok)}" if goal else "(the ceiling, no target)"
        print(
            f"throughput {name:<11} {ratio:.2f}x nginx {target}; "
            f"CPU per request nginx/{name} {cpu_ratio:.2f}"
        )
    for scenario in ("~100 req/s", "~1000 req/s"):
        for attribute, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
            direct = med(scenario, "direct", attribute)
            nginx_added = med(scenario, "nginx", attribute) - direct
            bar = latency_bar(nginx_added)
            for name in names:
                if name in ("direct", "nginx"):
                    continue
                added = med(scenario, name, attribute) - direct
                ok = name not in MIN_RATIO or added <= bar
                all_ok &= ok
                tail = f"(target <= {bar:.3f} ms) {verdict(ok)}" if name in MIN_RATIO else ""
                print(
                    f"added latency {scenario:<11} {label} {name:<11} {added:+.3f} ms, "
                    f"nginx {nginx_added:+.3f} ms {tail}"
                )
    return all_ok


# ---------------------------------------------------------------- memory on `up`


def tree_rss(target: Target) -> dict[str, float]:
    """RSS per process of the target (labelled by sub-command) and their sum."""
    readings: dict[str, float] = {}
    for pid in target.pids():
        label = process_label(pid)
        while label in readings:
            label += "'"
        readings[label] = rss_mib(pid)
    readings["total"] = sum(readings.values())
    return readings


def _fmt(readings: dict[str, float]) -> str:
    return ", ".join(f"{name} {mib:.1f}" for name, mib in readings.items())


def soak(target: Target, seconds: float, tmp: Path) -> bool:
    """Saturated load for ``seconds``; RSS of every process sampled each second."""
    argv = ["wrk", "-t1", "-c50", f"-d{max(1, round(seconds))}s", "--latency"]
    argv.append(f"http://{HOST}:{target.port}{PATH}")
    idle = tree_rss(target)
    warm = min(10.0, seconds / 4)
    samples: list[dict[str, float]] = []
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, preexec_fn=(lambda: _set_cpu(1))
    )
    started = time.monotonic()
    while process.poll() is None and time.monotonic() - started < seconds + 30:
        time.sleep(1.0)
        if time.monotonic() - started >= warm:
            samples.append(tree_rss(target))
    result = parse_wrk(process.communicate(timeout=30)[0])
    if not samples:
        print("memory, soak: no samples FAIL")
        return False
    ok = True
    for name in samples[0]:
        series = [sample.get(name, 0.0) for sample in samples]
        flat = max(series) <= series[0] * (1 + RSS_TOLERANCE)
        ok &= flat or name == "total"
        print(
            f"memory, soak {seconds:g}s on up at {result.rps:.0f} req/s, {name}: "
            f"idle {idle.get(name, 0.0):.1f} MiB, start {series[0]:.1f}, end {series[-1]:.1f}, "
            f"max {max(series):.1f} (flat within {RSS_TOLERANCE:.0%}) {verdict(flat)}"
        )
    return ok


def settle(target: Target, seconds: float = 8.0) -> dict[str, float]:
    """Let the pipeline catch up, then read memory."""
    time.sleep(seconds)
    return tree_rss(target)


def distinct_paths(target: Target, count: int, tmp: Path) -> bool:
    """``count`` requests to one path, then ``count`` to distinct paths, models and
    consumers: every process's memory must stay within 10 % of the first reading."""
    same = DISTINCT.format(limit=count, seed=1, path=f'"{PATH}"', model='"iris"')
    hostile = DISTINCT.format(
        limit=count, seed=int(time.time()), path='"/r/" .. word', model='"m-" .. word'
    )
    timeout = max(120.0, count / 200)
    first = wrk(target, seconds=timeout, connections=50, script=same, tmp=tmp)
    baseline = settle(target)
    second = wrk(target, seconds=timeout, connections=50, script=hostile, tmp=tmp)
    after = settle(target)
    probe = wrk(target, seconds=5, connections=4, rate=100.0, tmp=tmp)
    ok = True
    for name, before in baseline.items():
        grown = after.get(name, 0.0)
        flat = grown <= before * (1 + RSS_TOLERANCE)
        ok &= flat or name == "total"
        print(
            f"memory, {count} distinct paths/models/consumers on up, {name}: "
            f"{before:.1f} MiB after {first.requests} requests to one path, "
            f"{grown:.1f} MiB after {second.requests} to distinct ones "
            f"({(grown / before - 1) if before else 0:+.0%}; flat within {RSS_TOLERANCE:.0%}) "
            f"{verdict(flat)}"
        )
    responsive = probe.p99_ms < 50.0
    ok &= responsive
    print(
        f"latency after the distinct paths, ~100 req/s: p50 {probe.p50_ms:.3f} ms, "
        f"p99 {probe.p99_ms:.3f} ms (p99 < 50 ms) {verdict(responsive)}"
    )
    return ok


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


def big_body(target: Target) -> bool:
    before = tree_rss(target)
    peaks = dict(before)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            for name, mib in tree_rss(target).items():
                peaks[name] = max(peaks.get(name, 0.0), mib)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    port: int = target.big_port  # type: ignore[attr-defined]
    try:
        up = asyncio.run(_big_transfer(port, upload=True))
        down = asyncio.run(_big_transfer(port, upload=False))
    finally:
        done.set()
        sampler.join()
    transferred = up == len(str(BIG)) and down == BIG
    ok = transferred
    for name, start in before.items():
        flat = peaks[name] <= start * (1 + RSS_TOLERANCE)
        ok &= flat or name == "total"
        print(
            f"memory, 100 MB body up and down through up, {name}: start {start:.1f} MiB, "
            f"max {peaks[name]:.1f}, bytes ok={transferred} (flat within "
            f"{RSS_TOLERANCE:.0%}) {verdict(flat and transferred)}"
        )
    return ok


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["bench", "upstream", "big-upstream", "bare"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    parser.add_argument("--seconds", type=float, default=5, help="saturated run length")
    parser.add_argument("--paced-seconds", type=float, default=10, help="paced run length")
    parser.add_argument("--soak", type=float, default=300, help="memory soak on up (seconds)")
    parser.add_argument("--distinct", type=int, default=100_000, help="distinct paths (0: skip)")
    parser.add_argument("--skip-memory", action="store_true", help="no soak, paths, big body")
    parser.add_argument(
        "--targets",
        default="direct,nginx,bare,up,proxy-amqp",
        help="comma-separated subset (direct and nginx are always measured)",
    )
    parser.add_argument("--pin", action="store_true", help="proxies on CPU 0, the rest on 1")
    args = parser.parse_args()
    global PIN
    PIN = args.pin
    if args.role == "upstream":
        run_upstream(args.port)
        return 0
    if args.role == "big-upstream":
        run_big_upstream(args.port)
        return 0
    if args.role == "bare":
        run_bare_proxy(args.upstream, args.port)
        return 0
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: run scripts/ensure-bench-tools.sh")
    wanted = ["direct", "nginx"] + [
        name for name in args.targets.split(",") if name not in ("direct", "nginx")
    ]
    placement = "proxies on CPU 0, wrk and upstreams on CPU 1" if PIN else "no CPU pinning"
    print(
        f"proxy benchmark: {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {placement}",
        flush=True,
    )
    started: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            return run(args, wanted, tmp, started)
        finally:
            for target in reversed(started):
                target.stop()


def run(args: argparse.Namespace, wanted: list[str], tmp: Path, started: list[Target]) -> int:
    upstream_port, big_port = free_port(), free_port()
    upstream = start_child(
        "upstream", bench_role("upstream", "--port", str(upstream_port)), [upstream_port], cpu=1
    )
    started.append(Target("direct", upstream_port, [upstream]))
    big = start_child("big", bench_role("big-upstream", "--port", str(big_port)), [big_port], cpu=1)
    started.append(Target("big", big_port, [big]))
    upstream_url, big_url = f"http://{HOST}:{upstream_port}", f"http://{HOST}:{big_port}"
    (tmp / "nginx").mkdir()
    starters: dict[str, Callable[[], Target]] = {
        "nginx": lambda: start_nginx(upstream_port, tmp / "nginx"),
        "bare": lambda: start_bare(upstream_url),
        "up": lambda: start_up(upstream_url, big_url, tmp),
        "up-single": lambda: start_up(upstream_url, big_url, tmp, single=True),
        "proxy-amqp": lambda: start_proxy_amqp(upstream_url, tmp),
    }
    targets = {"direct": started[0]}
    for name in wanted[1:]:
        targets[name] = starters[name]()
        started.append(targets[name])
    all_ok = True
    if args.rounds > 0:  # --rounds 0: the memory checks only
        all_ok = report(measure(targets, args, tmp), list(targets))
    if "up" in targets and not args.skip_memory:
        print()
        if args.soak > 0:
            all_ok &= soak(targets["up"], args.soak, tmp)
        if args.distinct > 0:
            all_ok &= distinct_paths(targets["up"], args.distinct, tmp)
        all_ok &= big_body(targets["up"])
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"overall: {verdict(all_ok)}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
