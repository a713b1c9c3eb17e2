"""``/api/v1/alerts``: current alerts, history, rules, silences, channels and deliveries.

Thin views over :mod:`modelmonitor.alerts.service`; the alert system is built by
the composition root and found in ``context.alerts``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import msgspec
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response

from modelmonitor.alerts import service
from modelmonitor.alerts.configure import ConfigureRequest
from modelmonitor.alerts.models import Delivery, HistoryEntry
from modelmonitor.alerts.rules import AnomalyRule, RuleBase, RuleError, ThresholdRule
from modelmonitor.alerts.service import AlertView, ChannelView, NotFoundError
from modelmonitor.alerts.silences import Silence
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.api._openapi import DURATION_PATTERN, TIME_PATTERN, schema_response
from modelmonitor.api.deps import ApiContext, Context, invalid, json_response, not_found
from modelmonitor.api.guard import Guard
from modelmonitor.auth.roles import Role
from modelmonitor.timeparse import parse_duration, parse_time

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

T = TypeVar("T")


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """Document a JSON body validated by hand (for 422s shaped like FastAPI's)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_RULE_BODY = _body(
    {
        "oneOf": [
            ThresholdRule.model_json_schema(by_alias=True),
            AnomalyRule.model_json_schema(by_alias=True),
        ]
    }
)
_CONFIGURE_BODY = _body(ConfigureRequest.model_json_schema())
JsonBody = Annotated[Any, Body(description="A JSON object; see docs/alerting.md")]
#: Changes to rules, silences and channel states need the editor role.
EDITOR = [Depends(Guard(Role.EDITOR))]


class AlertList(msgspec.Struct, kw_only=True):
    alerts: list[AlertView]


class HistoryList(msgspec.Struct, kw_only=True):
    history: list[HistoryEntry]


class DeliveryList(msgspec.Struct, kw_only=True):
    deliveries: list[Delivery]


class ChannelList(msgspec.Struct, kw_only=True):
    channels: list[ChannelView]


def _system(context: ApiContext) -> AlertSystem:
    system = context.alerts
    if system is None:
        raise HTTPException(status_code=503, detail="alerting is not running in this process")
    return system


def _unprocessable(error: RuleError) -> NoReturn:
    detail = [{**problem, "loc": ["body", *problem["loc"]]} for problem in error.details]
    raise HTTPException(status_code=422, detail=detail)


async def _call(result: Awaitable[T]) -> T:
    try:
        return await result
    except RuleError as exc:
        _unprocessable(exc)
    except NotFoundError as exc:
        not_found(str(exc))


def _rule(rule: RuleBase) -> dict[str, Any]:
    return rule.document()


def _silence(silence: Silence) -> dict[str, Any]:
    return silence.model_dump(mode="json")


def _time(name: str, text: str | None, now: float) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text, now=now)
    except ValueError as exc:
        invalid(name, str(exc))


@router.get("", responses=schema_response(AlertList), summary="Firing, pending, recently resolved")
async def current_alerts(
    context: Context,
    resolved_within: Annotated[str, Query(pattern=DURATION_PATTERN)] = "1h",
    service_name: str | None = Query(None, alias="service"),
) -> object:
    try:
        within = parse_duration(resolved_within)
    except ValueError as exc:
        invalid("resolved_within", str(exc))
    alerts = await service.current_alerts(
        system=_system(context), resolved_within=within, service=service_name
    )
    return json_response(AlertList(alerts=alerts))


@router.get("/history", responses=schema_response(HistoryList), summary="Alert state changes")
async def alert_history(
    context: Context,
    start: Annotated[str | None, Query(pattern=TIME_PATTERN)] = None,
    end: Annotated[str | None, Query(pattern=TIME_PATTERN)] = None,
    service_name: str | None = Query(None, alias="service"),
    rule_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> object:
    now = context.clock()
    entries = await service.list_history(
        system=_system(context),
        start=_time("start", start, now),
        end=_time("end", end, now),
        service=service_name,
        rule_id=rule_id,
        limit=limit,
    )
    return json_response(HistoryList(history=entries))


@router.post(
    "/configure",
    openapi_extra=_CONFIGURE_BODY,
    summary="The short form: thresholds and channels to rules",
    dependencies=EDITOR,
)
async def configure(context: Context, body: JsonBody) -> object:
    rules = await _call(service.apply_configure(system=_system(context), data=body))
    return json_response({"rules": [_rule(r) for r in rules]})


@router.get("/rules", summary="All alert rules")
async def list_rules(context: Context) -> object:
    rules = await service.list_rules(system=_system(context))
    return json_response({"rules": [_rule(r) for r in rules]})


@router.post(
    "/rules",
    status_code=201,
    openapi_extra=_RULE_BODY,
    summary="Create an alert rule",
    dependencies=EDITOR,
)
async def create_rule(context: Context, body: JsonBody) -> object:
    rule = await _call(service.create_rule(system=_system(context), data=body))
    return json_response(_rule(rule), status_code=201)


@router.get("/rules/{rule_id}", summary="One alert rule")
async def get_rule(context: Context, rule_id: str) -> object:
    rule = await _call(service.get_rule(system=_system(context), rule_id=rule_id))
    return json_response(_rule(rule))


@router.put(
    "/rules/{rule_id}",
    openapi_extra=_RULE_BODY,
    summary="Replace an alert rule",
    dependencies=EDITOR,
)
async def update_rule(context: Context, rule_id: str, body: JsonBody) -> object:
    rule = await _call(service.update_rule(system=_system(context), rule_id=rule_id, data=body))
    return json_response(_rule(rule))


@router.delete(
    "/rules/{rule_id}",
    status_code=204,
    response_model=None,
    summary="Delete an alert rule",
    dependencies=EDITOR,
)
async def delete_rule(context: Context, rule_id: str) -> Response:
    await _call(service.delete_rule(system=_system(context), rule_id=rule_id))
    return Response(status_code=204)


@router.get("/silences", summary="Silences (active and upcoming; expired too on request)")
async def list_silences(context: Context, include_expired: bool = False) -> object:
    silences = await service.list_silences(system=_system(context), include_expired=include_expired)
    return json_response({"silences": [_silence(s) for s in silences]})


@router.post("/silences", status_code=201, summary="Create a silence", dependencies=EDITOR)
async def create_silence(context: Context, body: JsonBody) -> object:
    silence = await _call(service.create_silence(system=_system(context), data=body))
    return json_response(_silence(silence), status_code=201)


@router.get("/silences/{silence_id}", summary="One silence")
async def get_silence(context: Context, silence_id: str) -> object:
    silence = await _call(service.get_silence(system=_system(context), silence_id=silence_id))
    return json_response(_silence(silence))


@router.put("/silences/{silence_id}", summary="Replace a silence", dependencies=EDITOR)
async def update_silence(context: Context, silence_id: str, body: JsonBody) -> object:
    silence = await _call(
        service.update_silence(system=_system(context), silence_id=silence_id, data=body)
    )
    return json_response(_silence(silence))


@router.delete(
    "/silences/{silence_id}",
    status_code=204,
    response_model=None,
    summary="Delete a silence",
    dependencies=EDITOR,
)
async def delete_silence(context: Context, silence_id: str) -> Response:
    await _call(service.delete_silence(system=_system(context), silence_id=silence_id))
    return Response(status_code=204)


@router.get("/deliveries", responses=schema_response(DeliveryList), summary="Delivery log")
async def list_deliveries(
    context: Context,
    channel: str | None = None,
    status: Literal["pending", "delivered", "failed", "refused", "skipped"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> object:
    deliveries = await service.list_deliveries(
        system=_system(context), channel=channel, status=status, limit=limit
    )
    return json_response(DeliveryList(deliveries=deliveries))


@router.get("/channels", responses=schema_response(ChannelList), summary="Channels and health")
async def list_channels(context: Context) -> object:
    return json_response(ChannelList(channels=await service.list_channels(system=_system(context))))


@router.post(
    "/channels/{name}/enable", summary="Re-enable a (disabled) channel", dependencies=EDITOR
)
async def enable_channel(context: Context, name: str) -> object:
    view = await _call(
        service.set_channel_enabled(system=_system(context), name=name, enabled=True)
    )
    return json_response(view)


@router.post("/channels/{name}/disable", summary="Disable a channel", dependencies=EDITOR)
async def disable_channel(context: Context, name: str) -> object:
    view = await _call(
        service.set_channel_enabled(system=_system(context), name=name, enabled=False)
    )
    return json_response(view)


@router.post("/channels/{name}/test", summary="Send a test notification now", dependencies=EDITOR)
async def test_channel(context: Context, name: str) -> object:
    delivery = await _call(service.send_test(system=_system(context), name=name))
    return json_response(delivery)
