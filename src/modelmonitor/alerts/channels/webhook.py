"""Generic signed webhook: a versioned JSON body, HMAC-SHA256 signed.

Headers:
- ``X-ModelMonitor-Timestamp``: Unix seconds when the attempt was made
- ``X-ModelMonitor-Signature``: ``sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``
- ``X-ModelMonitor-Delivery``: the notification id (the same on retries: deduplicate on it)

Receivers recompute the HMAC over the raw body and reject stale timestamps
(docs/alerting.md has a verification snippet).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import msgspec
from pydantic import Field, SecretStr, field_validator

from modelmonitor.alerts.channels.base import (
    ChannelConfig,
    HttpChannel,
    SendResult,
    register_channel,
)
from modelmonitor.alerts.channels.netguard import check_target
from modelmonitor.alerts.models import AlertNotice, Notification
from modelmonitor.types import Clock

__all__ = ["WEBHOOK_VERSION", "WebhookBody", "WebhookChannel", "WebhookConfig", "sign"]

WEBHOOK_VERSION = "1"


class WebhookConfig(ChannelConfig):
    type: str = "webhook"
    url: str
    #: Shared secret for the signature; without one the body is sent unsigned.
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    #: Allow targets on loopback/private/link-local addresses (SSRF guard).
    allow_private: bool = False

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


class WebhookBody(msgspec.Struct, kw_only=True):
    """The JSON body, version 1. New fields may be added; existing ones keep their meaning."""

    version: str
    id: str
    service: str
    status: str
    created_at: float
    alerts: list[AlertNotice]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-ModelMonitor-Signature`` value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def encode_body(notification: Notification) -> bytes:
    return msgspec.json.encode(
        WebhookBody(
            version=WEBHOOK_VERSION,
            id=notification.id,
            service=notification.service,
            status=notification.status,
            created_at=notification.created_at,
            alerts=notification.alerts,
        )
    )


@register_channel
class WebhookChannel(HttpChannel[WebhookConfig]):
    type = "webhook"
    config_model = WebhookConfig

    def __init__(self, name: str, config: WebhookConfig, *, clock: Clock = time.time) -> None:
        super().__init__(name, config)
        self._clock = clock

    async def send(self, notification: Notification) -> SendResult:
        config = self.config
        await check_target(config.url, allow_private=config.allow_private)
        body = encode_body(notification)
        timestamp = str(int(self._clock()))
        headers = {
            **config.headers,
            "Content-Type": "application/json",
            "User-Agent": "ModelMonitor-Webhook/1",
            "X-ModelMonitor-Timestamp": timestamp,
            "X-ModelMonitor-Delivery": notification.id,
        }
        if config.secret is not None:
            headers["X-ModelMonitor-Signature"] = sign(
                config.secret.get_secret_value(), timestamp, body
            )
        return await self.post(config.url, body, headers)

    def describe(self) -> dict[str, Any]:
        shown = super().describe()
        shown["secret"] = "***" if self.config.secret is not None else None
        return shown
