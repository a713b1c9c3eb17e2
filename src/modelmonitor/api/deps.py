"""Request-scoped access to what ``create_app`` built: settings, store, live state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn

import msgspec
from fastapi import Depends, HTTPException, Request

from modelmonitor.alerts.system import AlertSystem
from modelmonitor.live.base import LiveState
from modelmonitor.query.snapshots import ReadModel
from modelmonitor.settings import Settings
from modelmonitor.storage.base import EventStore
from modelmonitor.telemetry import ClusterMetrics
from modelmonitor.timeparse import parse_time
from modelmonitor.types import Clock, HealthStatus

__all__ = [
    "ApiContext",
    "ComponentHealth",
    "Context",
    "invalid",
    "json_response",
    "not_found",
    "parse_range",
]


class ComponentHealth(msgspec.Struct, kw_only=True):
    status: HealthStatus
    detail: str = ""


@dataclass
class ApiContext:
    """What every route may use, built once by ``create_app``."""

    settings: Settings
    store: EventStore
    live: LiveState
    read: ReadModel
    clock: Clock
    started_at: float
    #: The alert system (rules, silences, channels, anomaly scores), when it runs here.
    alerts: AlertSystem | None = None
    #: Extra health sources (the worker and proxy of ``modelmonitor up``).
    health_sources: list[Callable[[], dict[str, ComponentHealth]]] = field(default_factory=list)
    #: Request counters and histograms summed over every worker, for ``/metrics``.
    cluster_metrics: ClusterMetrics | None = None

    async def known_services(self) -> set[str]:
        return await self.read.known_services()

    async def require_service(self, name: str) -> None:
        if name not in await self.known_services():
            not_found(f"unknown service {name!r}")


def _context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(_context)]


def invalid(field_name: str, message: str, *, where: str = "query") -> NoReturn:
    """A 422 shaped like FastAPI's own validation errors, naming the field."""
    raise HTTPException(
        status_code=422,
        detail=[{"loc": [where, field_name], "msg": message, "type": "value_error"}],
    )


def parse_range(context: ApiContext, start: str, end: str) -> tuple[float, float]:
    """``start``/``end`` query values as Unix seconds; a 422 naming the bad one."""
    now = context.clock()
    try:
        end_at = parse_time(end, now=now)
    except ValueError as exc:
        invalid("end", str(exc))
    try:
        start_at = parse_time(start, now=now)
    except ValueError as exc:
        invalid("start", str(exc))
    if start_at >= end_at:
        invalid("start", "start must be before end")
    return start_at, end_at


def not_found(message: str) -> NoReturn:
    raise HTTPException(status_code=404, detail=message)


_encoder = msgspec.json.Encoder()


def json_response(
    value: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Any:
    """Encode msgspec structs (and plain data) straight to a JSON response."""
    from fastapi.responses import Response

    return Response(
        content=_encoder.encode(value),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
