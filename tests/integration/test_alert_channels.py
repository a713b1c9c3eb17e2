"""Channels against real receivers: signed webhooks, Slack, SMTP; retries, SSRF, disable."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import ssl
import subprocess
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from modelmonitor.alerts.channels import build_channels
from modelmonitor.alerts.channels.base import DeliveryError
from modelmonitor.alerts.channels.netguard import check_target, is_public
from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.models import Delivery, Notification
from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from tests.alert_helpers import FakeChannel, Receiver, sample_notification, serve


def notification(status: str = "firing") -> Notification:
    return sample_notification(status)


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    """What a receiver does (the snippet in docs/alerting.md)."""
    timestamp = headers["x-modelmonitor-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(
        f"sha256={expected.hexdigest()}", headers["x-modelmonitor-signature"]
    )


async def test_webhook_is_signed_and_versioned(receiver: Receiver, store: SQLiteAlertStore) -> None:
    channels = build_channels(
        {
            "hook": {
                "type": "webhook",
                "url": f"{receiver.url}/hook",
                "secret": "s3cret",
                "allow_private": True,
            }
        }
    )
    dispatcher = Dispatcher(channels=channels, store=store)
    delivery = await dispatcher.deliver(channels["hook"], notification())
    assert delivery.status == "delivered" and delivery.http_status == 200
    headers, body = receiver.requests[0]
    assert verify("s3cret", headers, body)
    assert not verify("wrong", headers, body)
    assert headers["x-modelmonitor-delivery"] == "n-1"
    payload = json.loads(body)
    assert payload["version"] == "1"
    assert payload["status"] == "firing"
    assert payload["alerts"][0]["rule_name"] == "High error rate"
    assert payload["alerts"][0]["labels"] == {"team": "ml"}
    await dispatcher.stop()


async def test_ssrf_guard_refuses_private_targets_by_default(
    receiver: Receiver, store: SQLiteAlertStore
) -> None:
    channels = build_channels(
        {
            "hook": {"type": "webhook", "url": f"{receiver.url}/hook"},
            "slack": {"webhook_url": f"{receiver.url}/slack"},
        }
    )
    dispatcher = Dispatcher(channels=channels, store=store)
    for name in ("hook", "slack"):
        delivery = await dispatcher.deliver(channels[name], notification())
        assert delivery.status == "refused"
        assert delivery.attempts == 1  # refusals are not retried
        assert "127.0.0.1" in delivery.error
    assert receiver.requests == []
    for address in ("10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"):
        assert not is_public(address)
    assert is_public("93.184.216.34")
    with pytest.raises(DeliveryError, match="refused"):
        await check_target("http://localhost:1/x", allow_private=False)
    await dispatcher.stop()


async def test_slack_block_kit_payload(receiver: Receiver, store: SQLiteAlertStore) -> None:
    channels = build_channels(
        {"slack": {"webhook_url": f"{receiver.url}/services/T/B/X", "allow_private": True}}
    )
    dispatcher = Dispatcher(channels=channels, store=store)
    delivery = await dispatcher.deliver(channels["slack"], notification("resolved"))
    assert delivery.status == "delivered"
    payload = json.loads(receiver.requests[0][1])
    assert payload["text"] == "[RESOLVED] iris: High error rate"
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "context"]
    assert "error_rate > 0.05" in payload["blocks"][1]["text"]["text"]
    await dispatcher.stop()


async def test_retries_5xx_with_backoff_then_succeeds(
    receiver: Receiver, store: SQLiteAlertStore
) -> None:
    receiver.statuses = [503, 500]
    channels = build_channels(
        {
            "hook": {
                "type": "webhook",
                "url": f"{receiver.url}/h",
                "allow_private": True,
                "backoff_seconds": 0.5,
            }
        }
    )
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    dispatcher = Dispatcher(channels=channels, store=store, sleep=sleep)
    delivery = await dispatcher.deliver(channels["hook"], notification())
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert len(delays) == 2 and 0 <= delays[0] <= 0.5 and 0 <= delays[1] <= 1.0
    assert len(receiver.requests) == 3
    # 4xx is not retried.
    receiver.statuses = [400]
    delivery = await dispatcher.deliver(channels["hook"], notification())
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.http_status == 400
    logged = await store.deliveries()
    assert [d.status for d in logged] == ["failed", "delivered"]
    await dispatcher.stop()


async def test_timeouts_are_retried(store: SQLiteAlertStore) -> None:
    async def hang() -> None:
        await asyncio.sleep(1.0)

    app = FastAPI()
    app.post("/slow")(hang)
    async with serve(app) as url:
        channels = build_channels(
            {
                "hook": {
                    "type": "webhook",
                    "url": f"{url}/slow",
                    "allow_private": True,
                    "timeout_seconds": 0.2,
                    "max_attempts": 2,
                    "backoff_seconds": 0,
                }
            }
        )
        dispatcher = Dispatcher(channels=channels, store=store)
        delivery = await dispatcher.deliver(channels["hook"], notification())
        await dispatcher.stop()
    assert delivery.status == "failed" and delivery.attempts == 2
    assert "timed out" in delivery.error


async def test_channel_disabled_after_consecutive_failures_and_reenabled(
    store: SQLiteAlertStore,
) -> None:
    channel = FakeChannel("flaky", fail=100, max_attempts=1, disable_after=3)
    dispatcher = Dispatcher(channels={"flaky": channel}, store=store)
    for _ in range(3):
        await dispatcher.deliver(channel, notification())
    (status,) = await store.channel_statuses()
    assert not status.enabled and status.consecutive_failures == 3
    assert "3 consecutive failed deliveries" in status.disabled_reason
    skipped = await dispatcher.deliver(channel, notification())
    assert skipped.status == "skipped" and channel.attempts == 3
    await store.set_channel_enabled("flaky", enabled=True, reason="", now=time.time())
    channel.fail = 0
    assert (await dispatcher.deliver(channel, notification())).status == "delivered"
    (status,) = await store.channel_statuses()
    assert status.enabled and status.consecutive_failures == 0
    await dispatcher.stop()


async def wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def test_slow_channel_does_not_delay_others(store: SQLiteAlertStore) -> None:
    slow = FakeChannel("slow", delay=5.0)
    fast = FakeChannel("fast")
    dispatcher = Dispatcher(channels={"slow": slow, "fast": fast}, store=store)
    await dispatcher.start()
    started = time.perf_counter()
    for _ in range(3):
        assert await dispatcher.enqueue("slow", notification())
        assert await dispatcher.enqueue("fast", notification())
    assert time.perf_counter() - started < 2.0  # enqueue never waits for a channel
    await wait_until(lambda: len(fast.received) == 3, seconds=4.0)
    assert slow.received == []
    await dispatcher.stop()
    pending = await store.deliveries(channel="slow", status="pending")
    assert len(pending) == 3  # unsent at shutdown: still in the outbox


async def test_full_queue_defers_to_the_outbox(store: SQLiteAlertStore) -> None:
    slow = FakeChannel("slow", delay=0.1, queue_size=1)
    dispatcher = Dispatcher(channels={"slow": slow}, store=store, recover_every_seconds=0.05)
    await dispatcher.start()
    for _ in range(4):
        await dispatcher.enqueue("slow", notification())
    await wait_until(lambda: len(slow.received) == 4, seconds=20.0)
    await dispatcher.idle()  # the last outcome is stored after the send returns
    await dispatcher.stop()
    assert [d.status for d in await store.deliveries()] == ["delivered"] * 4


async def test_pending_deliveries_survive_a_crash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    stores = [SQLiteAlertStore(url) for _ in range(3)]
    for each in stores:
        await each.connect()
    now = time.time()
    # What a process that died mid-retry leaves behind, and one a live process holds.
    for notification_id, claimed_until in (("orphan", now - 1), ("held", now + 600)):
        await stores[0].add_delivery(
            Delivery(
                notification_id=notification_id,
                channel="ops",
                channel_type="fake",
                service="iris",
                status="pending",
                created_at=now,
                claimed_until=claimed_until,
                notification=msgspec.structs.replace(notification(), id=notification_id),
            )
        )
    channels = [FakeChannel("ops"), FakeChannel("ops")]
    dispatchers = [
        Dispatcher(channels={"ops": channel}, store=each, recover_every_seconds=0.02)
        for channel, each in zip(channels, stores[1:], strict=True)
    ]
    for dispatcher in dispatchers:
        await dispatcher.start()
    try:
        await wait_until(lambda: sum(len(c.received) for c in channels) >= 1, seconds=20.0)
        await asyncio.sleep(0.2)  # both keep recovering; nobody sends it twice
        for dispatcher in dispatchers:
            await dispatcher.idle()
    finally:
        for dispatcher in dispatchers:
            await dispatcher.stop()
    received = [n.id for channel in channels for n in channel.received]
    assert received == ["orphan"]
    log = {d.notification_id: d.status for d in await stores[0].deliveries()}
    assert log == {"orphan": "delivered", "held": "pending"}
    for each in stores:
        await each.close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


async def test_email_arrives_at_a_real_smtp_server(store: SQLiteAlertStore) -> None:
    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        channels = build_channels(
            {
                "email": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from": "monitor@example.com",
                    "to": ["oncall@example.com", "ml@example.com"],
                }
            }
        )
        dispatcher = Dispatcher(channels=channels, store=store)
        delivery = await dispatcher.deliver(channels["email"], notification())
        await dispatcher.stop()
    finally:
        controller.stop()
    assert delivery.status == "delivered", delivery.error
    ((sender, recipients, content),) = inbox.messages
    assert sender == "monitor@example.com"
    assert recipients == ["oncall@example.com", "ml@example.com"]
    message = message_from_bytes(content)
    assert message["Subject"] == "[ModelMonitor] [FIRING] iris: High error rate"
    body = message.get_payload(decode=True).decode()
    assert "FIRING: High error rate [critical]" in body
    assert "condition: error_rate > 0.05 over 1m" in body


def test_channel_config_errors_name_the_field() -> None:
    from modelmonitor.alerts.channels import ChannelConfigError

    with pytest.raises(ChannelConfigError) as caught:
        build_channels(
            {
                "ops": {"type": "email", "host": "smtp", "from": "a@b", "to": ["nobody"]},
                "hook": {"type": "webhook", "url": "ftp://x"},
                "pager": {"type": "pagerduty"},
            }
        )
    text = str(caught.value)
    assert "notification_channels.ops.to" in text
    assert "notification_channels.hook.url" in text
    assert "notification_channels.pager.type: unknown channel type 'pagerduty'" in text


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# aiosmtpd's own deprecation notice and its warning about AUTH without required TLS
# (it cannot tell that an implicit-TLS socket is encrypted) concern the test server.
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_tls_with_login(
    store: SQLiteAlertStore, tls_context: ssl.SSLContext, security: str
) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"pw")

    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options: dict[str, Any] = {"authenticator": authenticator, "auth_required": True}
    if security == "starttls":
        options.update(tls_context=tls_context, require_starttls=True)
    else:
        # The server cannot tell that an implicit-TLS socket is encrypted.
        options.update(ssl_context=tls_context, auth_require_tls=False)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        base = {
            "host": "127.0.0.1",
            "port": port,
            "security": security,
            "verify_tls": False,
            "from": "monitor@example.com",
            "to": ["oncall@example.com"],
            "max_attempts": 1,
        }
        channels = build_channels(
            {"good": {"type": "email", **base, "username": "bot", "password": "pw"}}
        )
        dispatcher = Dispatcher(channels=channels, store=store)
        delivered = await dispatcher.deliver(channels["good"], notification())
        await dispatcher.stop()
    finally:
        controller.stop()
    assert delivered.status == "delivered", delivered.error
    assert logins == [(b"bot", b"pw")]
    assert len(inbox.messages) == 1


async def test_a_cancelled_operation_never_leaves_the_database_locked(tmp_path: Path) -> None:
    """Cancelled while its BEGIN waits for another process's lock: the BEGIN still
    completes on the store's thread, and must be rolled back there, or every other
    process is locked out."""
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    first, second = SQLiteAlertStore(url), SQLiteAlertStore(url)
    await first.connect()
    await second.connect()
    try:

        async def hold_the_lock() -> None:
            async with second.session():
                await asyncio.sleep(0.3)

        holder = asyncio.create_task(hold_the_lock())
        await asyncio.sleep(0.05)
        cancelled = asyncio.create_task(first.deliveries())  # BEGIN waits for the lock
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        await holder
        async with asyncio.timeout(3):  # SQLite's busy timeout is 10 s
            await second.add_delivery(
                Delivery(
                    notification_id="after",
                    channel="ops",
                    channel_type="fake",
                    service="iris",
                    status="delivered",
                    created_at=time.time(),
                )
            )
            assert [d.notification_id for d in await first.deliveries()] == ["after"]
    finally:
        await first.close()
        await second.close()
