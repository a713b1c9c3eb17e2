"""``GET /health`` and ``GET /api/v1/health``: each component's status, buffers and drops."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from fastapi import APIRouter

from modelmonitor import __version__
from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import ComponentHealth, Context, json_response
from modelmonitor.api.guard import MaybePrincipal, Viewer, auth_responses
from modelmonitor.auth.roles import Role
from modelmonitor.live.base import ProxyStatus
from modelmonitor.types import HealthStatus

__all__ = ["router"]

router = APIRouter(tags=["health"])

_RANK: dict[HealthStatus, int] = {"ok": 0, "degraded": 1, "down": 2}


class BufferHealth(msgspec.Struct, kw_only=True):
    size: int
    capacity: int
    fill_ratio: float


class Health(msgspec.Struct, kw_only=True):
    status: HealthStatus
    version: str
    uptime_seconds: float
    components: dict[str, ComponentHealth]
    buffer: BufferHealth
    dropped_events_total: int
    ingest_rate: float
    proxies: list[ProxyStatus]


async def _health(context: Context) -> Health:
    components: dict[str, ComponentHealth] = {}
    try:
        await asyncio.wait_for(context.store.ping(), timeout=2.0)
        components["store"] = ComponentHealth(status="ok", detail=_scheme(context.store.url))
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        components["store"] = ComponentHealth(status="down", detail=f"{type(exc).__name__}: {exc}")
    snapshot = await context.live.snapshot()
    components["live"] = ComponentHealth(status="ok", detail=_scheme(context.live.url))
    proxies = snapshot.proxies
    disconnected = [p.proxy_id for p in proxies if p.bus_state != "connected"]
    if disconnected:
        components["bus"] = ComponentHealth(
            status="degraded",
            detail=f"proxies buffering, bus unreachable: {', '.join(disconnected)}",
        )
    elif proxies:
        components["bus"] = ComponentHealth(status="ok", detail=f"{len(proxies)} proxies reporting")
    for source in context.health_sources:
        components.update(source())
    size = sum(p.buffer_size for p in proxies)
    capacity = sum(p.buffer_capacity for p in proxies)
    worst = max((_RANK.get(c.status, 2) for c in components.values()), default=0)
    return Health(
        status=next(name for name, rank in _RANK.items() if rank == worst),
        version=__version__,
        uptime_seconds=context.clock() - context.started_at,
        components=components,
        buffer=BufferHealth(
            size=size, capacity=capacity, fill_ratio=size / capacity if capacity else 0.0
        ),
        dropped_events_total=sum(p.dropped_total for p in proxies),
        ingest_rate=snapshot.ingest_rate,
        proxies=proxies,
    )


def _scheme(url: str) -> str:
    return url.split("://", 1)[0]


class Liveness(msgspec.Struct, kw_only=True):
    status: str


def _content(tp: Any) -> dict[str, Any]:
    return {"content": schema_response(tp)[200]["content"]}


def _either(*types: Any) -> dict[int | str, Any]:
    schemas = [schema_response(tp)[200]["content"]["application/json"]["schema"] for tp in types]
    # anyOf, not oneOf: a full Health answer also has the liveness answer's one field.
    content = {"application/json": {"schema": {"anyOf": schemas}}}
    return {
        200: {"description": "Health (status only, unless a viewer asks)", "content": content},
        503: {"description": "A component is down", "content": content},
    }


@router.get(
    "/health",
    responses=_either(Health, Liveness),
    summary="System health (status only, unless a viewer asks)",
)
async def health(context: Context, principal: MaybePrincipal) -> object:
    result = await _health(context)
    status_code = 503 if result.status == "down" else 200
    if principal is None or principal.role < Role.VIEWER:
        return json_response(Liveness(status=result.status), status_code=status_code)
    return json_response(result, status_code=status_code)


@router.get(
    "/api/v1/health",
    responses={
        **schema_response(Health),
        503: {"description": "A component is down", **_content(Health)},
        **auth_responses(),
    },
    summary="System health",
)
async def api_health(context: Context, principal: Viewer) -> object:
    result = await _health(context)
    return json_response(result, status_code=503 if result.status == "down" else 200)
