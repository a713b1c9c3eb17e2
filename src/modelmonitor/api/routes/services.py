"""``GET /api/v1/services``: configured and observed services."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import Context, json_response

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["services"])


class ServiceInfo(msgspec.Struct, kw_only=True):
    name: str
    upstream: str | None = None
    listen: str | None = None
    path_prefix: str | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    requests_total: int = 0


class ServiceList(msgspec.Struct, kw_only=True):
    services: list[ServiceInfo]


@router.get("/services", responses=schema_response(ServiceList), summary="Monitored services")
async def list_services(context: Context) -> object:
    settings = context.settings
    found: dict[str, ServiceInfo] = {}
    for service in settings.effective_services:
        listen = service.listen or settings.listen
        found[service.name] = ServiceInfo(
            name=service.name,
            upstream=service.upstream,
            listen=listen,
            path_prefix=service.path_prefix,
        )
    for summary in await context.store.services():
        info = found.setdefault(summary.name, ServiceInfo(name=summary.name))
        info.first_seen = summary.first_seen
        info.last_seen = summary.last_seen
        info.requests_total = summary.requests
    return json_response(ServiceList(services=sorted(found.values(), key=lambda s: s.name)))
