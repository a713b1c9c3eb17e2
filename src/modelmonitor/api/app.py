"""``create_app(settings)``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from modelmonitor import __version__
from modelmonitor._tasks import TaskHealth
from modelmonitor.alerts.store.sql import SqlAlertStore
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api._openapi import MethodNotAllowed, install_openapi
from modelmonitor.api.audit_trail import AuditTrailMiddleware, alert_loaders
from modelmonitor.api.deps import ApiContext, ComponentHealth
from modelmonitor.api.guard import Guard, LoginRedirect, auth_responses, check_routes
from modelmonitor.api.routes import (
    alerts,
    anomalies,
    audit,
    auth,
    catalog,
    drift,
    health,
    metrics,
    models,
    oidc,
    prometheus,
    requests,
    services,
    tokens,
    users,
)
from modelmonitor.api.security import SecurityMiddleware
from modelmonitor.api.ws import SnapshotHub
from modelmonitor.api.ws import router as ws_router
from modelmonitor.auth.exposure import exposure_problem
from modelmonitor.auth.network import HostPolicy
from modelmonitor.auth.roles import Role
from modelmonitor.auth.service import AuthService
from modelmonitor.auth.store import AuthStore, create_auth_store
from modelmonitor.catalog import ServiceCatalog
from modelmonitor.live import LiveState, create_live
from modelmonitor.quality.alerting import install_drift_alerts
from modelmonitor.quality.store import QualityStore, create_quality_store
from modelmonitor.query.snapshots import ReadModel
from modelmonitor.settings import Settings, parse_host_port
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
    auth_store: AuthStore | None = None,
    cluster_metrics: ClusterMetrics | None = None,
    quality_store: QualityStore | None = None,
) -> FastAPI:
    """Build the API. Store, live state, the alert system and the auth store are opened
    here unless given (``modelmonitor up`` shares its own with the worker)."""
    own_auth_store = auth_store or create_auth_store(settings.effective_database_url)
    auth_service = AuthService(
        store=own_auth_store,
        config=settings.auth,
        admin_token=settings.admin_token.get_secret_value() if settings.admin_token else None,
        clock=clock,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if auth_store is None:
                await own_auth_store.connect()
                stack.push_async_callback(own_auth_store.close)
                problem = await exposure_problem(settings, auth_service)
                if problem is not None:
                    raise RuntimeError(problem)
            auth_service.start()
            stack.push_async_callback(auth_service.stop)
            own_store = store or create_store(settings.effective_database_url)
            own_live = live or create_live(settings.cache_url, clock=clock)
            if store is None:
                await own_store.connect()
                stack.push_async_callback(own_store.close)
            if live is None:
                await own_live.connect()
                stack.push_async_callback(own_live.close)
            if quality_store is None:
                own_quality = create_quality_store(settings.effective_database_url)
                await own_quality.connect()
                stack.push_async_callback(own_quality.close)
            app.state.quality = quality_store or own_quality
            if alert_system is None:
                own_alerts = AlertSystem.from_settings(
                    settings, live=own_live, clock=clock, history=own_store
                )
                install_drift_alerts(own_alerts, app.state.quality, settings)
                await own_alerts.start(evaluate=True)
                stack.push_async_callback(own_alerts.stop)
            running_alerts = alert_system or own_alerts
            context = ApiContext(
                settings=settings,
                store=own_store,
                live=own_live,
                read=ReadModel(
                    settings=settings,
                    store=own_store,
                    live=own_live,
                    anomalies=running_alerts.store,
                    clock=clock,
                ),
                clock=clock,
                started_at=clock(),
                alerts=running_alerts,
                health_sources=list(health_sources or []),
            )
            if cluster_metrics is not None:
                context.cluster_metrics = cluster_metrics
            else:
                context.cluster_metrics = create_cluster(settings.cache_url)
                await context.cluster_metrics.connect()
                stack.push_async_callback(context.cluster_metrics.close)
            catalog_store = running_alerts.store
            assert isinstance(catalog_store, SqlAlertStore)
            app.state.catalog = ServiceCatalog(catalog_store, declared=settings.effective_services)
            app.state.context = context
            hub = SnapshotHub(context)
            app.state.hub = hub
            context.health_sources.append(lambda: {"websocket": _component(hub.health())})
            hub.start()
            stack.push_async_callback(hub.stop)
            yield

    app = FastAPI(
        title="ModelMonitor",
        version=__version__,
        description="Real-time monitoring of machine-learning model APIs.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.auth = auth_service
    install_openapi(app)
    _include_routes(app)
    _mount_dashboard(app, static_dir)
    check_routes(app)
    app.add_middleware(MethodNotAllowed, api=app)
    loaders = {**alert_loaders(), **catalog.catalog_loaders()}
    app.add_middleware(AuditTrailMiddleware, fastapi=app, loaders=loaders)
    host, _ = parse_host_port(settings.api)
    policy = HostPolicy(
        bind_host=host,
        allowed_hosts=settings.auth.allowed_hosts,
        allowed_origins=settings.auth.allowed_origins,
    )
    app.add_middleware(SecurityMiddleware, policy=policy, trusted=auth_service.trusted_networks)
    return app


def _component(health: TaskHealth) -> ComponentHealth:
    return ComponentHealth(status=health.status, detail=health.detail)


def _include_routes(app: FastAPI) -> None:
    """Every router with its least role; writes declare a higher one on the route."""
    denied = auth_responses()
    viewer = [Depends(Guard(Role.VIEWER))]
    app.include_router(health.router)  # /health is public; /api/v1/health guards itself
    app.include_router(auth.router)  # login and state are public; logout guards itself
    app.include_router(oidc.router)  # public: the way in
    for module in (services, metrics, models, anomalies, requests, alerts, drift):
        app.include_router(module.router, dependencies=viewer, responses=denied)
    app.include_router(
        prometheus.router, dependencies=[Depends(Guard(Role.METRICS))], responses=denied
    )
    for module in (users, tokens, audit, catalog):
        app.include_router(module.router, responses=denied)
    app.include_router(ws_router, dependencies=viewer)
    _api_docs(app)


def _api_docs(app: FastAPI) -> None:
    """The OpenAPI schema and its viewers, for viewers and up."""
    viewer = [Depends(Guard(Role.VIEWER))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=viewer)
    async def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=viewer)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    @app.get("/redoc", include_in_schema=False, dependencies=viewer)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} API")


def _mount_dashboard(app: FastAPI, static_dir: Path) -> None:
    index = static_dir / "index.html"
    assets = static_dir / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")

    def page() -> FileResponse | JSONResponse:
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return JSONResponse(
            {"detail": "the dashboard is not built: run `make run` (or `cd web && npm run build`)"},
            status_code=404,
        )

    @app.get("/login", include_in_schema=False, response_model=None)
    def login_page() -> FileResponse | JSONResponse:
        return page()

    @app.exception_handler(LoginRedirect)
    async def to_login(request: Request, exc: LoginRedirect) -> Any:
        if exc.next_path.lstrip("/").startswith(_API_PREFIXES):
            return JSONResponse(
                {"detail": "authentication required: log in or send a bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="modelmonitor"'},
            )
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    @app.get(
        "/{path:path}",
        include_in_schema=False,
        response_model=None,
        dependencies=[Depends(Guard(Role.VIEWER, login_redirect=True))],
    )
    def dashboard(path: str) -> FileResponse | JSONResponse:
        if path.startswith(_API_PREFIXES):
            raise HTTPException(status_code=404, detail="Not Found")
        candidate = (static_dir / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(static_dir.resolve()):
            return FileResponse(candidate)
        return page()
