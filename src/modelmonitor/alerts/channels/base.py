"""The notification-channel plugin contract.

A channel type is a subclass of :class:`NotificationChannel` with a ``type`` name
and a pydantic ``Config`` model (validated from the ``notification_channels``
setting), registered with :func:`register_channel`. ``send`` delivers one
notification once; retries, backoff, the delivery log and auto-disable are the
dispatcher's job (:mod:`modelmonitor.alerts.dispatch`), the same for every type.
"""

from __future__ import annotations

import abc
import builtins
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from modelmonitor.alerts.models import AlertNotice, Notification
from modelmonitor.alerts.silences import Silence

__all__ = [
    "CHANNEL_TYPES",
    "ChannelConfig",
    "DeliveryError",
    "NotificationChannel",
    "SendResult",
    "mask_url_credentials",
    "register_channel",
]


def mask_url_credentials(url: str) -> str:
    """``url`` with its user, password and query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class ChannelConfig(BaseModel):
    """Settings every channel type has."""

    model_config = ConfigDict(extra="forbid")

    type: str
    #: Attempts per notification (1 = no retry).
    max_attempts: int = Field(default=5, ge=1, le=20)
    #: Per-attempt timeout.
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: First retry delay; doubles each attempt, with full jitter, up to ``backoff_max_seconds``.
    backoff_seconds: float = Field(default=1.0, ge=0, le=300)
    backoff_max_seconds: float = Field(default=60.0, ge=0, le=3600)
    #: Disable the channel after this many consecutive failed deliveries (0 = never).
    disable_after: int = Field(default=10, ge=0)
    #: Notifications waiting for this channel; more are dropped (and logged).
    queue_size: int = Field(default=1000, ge=1, le=100_000)


class SendResult(BaseModel):
    http_status: int | None = None
    detail: str = ""


class DeliveryError(Exception):
    """One failed attempt. ``retryable`` errors (timeouts, 5xx, 429, connection
    problems) are tried again; the others (4xx, refused targets) are not."""

    def __init__(self, message: str, *, retryable: bool, http_status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.http_status = http_status


ConfigT = TypeVar("ConfigT", bound=ChannelConfig)


class NotificationChannel(abc.ABC, Generic[ConfigT]):
    """One configured channel (a name and its validated config)."""

    #: The ``type`` value in the configuration.
    type: ClassVar[str]
    config_model: ClassVar[builtins.type[ChannelConfig]]

    def __init__(self, name: str, config: ConfigT) -> None:
        self.name = name
        self.config = config

    @abc.abstractmethod
    async def send(self, notification: Notification) -> SendResult:
        """Deliver once; raise :class:`DeliveryError` on failure."""

    async def close(self) -> None:
        """Release connections (HTTP clients)."""
        return None

    def refresh_due(self, now: float) -> bool:
        """Whether this channel wants the alerts still firing again (:meth:`refresh`);
        receivers that expire alerts on their own (Alertmanager) say yes periodically."""
        return False

    async def refresh(self, notices: list[AlertNotice]) -> None:
        """Re-post the alerts still firing (not a notification: not logged per call)."""
        return None

    def silences(self, now: float) -> list[Silence]:
        """Silences this channel's receiver holds that ModelMonitor should respect too;
        matched against the alert's labels plus ``alertname`` (the rule's name).
        Must not wait on the network: return what was last read."""
        return []

    def describe(self) -> dict[str, Any]:
        """The config without secrets, for ``GET /api/v1/alerts/channels``: secret
        fields and custom header values (``Authorization: Bearer ...``) are masked."""
        shown = self.config.model_dump(mode="json")
        headers = shown.get("headers")
        if isinstance(headers, dict):
            shown["headers"] = dict.fromkeys(headers, "***")
        for key, value in shown.items():
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                shown[key] = mask_url_credentials(value)
        return shown


CHANNEL_TYPES: dict[str, type[NotificationChannel[Any]]] = {}

ChannelT = TypeVar("ChannelT", bound=type[NotificationChannel[Any]])


def register_channel(cls: ChannelT) -> ChannelT:
    """Class decorator: make a channel type available to the configuration."""
    CHANNEL_TYPES[cls.type] = cls
    return cls


class HttpChannel(NotificationChannel[ConfigT]):
    """Shared by channels that POST JSON: one client per channel, no redirects."""

    def __init__(self, name: str, config: ConfigT) -> None:
        super().__init__(name, config)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.config.timeout_seconds, follow_redirects=False, trust_env=False
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timed out: {type(exc).__name__}", retryable=True) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(http_status=status)
        text = response.text[:200]
        raise DeliveryError(
            f"HTTP {status}: {text}",
            retryable=status >= 500 or status in (408, 429),
            http_status=status,
        )
