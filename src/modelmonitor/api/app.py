"""``create_app(settings)``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from modelmonitor import __version__
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api._openapi import install_openapi
from modelmonitor.api.deps import ApiContext, ComponentHealth
from modelmonitor.api.routes import (
    alerts,
    anomalies,
    health,
    metrics,
    models,
    prometheus,
    requests,
    services,
)
from modelmonitor.api.ws import SnapshotHub
from modelmonitor.api.ws import router as ws_router
from modelmonitor.live import LiveState, create_live
from modelmonitor.settings import Settings
from modelmonitor.storage import EventStore, create_store
from modelmonitor.telemetry import ClusterMetrics, create_cluster
from modelmonitor.types import Clock

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_API_PREFIXES = ("api/", "ws/", "docs", "redoc", "openapi.json", "health", "metrics")


def create_app(
    settings: Settings,
    *,
    store: EventStore | None = None,
    live: LiveState | None = None,
    clock: Clock = time.time,
    health_sources: list[Callable[[], dict[str, ComponentHealth]]] | None = None,
    static_dir: Path = STATIC_DIR,
    alert_system: AlertSystem | None = None,
    cluster_metrics: ClusterMetrics | None = None,
) -> FastAPI:
    """Build the API. Store, live state and the alert system are opened here unless given
    (``modelmonitor up`` shares its own with the worker)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            own_store = store or create_store(settings.effective_database_url)
            own_live = live or create_live(settings.cache_url, clock=clock)
            if store is None:
                await own_store.connect()
                stack.push_async_callback(own_store.close)
            if live is None:
                await own_live.connect()
                stack.push_async_callback(own_live.close)
            context = ApiContext(
                settings=settings,
                store=own_store,
                live=own_live,
                clock=clock,
                started_at=clock(),
                health_sources=list(health_sources or []),
            )
            if cluster_metrics is not None:
                context.cluster_metrics = cluster_metrics
            else:
                context.cluster_metrics = create_cluster(settings.cache_url)
                await context.cluster_metrics.connect()
                stack.push_async_callback(context.cluster_metrics.close)
            if alert_system is None:
                own_alerts = AlertSystem.from_settings(
                    settings, live=own_live, clock=clock, events=own_store
                )
                await own_alerts.start(evaluate=True)
                stack.push_async_callback(own_alerts.stop)
            context.extras["alerts"] = alert_system or own_alerts
            app.state.context = context
            hub = SnapshotHub(context)
            app.state.hub = hub
            hub.start()
            stack.push_async_callback(hub.stop)
            yield

    app = FastAPI(
        title="ModelMonitor",
        version=__version__,
        description="Real-time monitoring of machine-learning model APIs.",
        lifespan=lifespan,
    )
    install_openapi(app)
    routers = (health, services, metrics, models, anomalies, requests, prometheus, alerts)
    for module in routers:
        app.include_router(module.router)
    app.include_router(ws_router)
    _mount_dashboard(app, static_dir)
    return app


def _mount_dashboard(app: FastAPI, static_dir: Path) -> None:
    index = static_dir / "index.html"
    assets = static_dir / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")

    @app.get("/{path:path}", include_in_schema=False, response_model=None)
    def dashboard(path: str) -> FileResponse | JSONResponse:
        if path.startswith(_API_PREFIXES):
            raise HTTPException(status_code=404, detail="Not Found")
        candidate = (static_dir / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(static_dir.resolve()):
            return FileResponse(candidate)
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return JSONResponse(
            {"detail": "the dashboard is not built: run `make run` (or `cd web && npm run build`)"},
            status_code=404,
        )
