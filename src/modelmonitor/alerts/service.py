"""What the API (and ``ModelAPIMonitor``) does with alerting, as keyword-only functions.

Views stay thin: they parse the query, call one of these, and encode the result.
Validation problems raise :class:`~modelmonitor.alerts.rules.RuleError` (422,
naming the field); unknown ids raise :class:`NotFoundError` (404).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from pydantic import ValidationError

from modelmonitor.alerts.channels import unknown_channels
from modelmonitor.alerts.configure import rules_from_configure
from modelmonitor.alerts.models import (
    AlertNotice,
    ChannelStatus,
    Delivery,
    HistoryEntry,
    Notification,
)
from modelmonitor.alerts.rules import RuleBase, RuleError, parse_rule, rule_error_details
from modelmonitor.alerts.silences import Silence, alert_labels
from modelmonitor.alerts.system import AlertSystem

__all__ = [
    "AlertView",
    "ChannelView",
    "NotFoundError",
    "apply_configure",
    "create_rule",
    "create_silence",
    "current_alerts",
    "delete_rule",
    "delete_silence",
    "get_rule",
    "get_silence",
    "list_channels",
    "list_deliveries",
    "list_history",
    "list_rules",
    "list_silences",
    "sample_notification",
    "send_test",
    "set_channel_enabled",
    "update_rule",
    "update_silence",
]

_SERVER_FIELDS = ("id", "source", "created_at", "updated_at")


class NotFoundError(LookupError):
    pass


class AlertView(msgspec.Struct, kw_only=True):
    """One current alert (the dashboard's ``Alert``)."""

    id: str
    rule_id: str
    rule_name: str
    service: str
    state: str  # pending | firing | resolved
    severity: str
    value: float | None
    threshold: float | None
    metric: str | None
    started_at: float | None
    firing_since: float | None
    resolved_at: float | None
    last_notified_at: float | None
    silenced: bool
    labels: dict[str, str]
    summary: str


class ChannelView(msgspec.Struct, kw_only=True):
    name: str
    type: str
    enabled: bool
    disabled_reason: str
    disabled_at: float | None
    consecutive_failures: int
    last_success_at: float | None
    last_failure_at: float | None
    last_error: str
    config: dict[str, Any]
    #: ``config``: declared in the configuration file (read-only); ``api``: stored.
    source: str = "config"
    read_only: bool = True


# Rules.


async def list_rules(*, system: AlertSystem) -> list[RuleBase]:
    return await system.store.list_rules()


async def get_rule(*, system: AlertSystem, rule_id: str) -> RuleBase:
    rule = await system.store.get_rule(rule_id)
    if rule is None:
        raise NotFoundError(f"no alert rule {rule_id!r}")
    return rule


def _validate(system: AlertSystem, data: Any) -> RuleBase:
    if isinstance(data, dict):
        for name in _SERVER_FIELDS:
            if name in data:
                raise RuleError(
                    [{"loc": [name], "msg": "set by the server", "type": "value_error"}]
                )
    rule = parse_rule(data)
    problems = [
        {
            "loc": ["channels", (rule.channels or []).index(entry)],
            "msg": f"no channel or channel type named {entry!r}; configured: "
            + (", ".join(sorted(system.channel_types)) or "none"),
            "type": "value_error",
        }
        for entry in unknown_channels(rule.channels, system.channel_types)
    ]
    if problems:
        raise RuleError(problems)
    return rule


async def _check_unique_name(system: AlertSystem, rule: RuleBase) -> None:
    for other in await system.store.list_rules():
        if other.name == rule.name and other.id != rule.id:
            raise RuleError(
                [
                    {
                        "loc": ["name"],
                        "msg": f"a rule named {rule.name!r} exists",
                        "type": "value_error",
                    }
                ]
            )


async def create_rule(*, system: AlertSystem, data: Any) -> RuleBase:
    rule = _validate(system, data)
    rule.id = uuid.uuid4().hex[:12]
    rule.created_at = rule.updated_at = system.clock()
    await _check_unique_name(system, rule)
    await system.store.put_rule(rule)
    return rule


async def update_rule(*, system: AlertSystem, rule_id: str, data: Any) -> RuleBase:
    existing = await get_rule(system=system, rule_id=rule_id)
    rule = _validate(system, data)
    rule.id = existing.id
    rule.source = existing.source
    rule.created_at = existing.created_at
    rule.updated_at = system.clock()
    await _check_unique_name(system, rule)
    await system.store.put_rule(rule)
    return rule


async def delete_rule(*, system: AlertSystem, rule_id: str) -> None:
    if not await system.store.delete_rule(rule_id):
        raise NotFoundError(f"no alert rule {rule_id!r}")


async def apply_configure(*, system: AlertSystem, data: Any) -> list[RuleBase]:
    """The brief's short form: build its rules and store them (replacing earlier ones)."""
    rules = rules_from_configure(data, now=system.clock())
    for rule in rules:
        problems = unknown_channels(rule.channels, system.channel_types)
        if problems:
            index = (rule.channels or []).index(problems[0])
            raise RuleError(
                [
                    {
                        "loc": ["alert_channels", index],
                        "msg": f"no channel or channel type named {problems[0]!r}; "
                        f"configured: {', '.join(sorted(system.channel_types)) or 'none'}",
                        "type": "value_error",
                    }
                ]
            )
    for rule in rules:
        existing = await system.store.get_rule(rule.id)
        if existing is not None:
            rule.created_at = existing.created_at
        await system.store.put_rule(rule)
    return rules


# Alerts.


async def current_alerts(
    *, system: AlertSystem, resolved_within: float, service: str | None = None
) -> list[AlertView]:
    now = system.clock()
    rules = {rule.id: rule for rule in await system.store.list_rules()}
    silences = [s for s in await system.store.list_silences() if s.active(now)]
    views = []
    for state in await system.store.list_states():
        rule = rules.get(state.rule_id)
        if rule is None or (service is not None and state.service != service):
            continue
        if state.status == "inactive":
            continue
        if state.status == "resolved" and (
            state.resolved_at is None or now - state.resolved_at > resolved_within
        ):
            continue
        labels = alert_labels(
            rule_id=rule.id,
            rule_name=rule.name,
            service=state.service,
            severity=rule.severity,
            route=rule.route,
            labels=rule.labels,
        )
        views.append(
            AlertView(
                id=state.id,
                rule_id=rule.id,
                rule_name=rule.name,
                service=state.service,
                state=state.status,
                severity=rule.severity,
                value=state.value,
                threshold=getattr(rule, "threshold", None),
                metric=getattr(rule, "metric", None),
                started_at=state.active_since,
                firing_since=state.firing_since,
                resolved_at=state.resolved_at,
                last_notified_at=state.last_notified_at,
                silenced=any(s.matches(labels) for s in silences),
                labels=labels,
                summary=rule.summary or _summary(rule),
            )
        )
    order = {"firing": 0, "pending": 1, "resolved": 2}
    views.sort(key=lambda v: (order.get(v.state, 3), -(v.started_at or 0.0)))
    return views


def _summary(rule: RuleBase) -> str:
    metric = getattr(rule, "metric", None)
    if metric is None:
        return rule.name
    if rule.kind == "anomaly":
        return f"anomaly in {metric} (sensitivity {getattr(rule, 'sensitivity', 0.5):g})"
    return (
        f"{metric} {getattr(rule, 'comparator', '>')} {getattr(rule, 'threshold', 0):g} "
        f"over {getattr(rule, 'window', '1m')}"
    )


async def list_history(
    *,
    system: AlertSystem,
    start: float | None,
    end: float | None,
    service: str | None,
    rule_id: str | None,
    limit: int,
) -> list[HistoryEntry]:
    return await system.store.history(
        start=start, end=end, service=service, rule_id=rule_id, limit=limit
    )


# Silences.


def _parse_silence(data: Any) -> Silence:
    if isinstance(data, dict):
        for name in ("id", "created_at"):
            if name in data:
                raise RuleError(
                    [{"loc": [name], "msg": "set by the server", "type": "value_error"}]
                )
    try:
        return Silence.model_validate(data)
    except ValidationError as exc:
        raise RuleError(rule_error_details(exc)) from None


async def list_silences(*, system: AlertSystem, include_expired: bool) -> list[Silence]:
    now = system.clock()
    silences = await system.store.list_silences()
    return [s for s in silences if include_expired or s.ends_at > now]


async def get_silence(*, system: AlertSystem, silence_id: str) -> Silence:
    silence = await system.store.get_silence(silence_id)
    if silence is None:
        raise NotFoundError(f"no silence {silence_id!r}")
    return silence


async def create_silence(*, system: AlertSystem, data: Any) -> Silence:
    silence = _parse_silence(data)
    silence.id = uuid.uuid4().hex[:12]
    silence.created_at = system.clock()
    await system.store.put_silence(silence)
    return silence


async def update_silence(*, system: AlertSystem, silence_id: str, data: Any) -> Silence:
    existing = await get_silence(system=system, silence_id=silence_id)
    silence = _parse_silence(data)
    silence.id = existing.id
    silence.created_at = existing.created_at
    await system.store.put_silence(silence)
    return silence


async def delete_silence(*, system: AlertSystem, silence_id: str) -> None:
    if not await system.store.delete_silence(silence_id):
        raise NotFoundError(f"no silence {silence_id!r}")


# Deliveries and channels.


async def list_deliveries(
    *, system: AlertSystem, channel: str | None, status: str | None, limit: int
) -> list[Delivery]:
    found = await system.store.deliveries(channel=channel, status=status, limit=limit)
    return [msgspec.structs.replace(delivery, notification=None) for delivery in found]


async def list_channels(*, system: AlertSystem) -> list[ChannelView]:
    statuses = {status.name: status for status in await system.store.channel_statuses()}
    runtime = system.runtime_channels
    declared = runtime.declared if runtime is not None else frozenset(system.channels)
    views = []
    for name, channel in sorted(system.channels.items()):
        status = statuses.get(name) or ChannelStatus(name=name)
        views.append(
            ChannelView(
                name=name,
                type=channel.type,
                enabled=status.enabled,
                disabled_reason=status.disabled_reason,
                disabled_at=status.disabled_at,
                consecutive_failures=status.consecutive_failures,
                last_success_at=status.last_success_at,
                last_failure_at=status.last_failure_at,
                last_error=status.last_error,
                config=channel.describe(),
                source="config" if name in declared else "api",
                read_only=name in declared,
            )
        )
    return views


async def set_channel_enabled(
    *, system: AlertSystem, name: str, enabled: bool, reason: str = ""
) -> ChannelView:
    if name not in system.channels:
        raise NotFoundError(f"no channel {name!r}")
    await system.store.set_channel_enabled(
        name, enabled=enabled, reason=reason or "disabled through the API", now=system.clock()
    )
    views = await list_channels(system=system)
    return next(view for view in views if view.name == name)


async def send_test(*, system: AlertSystem, name: str) -> Delivery:
    """Send a test notification to one channel now (waits for the outcome)."""
    channel = system.channels.get(name)
    if channel is None:
        raise NotFoundError(f"no channel {name!r}")
    return await system.dispatcher.deliver(channel, sample_notification(now=system.clock()))


def sample_notification(*, now: float) -> Notification:
    """The notification a channel test sends."""
    notice = AlertNotice(
        id="test:test",
        rule_id="test",
        rule_name="Test notification",
        status="firing",
        reason="firing",
        severity="info",
        service="modelmonitor",
        summary="A test notification sent from the ModelMonitor API.",
        starts_at=now,
    )
    return Notification(
        id=uuid.uuid4().hex,
        service="modelmonitor",
        status="firing",
        created_at=now,
        alerts=[notice],
    )
