"""Notification channels: the plugin base class and the built-in types.

``build_channels`` turns the ``notification_channels`` setting (name -> config
with a ``type``; the type defaults to the name, e.g. ``email``, ``slack``,
``webhook``, ``alertmanager``, ``apprise``) into channel objects, raising
:class:`ChannelConfigError` naming the field on a bad value.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from modelmonitor.alerts.channels.alertmanager import AlertmanagerChannel
from modelmonitor.alerts.channels.apprise import AppriseChannel
from modelmonitor.alerts.channels.base import (
    CHANNEL_TYPES,
    ChannelConfig,
    DeliveryError,
    NotificationChannel,
    SendResult,
    register_channel,
)
from modelmonitor.alerts.channels.email import EmailChannel
from modelmonitor.alerts.channels.slack import SlackChannel
from modelmonitor.alerts.channels.webhook import WebhookChannel

__all__ = [
    "CHANNEL_TYPES",
    "AlertmanagerChannel",
    "AppriseChannel",
    "ChannelConfig",
    "ChannelConfigError",
    "DeliveryError",
    "EmailChannel",
    "NotificationChannel",
    "SendResult",
    "SlackChannel",
    "WebhookChannel",
    "build_channels",
    "register_channel",
    "resolve_channels",
    "unknown_channels",
]


class ChannelConfigError(ValueError):
    """A bad ``notification_channels`` entry, one line per problem."""


def build_channels(config: dict[str, dict[str, Any]]) -> dict[str, NotificationChannel[Any]]:
    channels: dict[str, NotificationChannel[Any]] = {}
    problems: list[str] = []
    for name, raw in config.items():
        where = f"notification_channels.{name}"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        data = dict(raw)
        kind = data.setdefault("type", name)
        cls = CHANNEL_TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            problems.append(
                f"{where}.type: unknown channel type {kind!r}; known: {', '.join(CHANNEL_TYPES)}"
            )
            continue
        try:
            channels[name] = cls(name, cls.config_model.model_validate(data))
        except ValidationError as exc:
            for problem in exc.errors():
                field = ".".join(str(part) for part in problem["loc"])
                message = problem["msg"].removeprefix("Value error, ")
                if problem["type"] == "extra_forbidden":
                    message = "unknown setting"
                problems.append(f"{where}.{field}: {message}")
    if problems:
        raise ChannelConfigError("\n".join(problems))
    return channels


def resolve_channels(requested: list[str] | None, types: dict[str, str]) -> list[str]:
    """Channel names for a rule's ``channels``: ``None`` is every channel; each entry
    is a channel name, or a type (``email``) standing for every channel of that type.
    Unknown entries are skipped (rules are validated against the channels on save)."""
    if requested is None:
        return sorted(types)
    chosen: list[str] = []
    for entry in requested:
        matches = [entry] if entry in types else sorted(n for n, t in types.items() if t == entry)
        chosen.extend(name for name in matches if name not in chosen)
    return chosen


def unknown_channels(requested: list[str] | None, types: dict[str, str]) -> list[str]:
    """Entries of a rule's ``channels`` that name no channel and no channel type."""
    known = set(types) | set(types.values())
    return [entry for entry in requested or [] if entry not in known]
