"""Slack incoming webhook with a Block Kit message (plus a plain ``text`` fallback)."""

from __future__ import annotations

from typing import Any

import msgspec
from pydantic import SecretStr, field_validator

from modelmonitor.alerts.channels.base import (
    ChannelConfig,
    HttpChannel,
    SendResult,
    register_channel,
)
from modelmonitor.alerts.channels.netguard import check_target
from modelmonitor.alerts.channels.text import when
from modelmonitor.alerts.models import AlertNotice, Notification

__all__ = ["SlackChannel", "SlackConfig", "slack_payload"]

_ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":information_source:",
}


class SlackConfig(ChannelConfig):
    type: str = "slack"
    #: The incoming-webhook URL (https://hooks.slack.com/services/...); a secret.
    webhook_url: SecretStr
    #: Allow targets on loopback/private/link-local addresses (SSRF guard).
    allow_private: bool = False

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("webhook_url must start with http:// or https://")
        return value


def _alert_line(notice: AlertNotice) -> str:
    icon = ":white_check_mark:" if notice.status == "resolved" else _ICONS.get(notice.severity, "")
    condition = ""
    if notice.metric is not None and notice.kind == "anomaly":
        condition = f" - anomaly in `{notice.metric}`"
    elif notice.metric is not None and notice.threshold is not None:
        value = "n/a" if notice.value is None else f"{notice.value:.4g}"
        condition = (
            f" - `{notice.metric} {notice.comparator} {notice.threshold:g}` "
            f"over {notice.window} (now {value})"
        )
    route = f" `{notice.route}`" if notice.route else ""
    since = when(notice.ends_at if notice.status == "resolved" else notice.starts_at)
    verb = "resolved" if notice.status == "resolved" else "since"
    line = f"{icon} *{notice.rule_name}* [{notice.severity}]{route}{condition} ({verb} {since})"
    if notice.summary:
        line += f"\n{notice.summary}"
    return line


def slack_payload(notification: Notification) -> dict[str, Any]:
    title = notification.title
    return {
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            *(
                {"type": "section", "text": {"type": "mrkdwn", "text": _alert_line(n)[:3000]}}
                for n in notification.alerts[:45]
            ),
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"ModelMonitor · service `{notification.service}` · "
                        f"notification {notification.id}",
                    }
                ],
            },
        ],
    }


@register_channel
class SlackChannel(HttpChannel[SlackConfig]):
    type = "slack"
    config_model = SlackConfig

    async def send(self, notification: Notification) -> SendResult:
        url = self.config.webhook_url.get_secret_value()
        await check_target(url, allow_private=self.config.allow_private)
        body = msgspec.json.encode(slack_payload(notification))
        return await self.post(url, body, {"Content-Type": "application/json"})

    def describe(self) -> dict[str, Any]:
        shown = super().describe()
        shown["webhook_url"] = "***"
        return shown
