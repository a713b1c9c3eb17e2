"""A real Prometheus scraping a running ModelMonitor: counters ``rate()``, histograms
``histogram_quantile()``, figures that agree with the API's own, a clean exposition
(``promtool check metrics``) on the API, a lone proxy and a lone worker."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from modelmonitor.telemetry import LATENCY_BUCKETS_SECONDS
from tests.integration.prometheus_support import Prometheus, running_prometheus
from tests.integration.proxy_upstreams import Request, Upstream, raw_exchange, running_upstream
from tests.integration.services_support import Backends

FAST_SECONDS = 0.015
SLOW_SECONDS = 0.3


async def model_api(request: Request, reader: asyncio.StreamReader, writer: Any) -> bool:
    """``/fast`` answers in ~15 ms, ``/slow`` in ~300 ms, ``/fail`` with a 500."""
    path = request.target.split("?")[0]
    if path == "/slow":
        await asyncio.sleep(SLOW_SECONDS)
    elif path == "/fast":
        await asyncio.sleep(FAST_SECONDS)
    status = b"500 Internal Server Error" if path == "/fail" else b"200 OK"
    writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\n\r\nok")
    return True


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with running_upstream(model_api) as running:
        yield running


@pytest.fixture
async def monitor(upstream: Upstream, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        target=upstream.url,
        target_name="model",
        listen="127.0.0.1:0",
        api="127.0.0.1:0",
    )
    runtime = Runtime(settings, parts=Parts())
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def proxy_url(runtime: Runtime) -> str:
    return f"http://{runtime.proxy_addresses['model']}"


def host_port(url: str) -> str:
    return urlsplit(url).netloc


async def send(client: httpx.AsyncClient, paths: list[str], concurrency: int = 20) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(path: str) -> None:
        async with gate:
            await client.post(path, content=b"{}")

    await asyncio.gather(*(one(path) for path in paths))


def bucket_around(value: float) -> tuple[float, float]:
    lower = 0.0
    for bound in LATENCY_BUCKETS_SECONDS:
        if value <= bound:
            return lower, bound
        lower = bound
    return lower, float("inf")


async def test_prometheus_rates_and_quantiles_agree_with_the_api(
    monitor: Runtime, tmp_path: Path
) -> None:
    assert monitor.api_url is not None
    api = host_port(monitor.api_url)
    with running_prometheus(tmp_path, {"modelmonitor": api}) as prometheus:
        async with httpx.AsyncClient(base_url=proxy_url(monitor), timeout=30) as client:
            # First every series appears, then the bulk, so rate() sees the bulk as increase.
            await send(client, ["/fast", "/slow", "/fail"])
            await asyncio.to_thread(
                prometheus.wait_for, "sum(modelmonitor_requests_total)", lambda v: v == 3
            )
            await send(client, ["/fast"] * 160 + ["/slow"] * 30 + ["/fail"] * 10)
        total = await asyncio.to_thread(
            prometheus.wait_for, "sum(modelmonitor_requests_total)", lambda v: v == 203
        )
        assert total == 203
        errors = prometheus.value('sum(modelmonitor_errors_total{service="model"})')
        assert errors == 11
        assert prometheus.value('sum(modelmonitor_requests_total{status_class="5xx"})') == 11
        rate = prometheus.value("sum(rate(modelmonitor_requests_total[1m]))")
        assert rate is not None and rate > 0

        async with httpx.AsyncClient(base_url=monitor.api_url) as client:
            live = (
                await client.get("/api/v1/metrics/realtime", params={"service": "model"})
            ).json()
        window = live["services"][0]["windows"]["5m"]
        assert window["requests"] == 203 and window["errors"] == 11

        # p95 lies among the slow requests: both figures fall in the same histogram bucket.
        quantile = prometheus.value(
            "histogram_quantile(0.95, sum by (le) "
            '(rate(modelmonitor_request_duration_seconds_bucket{service="model"}[1m])))'
        )
        assert quantile is not None
        lower, upper = bucket_around(window["p95_seconds"])
        assert lower <= quantile <= upper, (quantile, window["p95_seconds"])
        assert lower >= SLOW_SECONDS - 0.1  # the bucket of the slow requests, not the fast
        # Each request's first byte comes no later than its last: so do the quantiles.
        medians = [
            prometheus.value(
                f"histogram_quantile(0.5, sum by (le) (rate(modelmonitor_{name}_bucket[1m])))"
            )
            for name in ("time_to_first_byte_seconds", "request_duration_seconds")
        ]
        assert medians[0] is not None and medians[1] is not None
        assert 0.0 < medians[0] <= medians[1]
        # Every series' labels are the documented, bounded set.
        series = prometheus.query("modelmonitor_requests_total")
        # (Prometheus drops a label whose value is empty: here, ``model``.)
        documented = {"__name__", "instance", "job", "method", "model", "route", "service"}
        assert all(set(s["metric"]) <= documented | {"status_class"} for s in series)


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: `make test` installs it (scripts/)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_exposition_passes_promtool_on_the_api(monitor: Runtime) -> None:
    assert monitor.api_url is not None
    async with httpx.AsyncClient(base_url=proxy_url(monitor)) as client:
        await send(client, ["/fast", "/fail"] * 5)
    # A request with no Host: refused at the proxy's edge, counted per kind.
    port = host_port(proxy_url(monitor)).rsplit(":", 1)[1]
    assert (await raw_exchange(int(port), b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 400")
    refused = 'modelmonitor_refused_requests_total{kind="bad_host",proxy="'
    async with httpx.AsyncClient(base_url=monitor.api_url) as client:
        for _ in range(100):
            text = (await client.get("/metrics")).text
            if "modelmonitor_requests_total{" in text and refused in text:
                break
            await asyncio.sleep(0.1)
        openmetrics = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert "modelmonitor_request_duration_seconds_bucket{" in text
    assert refused in text
    assert "modelmonitor_routes_folded_requests_total{" in text
    promtool_check(text)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


@pytest.mark.services
async def test_production_proxies_and_workers_are_summed_by_prometheus(
    upstream: Upstream, tmp_path: Path, backends: Backends
) -> None:
    """A proxy on RabbitMQ, two workers (PostgreSQL, Redis) and an API replica, each
    scraped: the workers' counters sum to every request, and so does the API's cluster
    view, which survives a worker's restart without going backwards."""

    def settings(name: str, **extra: Any) -> Any:
        return load_settings(
            data_dir=tmp_path / name,
            broker_url=backends.broker_url,
            database_url=backends.database_url,
            cache_url=backends.cache_url,
            health_listen="127.0.0.1:0",
            **extra,
        )

    proxy = Runtime(
        settings("proxy", target=upstream.url, target_name="model", listen="127.0.0.1:0"),
        parts=Parts(proxy=True, worker=False, api=False),
    )
    workers = [
        Runtime(settings(f"worker{i}"), parts=Parts(proxy=False, worker=True, api=False))
        for i in range(2)
    ]
    api = Runtime(settings("api", api="127.0.0.1:0"), parts=Parts(proxy=False, worker=False))
    started: list[Runtime] = []
    try:
        for part in (*workers, api, proxy):
            await part.start()
            started.append(part)
        assert api.api_url is not None
        targets = {f"worker{i}": health_address(worker) for i, worker in enumerate(workers)}
        targets.update(proxy=health_address(proxy), api=host_port(api.api_url))
        with running_prometheus(tmp_path, targets) as prometheus:
            async with httpx.AsyncClient(base_url=proxy_url(proxy)) as client:
                await send(client, ["/fast"] * 70 + ["/fail"] * 30)
            by_workers = await asyncio.to_thread(
                prometheus.wait_for,
                'sum(modelmonitor_requests_total{job=~"worker.*"})',
                lambda v: v == 100,
            )
            assert by_workers == 100
            assert prometheus.value('sum(modelmonitor_errors_total{job=~"worker.*"})') == 30
            await asyncio.to_thread(
                prometheus.wait_for,
                'sum(modelmonitor_requests_total{job="api"})',
                lambda v: v == 100,
            )
            await asyncio.to_thread(
                prometheus.wait_for,
                'modelmonitor_proxy_captured_events_total{job="proxy"}',
                lambda v: v == 100,
            )
            # rate() needs two scrapes of a series: wait for them before asking panels.
            for expr in (
                'sum(rate(modelmonitor_requests_total{job="api"}[1m]))',
                "sum(rate(modelmonitor_alert_rounds_total[1m]))",
                'sum(rate(modelmonitor_requests_total{job=~"worker.*"}[1m]))',
            ):
                await asyncio.to_thread(prometheus.wait_for, expr, lambda v: v >= 0)
            await asyncio.to_thread(grafana_queries_return_data, prometheus)
            # A worker restarts: its own counters start over, the cluster view does not.
            await workers[0].stop()
            started.remove(workers[0])
            assert (await _metrics(api.api_url)).count("modelmonitor_requests_total{") >= 2
            assert prometheus.value('sum(modelmonitor_requests_total{job="api"})') == 100
        for text in (
            await _metrics(f"http://{health_address(proxy)}"),
            await _metrics(f"http://{health_address(workers[1])}"),
            await _metrics(api.api_url),
        ):
            promtool_check(text)
    finally:
        for part in reversed(started):
            await part.stop()


GRAFANA_DASHBOARDS = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards"
#: What Grafana puts in place of its variables, for a query sent straight to Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$__interval": "15s",
    "$service": ".*",
}


def grafana_queries_return_data(prometheus: Prometheus) -> None:
    """Every panel query of every bundled dashboard parses and returns data."""
    empty: list[str] = []
    checked = 0
    for path in sorted(GRAFANA_DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                assert "$" not in expr, expr
                checked += 1
                if not prometheus.query(expr):
                    empty.append(f"{path.name} / {panel['title']}: {expr}")
    assert checked >= 30
    assert not empty, "queries without data:\n" + "\n".join(empty)


def health_address(runtime: Runtime) -> str:
    assert runtime.health_server is not None
    port = runtime.health_server.servers[0].sockets[0].getsockname()[1]
    return f"127.0.0.1:{port}"


async def _metrics(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text
