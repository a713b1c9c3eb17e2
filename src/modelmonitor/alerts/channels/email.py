"""Email over SMTP (stdlib ``smtplib`` in a worker thread): STARTTLS, implicit TLS or
plain, with optional login. One message per notification, plain text."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal

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

__all__ = ["EmailChannel", "EmailConfig", "render_email"]


class EmailConfig(ChannelConfig):
    type: str = "email"
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    #: ``starttls`` (port 587), ``tls`` (implicit TLS, port 465) or ``none``.
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[ModelMonitor]"
    #: Verify the server's certificate (turn off only for test servers).
    verify_tls: bool = True

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"{address!r} is not an email address")
        return value


def render_email(notification: Notification, config: EmailConfig) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{config.subject_prefix} {notification.title}".strip()
    message["From"] = config.from_address
    message["To"] = ", ".join(config.to)
    message["Date"] = formatdate(notification.created_at, usegmt=True)
    message["Message-ID"] = make_msgid(idstring=notification.id)
    message.set_content(plain_text(notification))
    return message


@register_channel
class EmailChannel(NotificationChannel[EmailConfig]):
    type = "email"
    config_model = EmailConfig

    async def send(self, notification: Notification) -> SendResult:
        message = render_email(notification, self.config)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._send_sync, message), self.config.timeout_seconds + 1
            )
        except TimeoutError:
            raise DeliveryError("SMTP timed out", retryable=True) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retryable=not permanent
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from None
        return SendResult(detail=f"sent to {len(self.config.to)} recipient(s)")

    def _send_sync(self, message: EmailMessage) -> None:
        config = self.config
        context = ssl.create_default_context()
        if not config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        timeout = config.timeout_seconds
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=context)
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
            smtp.send_message(message)

    def describe(self) -> dict[str, Any]:
        shown = self.config.model_dump(mode="json", by_alias=True)
        shown["password"] = "***" if self.config.password is not None else None
        return shown
