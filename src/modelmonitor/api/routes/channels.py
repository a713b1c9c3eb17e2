"""``/api/v1/alerts/channels``: add, change and remove notification channels at run time.

Channels declared in the configuration file are listed read-only (409 on a change);
the rest live in the alert store, which every dispatching process polls. Listing is
``GET /api/v1/alerts/channels`` (viewers, :mod:`.alerts`); changes and the dry run take
an admin and are audited. Secrets are masked in every answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NoReturn

import msgspec
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from modelmonitor.alerts import service
from modelmonitor.alerts.channels import DeliveryError
from modelmonitor.alerts.channels.apprise import scrub
from modelmonitor.alerts.runtime_channels import (
    ChannelConflict,
    ChannelFieldError,
    ChannelNotFound,
    RuntimeChannels,
    StoredChannel,
    build_channel,
)
from modelmonitor.alerts.service import ChannelView
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import json_response
from modelmonitor.api.guard import Admin

__all__ = ["channel_loaders", "router"]

router = APIRouter(prefix="/api/v1/alerts/channels", tags=["alerts"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such stored channel"},
    409: {"description": "Declared in the configuration file, or the name is taken"},
    503: {"description": "Alerting is not running in this process"},
}


class ChannelRequest(BaseModel):
    """A channel: its name, type (email, slack, webhook, alertmanager, apprise) and the
    type's settings, as under ``notification_channels`` in the configuration file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)


class DryRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "dry-run"
    type: str
    settings: dict[str, Any] = Field(default_factory=dict)


class DryRunResult(msgspec.Struct, kw_only=True):
    """What one test notification to a channel built from the body found."""

    delivered: bool
    http_status: int | None = None
    latency_ms: float
    error: str = ""


def _runtime(request: Request) -> tuple[AlertSystem, RuntimeChannels]:
    system = request.app.state.context.alerts
    if not isinstance(system, AlertSystem) or system.runtime_channels is None:
        raise HTTPException(status_code=503, detail="alerting is not running in this process")
    return system, system.runtime_channels


def _refuse(exc: Exception) -> NoReturn:
    if isinstance(exc, ChannelFieldError):
        detail = [{**problem, "loc": ["body", *problem["loc"]]} for problem in exc.details]
        raise HTTPException(status_code=422, detail=detail) from None
    status = 404 if isinstance(exc, ChannelNotFound) else 409
    raise HTTPException(status_code=status, detail=str(exc)) from None


async def _view(system: AlertSystem, name: str) -> ChannelView:
    for view in await service.list_channels(system=system):
        if view.name == name:
            return view
    raise HTTPException(status_code=404, detail=f"no channel named {name!r}")


@router.post(
    "",
    status_code=201,
    responses={**schema_response(ChannelView), 409: _ERRORS[409], 503: _ERRORS[503]},
    summary="Add a notification channel (every process uses it within seconds)",
)
async def add_channel(request: Request, principal: Admin, body: ChannelRequest) -> object:
    system, runtime = _runtime(request)
    stored = StoredChannel(
        name=body.name, type=body.type, settings=body.settings, updated_at=time.time()
    )
    try:
        await runtime.create(stored)
    except (ChannelFieldError, ChannelConflict) as exc:
        _refuse(exc)
    return json_response(await _view(system, body.name), status_code=201)


@router.put(
    "/{name}",
    responses={**schema_response(ChannelView), **_ERRORS},
    summary="Replace a stored notification channel's type and settings",
)
async def replace_channel(
    request: Request, principal: Admin, name: str, body: ChannelUpdate
) -> object:
    system, runtime = _runtime(request)
    if body.name is not None and body.name != name:
        _refuse(
            ChannelFieldError(
                [{"loc": ["name"], "msg": "must match the path", "type": "value_error"}]
            )
        )
    stored = StoredChannel(
        name=name, type=body.type, settings=body.settings, updated_at=time.time()
    )
    try:
        await runtime.replace(stored)
    except (ChannelFieldError, ChannelConflict, ChannelNotFound) as exc:
        _refuse(exc)
    return json_response(await _view(system, name))


@router.delete(
    "/{name}",
    status_code=204,
    response_model=None,
    responses=_ERRORS,
    summary="Remove a stored notification channel",
)
async def delete_channel(request: Request, principal: Admin, name: str) -> Response:
    _, runtime = _runtime(request)
    try:
        await runtime.delete(name)
    except (ChannelConflict, ChannelNotFound) as exc:
        _refuse(exc)
    return Response(status_code=204)


@router.post(
    "/dry-run",
    responses={**schema_response(DryRunResult), 503: _ERRORS[503]},
    summary="Dry run: send a test notification to a channel built from the body",
)
async def dry_run(request: Request, principal: Admin, body: DryRunRequest) -> object:
    system, _ = _runtime(request)
    try:
        channel = build_channel(body.name, body.type, body.settings)
    except ChannelFieldError as exc:
        _refuse(exc)
    secrets = _secrets(body.settings)
    started = time.perf_counter()
    result = DryRunResult(delivered=False, latency_ms=0.0)
    try:
        sent = await asyncio.wait_for(
            channel.send(service.sample_notification(now=system.clock())),
            timeout=channel.config.timeout_seconds * 2,
        )
        result.delivered, result.http_status = True, sent.http_status
    except TimeoutError:
        result.error = "timed out"
    except DeliveryError as exc:
        result.error, result.http_status = scrub(str(exc), secrets), exc.http_status
    finally:
        await channel.close()
    result.latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return json_response(result)


def _secrets(settings: dict[str, Any]) -> list[str]:
    """Every string value in the settings that could be a credential, longest first,
    so an error message quoting one (a URL, a header) is scrubbed."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and len(value) >= 4:
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for key, value in settings.items():
        if key not in ("type", "max_attempts", "timeout_seconds"):
            walk(value)
    return sorted(set(found), key=len, reverse=True)


def channel_loaders() -> dict[str, Any]:
    """What the audit trail records as *before* for each change (masked)."""

    async def before(app: FastAPI, params: dict[str, Any]) -> Any:
        system = app.state.context.alerts
        if not isinstance(system, AlertSystem):
            return None
        for view in await service.list_channels(system=system):
            if view.name == params.get("name"):
                return msgspec.to_builtins(view)
        return None

    return {"/api/v1/alerts/channels/{name}": before}
