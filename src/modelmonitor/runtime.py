"""The composition root: builds backends from URLs and runs proxy, worker and API.

Only this module chooses adapters; every other package depends on the contracts.
``modelmonitor up`` runs all parts on one machine: with ``proxy_process`` the proxy
runs in a child process (:mod:`modelmonitor.proxy_process`) fed to this process's
worker over a ``unix://`` bus, else everything shares one event loop. ``proxy``,
``worker`` and ``api`` run one part each around shared production backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import Request, Response

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api.deps import ComponentHealth
from modelmonitor.bus import EventBus, create_bus
from modelmonitor.live import LiveState, create_live
from modelmonitor.quality.store import QualityStore, create_quality_store
from modelmonitor.settings import ConfigError, Settings, parse_host_port
from modelmonitor.storage import EventStore, RollupTier, create_store
from modelmonitor.storage.model_rollups import DimensionCaps
from modelmonitor.telemetry import ClusterMetrics, create_cluster, encode
from modelmonitor.types import Clock

if TYPE_CHECKING:  # built lazily: a lone API process never imports the proxy or the worker
    from modelmonitor.pipeline.worker import Worker
    from modelmonitor.proxy import CaptureBuffer, ProxyServer, Shipper
    from modelmonitor.proxy_process import ProxyProcess

__all__ = ["Parts", "Runtime", "run_until_signalled"]

log = logging.getLogger("modelmonitor")


@dataclass(frozen=True)
class Parts:
    proxy: bool = True
    worker: bool = True
    api: bool = True


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Runtime:
    settings: Settings
    parts: Parts = field(default_factory=Parts)
    demo: bool = False
    demo_port: int = 8080
    clock: Clock = time.time
    #: Run the proxy in a child process (only when this runtime runs proxy and worker).
    proxy_process: bool = False

    bus: EventBus | None = None
    store: EventStore | None = None
    live: LiveState | None = None
    proxy: ProxyServer | None = None
    shipper: Shipper | None = None
    capture: CaptureBuffer | None = None
    worker: Worker | None = None
    proxy_child: ProxyProcess | None = None
    alerts: AlertSystem | None = None
    quality_store: QualityStore | None = None
    quality: Any = None
    api_server: uvicorn.Server | None = None
    health_server: uvicorn.Server | None = None
    demo_url: str | None = None
    auth_enabled: bool | None = None
    auth_store: Any = None
    cluster_metrics: ClusterMetrics | None = None
    catalog: Any = None
    otlp: Any = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def start(self) -> None:
        """Start the chosen parts; on failure everything started so far is stopped."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if self.parts.api:
            await self._open_auth()
        if self.demo:
            await self._start_demo()
        if self.parts.worker or self.parts.api:
            self.store = create_store(
                self.settings.effective_database_url,
                compress_after_seconds=self.settings.timescale_compress_after,
            )
            self.store.caps = DimensionCaps(
                max_models=self.settings.max_models_per_service,
                max_consumers=self.settings.max_consumers_per_service,
            )
            await self.store.connect()
            self._stack.push_async_callback(self.store.close)
            self.live = create_live(self.settings.cache_url, clock=self.clock)
            await self.live.connect()
            self._stack.push_async_callback(self.live.close)
            self.cluster_metrics = create_cluster(self.settings.cache_url)
            await self.cluster_metrics.connect()
            self._stack.push_async_callback(self.cluster_metrics.close)
            self.quality_store = create_quality_store(self.settings.effective_database_url)
            await self.quality_store.connect()
            self._stack.push_async_callback(self.quality_store.close)
            await self._start_alerts()
        split = self.proxy_process and self.parts.proxy and self.parts.worker
        if self.parts.proxy or self.parts.worker:
            self.bus = create_bus(self._local_bus_url() if split else self.settings.broker_url)
            await self.bus.connect()
            self._stack.push_async_callback(self.bus.close)
        if self.parts.worker:
            await self._start_worker()
        if split:
            await self._start_proxy_process()
        elif self.parts.proxy:
            await self._start_proxy()
        if self.parts.api:
            await self._start_api()
        elif self.settings.health_listen:
            host, port = parse_host_port(self.settings.health_listen)
            self.health_server = await self._serve(self._health_app(), host, port)

    async def _start_alerts(self) -> None:
        """The alert system; the engine runs where the live windows are complete: in a
        worker, or anywhere when the live state is shared (``redis://``)."""
        assert self.live is not None
        self.alerts = AlertSystem.from_settings(
            self.settings, live=self.live, clock=self.clock, history=self.store
        )
        if self.quality_store is not None:
            from modelmonitor.quality.alerting import install_drift_alerts

            install_drift_alerts(self.alerts, self.quality_store, self.settings)
        shared_live = urlsplit(self.settings.cache_url).scheme != "memory"
        await self.alerts.start(evaluate=self.parts.worker or shared_live)
        self._stack.push_async_callback(self.alerts.stop)

    async def _start_demo(self) -> None:
        """Run the demo model API in its own process, so it never competes with the proxy."""
        port = self.demo_port if self.demo_port and not self.settings.target else _free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "modelmonitor",
            "demo",
            "serve",
            "--port",
            str(port),
            stdout=asyncio.subprocess.DEVNULL,
        )

        async def stop() -> None:
            if process.returncode is None:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), timeout=10)
            if process.returncode is None:
                process.kill()
                await process.wait()

        self._stack.push_async_callback(stop)
        deadline = time.monotonic() + 60
        while not await _answers("127.0.0.1", port):
            if process.returncode is not None:
                raise RuntimeError(f"the demo model API could not start on port {port}")
            if time.monotonic() > deadline:
                raise RuntimeError("the demo model API did not start within 60 s")
            await asyncio.sleep(0.1)
        self.demo_url = f"http://127.0.0.1:{port}"
        if not self.settings.target and not self.settings.services:
            self.settings = self.settings.model_copy(
                update={"target": self.demo_url, "target_name": "demo"}
            )

    async def _start_worker(self) -> None:
        from modelmonitor.pipeline.worker import Worker

        assert self.bus and self.store and self.live
        self.worker = Worker(
            bus=self.bus,
            store=self.store,
            live=self.live,
            retention_raw_seconds=self.settings.retention_raw,
            retention_rollups_seconds=self.settings.retention_rollups,
            retention_tiers_seconds={
                RollupTier.HOUR: self.settings.retention_rollups_hour,
                RollupTier.DAY: self.settings.retention_rollups_day,
            },
            clock=self.clock,
        )
        await self.worker.start()
        if self.settings.otlp is not None:
            await self._start_otlp(self.worker)
        # Stopped in reverse: the worker, then the shipping loop, then one last flush.
        self._stack.push_async_callback(self._flush_request_metrics)
        shipping = asyncio.create_task(self._ship_request_metrics(), name="request-metrics")
        self._stack.push_async_callback(cancel_and_wait, [shipping])
        self._stack.push_async_callback(self.worker.stop)
        await self._start_quality()

    async def _start_quality(self) -> None:
        """Profile sampled payloads in the worker, for services that opted in."""
        from modelmonitor.quality.processor import QualityProcessor

        assert self.worker is not None and self.quality_store is not None
        sampling = {s.name: s.sampling for s in self.settings.effective_services}
        self.quality = QualityProcessor(
            store=self.quality_store,
            services=sampling,
            profile_retention_seconds=self.settings.retention_rollups,
            bucket_seconds=self.settings.quality_bucket_seconds,
            clock=self.clock,
        )
        if self.quality.enabled:
            self.worker.hooks.append(self.quality)
            await self.quality.start()
            self._stack.push_async_callback(self.quality.stop)

    async def _start_otlp(self, worker: Any) -> None:
        from modelmonitor.telemetry._otlp import OtlpExporter

        config = self.settings.otlp
        assert config is not None
        exporter = OtlpExporter(
            config.endpoint,
            headers=config.headers,
            service_name=config.service_name,
            traces=config.traces,
            metrics=config.metrics,
            metrics_interval_seconds=config.metrics_interval_seconds,
        )
        worker.add_observer(exporter.submit)
        await exporter.start(worker.request_metrics.snapshot)
        self.otlp = exporter
        self._stack.push_async_callback(exporter.stop)

    async def _flush_request_metrics(self) -> None:
        if self.worker is not None and self.cluster_metrics is not None:
            await self.cluster_metrics.add(self.worker.request_metrics.take_delta())

    async def _ship_request_metrics(self) -> None:
        """Add this worker's counts to the cluster totals once a second."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await self._flush_request_metrics()
            except (OSError, ConnectionError) as exc:
                # The delta is lost for the cluster view; this worker's own /metrics keeps it.
                log.warning("could not add request counters to the cluster totals: %s", exc)

    async def _start_proxy(self) -> None:
        from modelmonitor.protocols.awareness import model_awareness
        from modelmonitor.proxy import CaptureBuffer, ProxyServer, Shipper

        assert self.bus is not None
        settings = self.settings
        services = await self._open_catalog()
        if not services:
            raise RuntimeError(
                "nothing to proxy: give --target URL, --demo, or services in --config"
            )
        self.capture = CaptureBuffer(settings.buffer_capacity)
        tls = settings.listen_tls.context() if settings.listen_tls is not None else None
        self.proxy = ProxyServer(
            services,
            listen=settings.listen,
            capture=self.capture,
            tls=tls,
            limits=settings.proxy_limits,
            models=model_awareness(settings),
        )
        spool = None
        if settings.spool_max_bytes:
            from modelmonitor.proxy.spool import FileSpool

            spool = FileSpool(settings.data_dir / "spool", max_bytes=settings.spool_max_bytes)
        self.shipper = Shipper(
            self.capture,
            self.bus,
            proxy_id=f"{socket.gethostname()}-{os.getpid()}",
            batch_max_events=settings.batch_max_events,
            flush_interval_seconds=settings.flush_interval_seconds,
            in_flight=self.proxy.in_flight,
            edge=self.proxy.edge_counts,
            spool=spool,
        )
        await self.shipper.start()
        self._stack.push_async_callback(self._drain_pipeline)
        self._stack.push_async_callback(self.shipper.stop)
        await self.proxy.start()
        self._stack.push_async_callback(self.proxy.stop)
        if self.catalog is not None and settings.catalog_poll_seconds > 0:
            watching = asyncio.create_task(self._watch_catalog(services), name="service-catalog")
            self._stack.push_async_callback(cancel_and_wait, [watching])

    async def _open_catalog(self) -> list[Any]:
        """The services to proxy: those declared, plus those added through the API (the
        catalog in the store). A store that cannot be read leaves the declared ones."""
        from modelmonitor.alerts.store import create_alert_store
        from modelmonitor.alerts.store.sql import SqlAlertStore
        from modelmonitor.catalog import ServiceCatalog

        declared = self.settings.effective_services
        if self.settings.catalog_poll_seconds <= 0:
            return declared
        store = create_alert_store(self.settings.effective_database_url)
        try:
            await store.connect()
        except _store_errors() as exc:
            log.warning("service catalog unavailable, serving the declared services: %s", exc)
            return declared
        self._stack.push_async_callback(store.close)
        assert isinstance(store, SqlAlertStore)
        self.catalog = catalog = ServiceCatalog(store, declared=declared)
        try:
            return list(await catalog.services())
        except _store_errors() as exc:
            log.warning("service catalog unreadable, serving the declared services: %s", exc)
            return declared

    async def _watch_catalog(self, applied: list[Any]) -> None:
        """Apply the catalog's changes to the running proxy (in the background)."""
        assert self.catalog is not None and self.proxy is not None
        while True:
            await asyncio.sleep(self.settings.catalog_poll_seconds)
            try:
                services = await self.catalog.services()
            except _store_errors() as exc:
                log.warning("service catalog unreadable, keeping the current services: %s", exc)
                continue
            if services == applied:
                continue
            try:
                await self.proxy.apply(services)
            except OSError as exc:
                log.error("cannot apply the service catalog, keeping the current one: %s", exc)
                continue
            applied = services

    def _local_bus_url(self) -> str:
        """The bus between this process and its proxy process: a Unix socket in a
        private directory, unless a broker is configured (then both use it)."""
        if not self.settings.broker_url.startswith("memory:"):
            return self.settings.broker_url
        directory = tempfile.mkdtemp(prefix="modelmonitor-")  # mode 0700
        self._stack.callback(shutil.rmtree, directory, ignore_errors=True)
        return f"unix://{directory}/bus.sock"

    async def _start_proxy_process(self) -> None:
        from modelmonitor.proxy_process import ProxyProcess

        assert self.bus is not None
        if not self.settings.effective_services:
            raise RuntimeError(
                "nothing to proxy: give --target URL, --demo, or services in --config"
            )
        # The child needs the proxy's settings only: no channel secrets, no rules.
        child_settings = self.settings.model_copy(
            update={"broker_url": self.bus.url, "notification_channels": {}, "alert_rules": []}
        )
        self.proxy_child = ProxyProcess(child_settings)
        await self.proxy_child.start()
        self._stack.push_async_callback(self._drain_pipeline)
        self._stack.push_async_callback(self.proxy_child.stop)

    async def _drain_pipeline(self) -> None:
        """With a bus held in this process, let the worker store what the shipper flushed."""
        from modelmonitor.bus.memory import MemoryBus
        from modelmonitor.bus.unix import UnixBus

        if isinstance(self.bus, MemoryBus | UnixBus) and self.worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.bus.join(), timeout=10.0)

    async def _open_auth(self) -> None:
        """The auth store; refuse, before anything listens, to serve an API beyond
        loopback with no authentication."""
        from modelmonitor.auth.exposure import exposure_problem
        from modelmonitor.auth.service import AuthService
        from modelmonitor.auth.store import create_auth_store

        self.auth_store = create_auth_store(self.settings.effective_database_url)
        await self.auth_store.connect()
        self._stack.push_async_callback(self.auth_store.close)
        token = self.settings.admin_token
        service = AuthService(
            store=self.auth_store,
            config=self.settings.auth,
            admin_token=token.get_secret_value() if token else None,
            clock=self.clock,
        )
        problem = await exposure_problem(self.settings, service)
        if problem is not None:
            raise ConfigError(problem)
        self.auth_enabled = await service.enabled()

    async def _start_api(self) -> None:
        from modelmonitor.api.app import create_app

        app = create_app(
            self.settings,
            store=self.store,
            live=self.live,
            clock=self.clock,
            health_sources=[self._health],
            alert_system=self.alerts,
            auth_store=self.auth_store,
            cluster_metrics=self.cluster_metrics,
            quality_store=self.quality_store,
        )
        host, port = parse_host_port(self.settings.api)
        self.api_server = await self._serve(app, host, port)

    async def _serve(self, app: Any, host: str, port: int) -> uvicorn.Server:
        # Bind here so a taken port is a plain OSError, not uvicorn's sys.exit().
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # Forwarded headers are believed only from auth.trusted_proxies, by the API.
            proxy_headers=False,
            ws_ping_interval=20.0,
            # Snapshots go to many clients: compressing each copy costs more CPU than it saves.
            ws_per_message_deflate=False,
        )
        server = _QuietServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                sock.close()
                raise RuntimeError(
                    f"the server on {host}:{port} did not start: {task.exception()!r}"
                )
            await asyncio.sleep(0.01)

        async def stop() -> None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await task
            sock.close()

        self._stack.push_async_callback(stop)
        return server

    @staticmethod
    def _bound_port(server: uvicorn.Server) -> int:
        port: int = server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def api_url(self) -> str | None:
        if self.api_server is None:
            return None
        host, _ = parse_host_port(self.settings.api)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{self._bound_port(self.api_server)}"

    @property
    def proxy_addresses(self) -> dict[str, str]:
        if self.proxy_child is not None:
            child: dict[str, str] = self.proxy_child.addresses
            return child
        if self.proxy is None:
            return {}
        addresses: dict[str, str] = self.proxy.addresses
        return addresses

    def _health_app(self) -> Any:
        """``GET /health`` for a process without the API (a lone proxy or worker), so
        orchestrators can probe it; 503 when a component is down."""
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.get("/health")
        async def health() -> JSONResponse:
            components = self._health()
            ranks = {"ok": 0, "degraded": 1, "down": 2}
            worst = max((ranks.get(c.status, 2) for c in components.values()), default=0)
            status = next(name for name, rank in ranks.items() if rank == worst)
            return JSONResponse(
                {
                    "status": status,
                    "components": {
                        name: {"status": c.status, "detail": c.detail}
                        for name, c in components.items()
                    },
                },
                status_code=503 if status == "down" else 200,
            )

        @app.get("/metrics")
        async def metrics(request: Request) -> Response:
            body, content_type = encode(self._part_families(), request.headers.get("accept"))
            return Response(body, media_type=content_type)

        return app

    def _part_families(self) -> list[Any]:
        """This process's own Prometheus families (a lone proxy or worker)."""
        from modelmonitor.telemetry._parts import (
            otlp_part_families,
            proxy_part_families,
            worker_part_families,
        )

        families: list[Any] = []
        if self.proxy is not None and self.capture is not None:
            families.extend(proxy_part_families(self.proxy, self.capture, self.shipper))
        if self.worker is not None:
            families.extend(worker_part_families(self.worker, now=self.clock()))
        if self.otlp is not None:
            families.extend(otlp_part_families(self.otlp.stats))
        return families

    def _health(self) -> dict[str, ComponentHealth]:
        components: dict[str, ComponentHealth] = {}
        if self.bus is not None:
            shipping = self.shipper.bus_state if self.shipper is not None else None
            connected = self.bus.connected and shipping in (None, "connected")
            components["bus"] = ComponentHealth(
                status="ok" if connected else "degraded",
                detail=_redact(self.settings.broker_url)
                + ("" if connected else ": unreachable, buffering"),
            )
        if self.worker is not None:
            worker = self.worker.health()
            components["worker"] = ComponentHealth(status=worker.status, detail=worker.detail)
        if self.alerts is not None and self.alerts.engine.running:
            error = self.alerts.engine.last_error
            components["alerts"] = ComponentHealth(
                status="degraded" if error else "ok", detail=error or "evaluating"
            )
        if self.alerts is not None and self.alerts.tracker.running:
            tracker = self.alerts.tracker
            detail = (
                f"feeding {len(tracker.series())} series"
                if tracker.holding
                else "standby (another process feeds the detectors)"
            )
            components["anomaly"] = ComponentHealth(
                status="degraded" if tracker.last_error else "ok",
                detail=tracker.last_error or detail,
            )
        if self.proxy_child is not None:
            state = self.proxy_child.state
            restarted = f", restarted {state.restarts}x" if state.restarts else ""
            components["proxy"] = ComponentHealth(
                status="ok" if state.running else "down",
                detail=f"proxy process {state.pid}{restarted}"
                if state.running
                else f"proxy process exited with code {state.last_exit}; starting it again",
            )
        if self.capture is not None:
            fill = self.capture.size / self.capture.capacity
            components["proxy"] = ComponentHealth(
                status="degraded" if fill > 0.9 else "ok",
                detail=f"buffer {self.capture.size}/{self.capture.capacity}, "
                f"{self.capture.dropped_total} dropped"
                + (f", {self.proxy.health_detail()}" if self.proxy else ""),
            )
        return components

    async def stop(self) -> None:
        """Stop in reverse order: the proxy first, then flush, then the rest."""
        await self._stack.aclose()

    def describe(self) -> list[str]:
        lines = []
        for name, address in self.proxy_addresses.items():
            scheme = "https" if self.settings.listen_tls is not None else "http"
            lines.append(f"proxy    {name}: {scheme}://{address}")
        if self.api_url:
            lines.append(f"api      {self.api_url}  (dashboard at /, OpenAPI at /docs)")
            lines.append(
                "auth     on: log in with a user, a token or single sign-on"
                if self.auth_enabled
                else "auth     off: no users yet (modelmonitor users add NAME --role admin)"
            )
        if self.health_server is not None:
            lines.append(f"health   http://{self.settings.health_listen}/health")
        if self.demo_url is not None:
            lines.append(f"demo     model API at {self.demo_url}")
        lines.append(
            f"backends broker={_redact(self.bus.url if self.bus else self.settings.broker_url)} "
            f"database={_redact(self.settings.effective_database_url)} "
            f"cache={_redact(self.settings.cache_url)}"
        )
        return lines


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store may raise when it is unreachable or broken (driver errors included)."""
    import sqlite3

    errors: tuple[type[BaseException], ...] = (OSError, RuntimeError, sqlite3.Error)
    try:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return errors
    return (*errors, asyncpg.PostgresError)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


async def _answers(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def run_until_signalled(runtime: Runtime, *, ready: str = "") -> None:
    """Start, print where everything listens, and stop cleanly on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        for line in runtime.describe():
            print(line, flush=True)
        if ready:
            print(ready, flush=True)
        await stop.wait()
        print("stopping: flushing buffered events", flush=True)
    finally:
        await runtime.stop()
