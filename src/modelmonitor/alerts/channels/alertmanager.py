"""Prometheus Alertmanager: ModelMonitor's alerts posted to Alertmanager's v2 API.

Each alert becomes one Alertmanager alert: labels ``alertname`` (the rule's name),
``service``, ``rule``, ``rule_id``, ``severity``, ``route`` and the rule's own labels;
annotations ``summary``, ``description``, ``metric``, ``value`` and ``threshold``;
``startsAt`` when it started firing; ``generatorURL`` the dashboard's alerts page.

Alertmanager resolves an alert on its own once ``endsAt`` passes, so (like Prometheus)
firing alerts are posted again every ``resend_seconds`` with ``endsAt`` a few resend
intervals ahead (:meth:`AlertmanagerChannel.refresh`, driven by the engine); a resolved
alert is posted once with ``endsAt`` set to when it resolved.

With ``respect_silences: true`` the silences active in Alertmanager also hold back
ModelMonitor's own notifications (every channel), read from ``/api/v2/silences``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from pydantic import Field, SecretStr, field_validator, model_validator

from modelmonitor.alerts.channels.base import (
    ChannelConfig,
    DeliveryError,
    HttpChannel,
    SendResult,
    register_channel,
)
from modelmonitor.alerts.channels.netguard import check_target
from modelmonitor.alerts.models import AlertNotice, Notification
from modelmonitor.alerts.silences import Matcher, Silence
from modelmonitor.types import Clock

__all__ = [
    "AlertmanagerChannel",
    "AlertmanagerConfig",
    "alertmanager_alert",
    "alertmanager_labels",
    "parse_silence",
]

log = logging.getLogger("modelmonitor.alerts")

_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


class AlertmanagerConfig(ChannelConfig):
    type: str = "alertmanager"
    #: Alertmanager's base URL, e.g. ``http://alertmanager:9093`` (``/api/v2/...`` is added).
    url: str
    #: The dashboard's base URL for ``generatorURL`` (e.g. ``https://monitor.example.com``).
    dashboard_url: str = ""
    #: Re-post firing alerts this often (Prometheus: ``resend_delay``, 1m).
    resend_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    #: ``endsAt`` of a firing alert is this far ahead; 0 = four resend intervals.
    ends_after_seconds: float = Field(default=0.0, ge=0.0, le=86400.0)
    #: Let silences active in Alertmanager hold back ModelMonitor's notifications too.
    respect_silences: bool = False
    #: How often Alertmanager's silences are read when ``respect_silences`` is on.
    silences_refresh_seconds: float = Field(default=15.0, ge=1.0, le=3600.0)
    #: Added to every request (e.g. a tenant header for Mimir/Cortex).
    headers: dict[str, str] = Field(default_factory=dict)
    basic_auth_username: str | None = None
    basic_auth_password: SecretStr | None = None
    bearer_token: SecretStr | None = None
    #: Alertmanager usually runs on a private network: set this to allow such targets
    #: (SSRF guard, as for webhooks).
    allow_private: bool = False

    @field_validator("url", "dashboard_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_auth(self) -> AlertmanagerConfig:
        if self.bearer_token is not None and self.basic_auth_username is not None:
            raise ValueError("set bearer_token or basic_auth_username, not both")
        return self

    @property
    def ends_after(self) -> float:
        return self.ends_after_seconds or 4 * self.resend_seconds


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def alertmanager_labels(labels: dict[str, str], rule_name: str) -> dict[str, str]:
    """An alert's labels as Alertmanager takes them: valid names, plus ``alertname``."""
    shown = {_LABEL_NAME.sub("_", name): value for name, value in labels.items() if value != ""}
    shown["alertname"] = rule_name
    return shown


def _description(notice: AlertNotice) -> str:
    if notice.metric is None:
        return notice.summary
    value = "n/a" if notice.value is None else f"{notice.value:.6g}"
    if notice.kind == "anomaly":
        return f"anomaly in {notice.metric} (value {value}) on {notice.service}"
    return (
        f"{notice.metric} {notice.comparator} {notice.threshold:g} over {notice.window} "
        f"on {notice.service} (value {value})"
    )


def alertmanager_alert(
    notice: AlertNotice, *, now: float, config: AlertmanagerConfig
) -> dict[str, Any]:
    """One ``postableAlert`` of the v2 API for a notice."""
    annotations = {"summary": notice.summary or notice.rule_name, "description": ""}
    annotations["description"] = _description(notice)
    if notice.metric is not None:
        annotations["metric"] = notice.metric
    if notice.value is not None:
        annotations["value"] = f"{notice.value:.6g}"
    if notice.threshold is not None:
        annotations["threshold"] = f"{notice.threshold:g}"
    if notice.status == "resolved":
        ends = notice.ends_at if notice.ends_at is not None else now
    else:
        ends = now + config.ends_after
    alert: dict[str, Any] = {
        "labels": alertmanager_labels(notice.labels, notice.rule_name),
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": _rfc3339(notice.starts_at if notice.starts_at is not None else now),
        "endsAt": _rfc3339(ends),
    }
    if config.dashboard_url:
        alert["generatorURL"] = (
            f"{config.dashboard_url}/alerts?service={quote(notice.service, safe='')}"
            f"&rule={quote(notice.rule_id, safe='')}"
        )
    return alert


def parse_silence(data: dict[str, Any]) -> Silence | None:
    """An Alertmanager ``gettableSilence`` as a ModelMonitor silence (None when expired
    or unreadable). Matchers compare against :func:`alertmanager_labels`."""
    if data.get("status", {}).get("state") == "expired":
        return None
    try:
        matchers = [
            Matcher(
                name=matcher["name"],
                value=matcher["value"],
                op=("=~" if matcher.get("isRegex") else "=")
                if matcher.get("isEqual", True)
                else ("!~" if matcher.get("isRegex") else "!="),
            )
            for matcher in data["matchers"]
        ]
        return Silence(
            id=f"alertmanager:{data.get('id', '')}",
            matchers=matchers,
            starts_at=_parse_time(data["startsAt"]),
            ends_at=_parse_time(data["endsAt"]),
            comment=str(data.get("comment", ""))[:1000],
            created_by=str(data.get("createdBy", ""))[:200],
        )
    except (KeyError, TypeError, ValueError):
        return None


@register_channel
class AlertmanagerChannel(HttpChannel[AlertmanagerConfig]):
    type = "alertmanager"
    config_model = AlertmanagerConfig

    def __init__(self, name: str, config: AlertmanagerConfig, *, clock: Clock = time.time) -> None:
        super().__init__(name, config)
        self._clock = clock
        self._silences: list[Silence] = []
        self._silences_read_at = 0.0
        self._silences_task: asyncio.Task[list[Silence]] | None = None
        self.last_refresh_at = 0.0

    def _headers(self) -> dict[str, str]:
        config = self.config
        headers = {**config.headers, "Content-Type": "application/json"}
        if config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        elif config.basic_auth_username is not None:
            password = config.basic_auth_password
            plain = (
                f"{config.basic_auth_username}:{password.get_secret_value() if password else ''}"
            )
            headers["Authorization"] = f"Basic {base64.b64encode(plain.encode()).decode()}"
        return headers

    async def _post_alerts(self, notices: list[AlertNotice]) -> SendResult:
        url = f"{self.config.url}/api/v2/alerts"
        await check_target(url, allow_private=self.config.allow_private)
        now = self._clock()
        body = msgspec.json.encode(
            [alertmanager_alert(notice, now=now, config=self.config) for notice in notices]
        )
        return await self.post(url, body, self._headers())

    async def send(self, notification: Notification) -> SendResult:
        result = await self._post_alerts(notification.alerts)
        result.detail = f"{len(notification.alerts)} alert(s) posted"
        return result

    def refresh_due(self, now: float) -> bool:
        return now - self.last_refresh_at >= self.config.resend_seconds

    async def refresh(self, notices: list[AlertNotice]) -> None:
        """Post the alerts still firing again, so Alertmanager keeps them active."""
        self.last_refresh_at = self._clock()
        if not notices:
            return
        try:
            await self._post_alerts(notices)
        except DeliveryError as exc:
            log.warning("re-posting firing alerts to %r failed: %s", self.name, exc)

    def silences(self, now: float) -> list[Silence]:
        """Alertmanager's active silences as last read; reads them again in the
        background when older than ``silences_refresh_seconds`` (never waits)."""
        if not self.config.respect_silences:
            return []
        stale = now - self._silences_read_at >= self.config.silences_refresh_seconds
        if stale and (self._silences_task is None or self._silences_task.done()):
            self._silences_task = asyncio.create_task(
                self.read_silences(), name=f"alertmanager-silences-{self.name}"
            )
        return [silence for silence in self._silences if silence.active(now)]

    async def read_silences(self) -> list[Silence]:
        """Read the silences from Alertmanager now (keeps the last ones on failure)."""
        url = f"{self.config.url}/api/v2/silences"
        try:
            await check_target(url, allow_private=self.config.allow_private)
            response = await self.client.get(url, headers=self._headers())
            response.raise_for_status()
            found = [parse_silence(item) for item in response.json()]
        except (DeliveryError, httpx.HTTPError, ValueError) as exc:
            log.warning("reading silences from %r failed: %s", self.name, exc)
            return self._silences
        self._silences = [silence for silence in found if silence is not None]
        self._silences_read_at = self._clock()
        return self._silences

    async def close(self) -> None:
        if self._silences_task is not None:
            self._silences_task.cancel()
            await asyncio.gather(self._silences_task, return_exceptions=True)
            self._silences_task = None
        await super().close()

    def describe(self) -> dict[str, Any]:
        shown = super().describe()
        for secret in ("basic_auth_password", "bearer_token"):
            shown[secret] = "***" if getattr(self.config, secret) is not None else None
        return shown
