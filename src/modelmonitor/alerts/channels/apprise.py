"""Apprise: one channel type for the many services Apprise speaks (PagerDuty, Opsgenie,
Microsoft Teams, Discord, Telegram, Mattermost, ntfy, generic JSON/form, ...).

Each entry of ``urls`` is an Apprise URL (``pagerduty://...``, ``ntfy://...``). The
dispatcher gives Apprise channels the same delivery log, retries and auto-disable as
the others; a retry goes only to the URLs that failed. The URLs carry credentials:
they are shown masked, and every message Apprise logs or returns is scrubbed of them.
Apprise is imported only when such a channel is configured.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import OrderedDict
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator

from modelmonitor.alerts.channels.base import (
    ChannelConfig,
    DeliveryError,
    NotificationChannel,
    SendResult,
    register_channel,
)
from modelmonitor.alerts.channels.text import plain_text
from modelmonitor.alerts.models import Notification

__all__ = ["AppriseChannel", "AppriseConfig", "mask_url", "url_secrets"]

_HOSTNAME = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-fA-F:]+\]|.*\..*)$")
#: How many notifications remember which of their URLs already got them (for retries).
_REMEMBERED = 256


def _apprise() -> Any:
    try:
        # Apprise's plugins import modules deprecated in newer Pythons (imghdr): not
        # ours to fix, and not worth a warning at every start.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import apprise
            from apprise.manager_plugins import NotificationManager

            # Plugins load on first use; load them here, under this filter.
            NotificationManager().load_modules()  # type: ignore[no-untyped-call]
    except ImportError as exc:  # pragma: no cover - apprise is in the production extra
        raise ValueError("the apprise package is not installed (pip install apprise)") from exc
    return apprise


def url_secrets(url: str) -> list[str]:
    """The parts of an Apprise URL that may be credentials: user, password, path
    segments, query values, and the host when it is not a host name (a webhook id)."""
    parts = urlsplit(url)
    found = [parts.username or "", parts.password or ""]
    host = parts.hostname or ""
    if not _HOSTNAME.match(host):
        found.append(host)
    found.extend(unquote(segment) for segment in parts.path.split("/"))
    found.extend(value for _, value in parse_qsl(parts.query))
    # Longest first, so a secret containing another is replaced whole.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def mask_url(url: str) -> str:
    """``scheme://host/***`` with every credential-like part replaced."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown_host = host if _HOSTNAME.match(host) else "***"
    if parts.port:
        shown_host += f":{parts.port}"
    userinfo = "***@" if parts.username or parts.password else ""
    path = "/***" if parts.path.strip("/") else ""
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{userinfo}{shown_host}{path}{query}"


class _ScrubFilter(logging.Filter):
    """On the loggers Apprise sends through: no registered credential reaches a handler."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        ordered = sorted(self.secrets, key=len, reverse=True)
        record.msg = scrub(record.getMessage(), ordered)
        record.args = None
        return True


_FILTER = _ScrubFilter()
_SCRUBBED_LOGGERS = ("apprise", "urllib3.connectionpool", "requests_oauthlib")


class AppriseConfig(ChannelConfig):
    type: str = "apprise"
    #: Apprise URLs (https://github.com/caronc/apprise/wiki); each is a secret.
    urls: list[SecretStr] = Field(min_length=1, max_length=50)
    title_prefix: str = "[ModelMonitor]"
    #: How the body is marked up for services that render it.
    body_format: Literal["text", "markdown"] = "text"

    @field_validator("urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, value: list[SecretStr]) -> list[SecretStr]:
        module = _apprise()
        for index, url in enumerate(value):
            plain = url.get_secret_value()
            # Never echo the URL itself: it carries credentials.
            if module.Apprise.instantiate(plain, suppress_exceptions=True) is None:
                scheme = urlsplit(plain).scheme or "(none)"
                raise ValueError(
                    f"entry {index} is not a URL Apprise understands (scheme {scheme!r})"
                )
        return value


@register_channel
class AppriseChannel(NotificationChannel[AppriseConfig]):
    type = "apprise"
    config_model = AppriseConfig

    def __init__(self, name: str, config: AppriseConfig) -> None:
        super().__init__(name, config)
        module = _apprise()
        self._module = module
        self._urls = [url.get_secret_value() for url in config.urls]
        self._secrets = sorted(
            {s for url in self._urls for s in url_secrets(url)}, key=len, reverse=True
        )
        _FILTER.secrets.update(self._secrets)
        # Apprise's own messages, and urllib3's debug lines (they name the request path,
        # where several services put their token).
        for logger_name in _SCRUBBED_LOGGERS:
            logger = logging.getLogger(logger_name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
        #: notification id -> indexes of the URLs that already got it.
        self._delivered: OrderedDict[str, set[int]] = OrderedDict()

    def _notify_type(self, notification: Notification) -> Any:
        types = self._module.NotifyType
        if notification.status == "resolved":
            return types.SUCCESS
        if any(notice.severity == "critical" for notice in notification.alerts):
            return types.FAILURE
        return types.WARNING

    async def send(self, notification: Notification) -> SendResult:
        module = self._module
        done = self._delivered.setdefault(notification.id, set())
        self._delivered.move_to_end(notification.id)
        while len(self._delivered) > _REMEMBERED:
            self._delivered.popitem(last=False)
        title = f"{self.config.title_prefix} {notification.title}".strip()
        body = plain_text(notification)
        body_format = (
            module.NotifyFormat.MARKDOWN
            if self.config.body_format == "markdown"
            else module.NotifyFormat.TEXT
        )
        failed: list[str] = []
        for index, url in enumerate(self._urls):
            if index in done:
                continue
            sender = module.Apprise()
            sender.add(url)
            with module.LogCapture(level=logging.WARNING) as output:
                ok = await sender.async_notify(
                    body=body,
                    title=title,
                    notify_type=self._notify_type(notification),
                    body_format=body_format,
                )
            if ok:
                done.add(index)
                continue
            reason = " ".join(line.split(" - ", 2)[-1] for line in output.getvalue().splitlines())
            failed.append(f"{mask_url(url)}: {scrub(reason.strip(), self._secrets) or 'failed'}")
        if failed:
            raise DeliveryError(
                f"{len(failed)} of {len(self._urls)} URL(s) failed: " + "; ".join(failed),
                retryable=True,
            )
        return SendResult(detail=f"sent to {len(self._urls)} URL(s)")

    def describe(self) -> dict[str, Any]:
        shown = self.config.model_dump(mode="json")
        shown["urls"] = [mask_url(url) for url in self._urls]
        return shown
