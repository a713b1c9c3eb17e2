"""Apprise channels against local receivers (ntfy, JSON, form, Mattermost): delivery,
the delivery log, retries to the failed URLs only, auto-disable, masked credentials."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from modelmonitor.alerts.channels import ChannelConfigError, build_channels
from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.models import Notification
from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from tests.alert_helpers import Receiver, sample_notification

SECRET = "s3cr3t-Token-42"


def hostport(receiver: Receiver) -> str:
    return str(urlsplit(receiver.url).netloc)


def notification(status: str = "firing") -> Notification:
    return sample_notification(status, notification_id=f"n-{status}")


async def test_one_channel_reaches_ntfy_json_form_and_mattermost(
    receiver: Receiver, store: SQLiteAlertStore
) -> None:
    where = hostport(receiver)
    channels = build_channels(
        {
            "chat": {
                "type": "apprise",
                "urls": [
                    f"ntfy://{where}/ml-alerts",
                    f"json://{where}/json-hook",
                    f"form://{where}/form-hook",
                    f"mmost://{where}/{SECRET}",
                ],
            }
        }
    )
    dispatcher = Dispatcher(channels=channels, store=store)
    delivery = await dispatcher.deliver(channels["chat"], notification())
    assert delivery.status == "delivered", delivery.error
    assert delivery.channel_type == "apprise"
    assert len(receiver.requests) == 4
    by_path = dict(zip(receiver.paths, (body for _, body in receiver.requests), strict=True))

    ntfy = by_path["/"]  # ntfy posts JSON with the topic to the server's root
    assert json.loads(ntfy)["topic"] == "ml-alerts"
    assert "High error rate" in json.loads(ntfy)["message"]

    posted = json.loads(by_path["/json-hook"])
    assert posted["title"] == "[ModelMonitor] [FIRING] iris: High error rate"
    assert posted["type"] == "failure"  # critical and firing
    assert "condition: error_rate > 0.05 over 1m" in posted["message"]

    form = parse_qs(by_path["/form-hook"].decode())
    assert form["title"] == ["[ModelMonitor] [FIRING] iris: High error rate"]

    mattermost = json.loads(by_path[f"/hooks/{SECRET}"])
    assert "High error rate" in mattermost["text"]

    receiver.requests.clear()
    receiver.paths.clear()
    await dispatcher.deliver(channels["chat"], notification("resolved"))
    posted = json.loads(
        next(
            body
            for path, (_, body) in zip(receiver.paths, receiver.requests, strict=True)
            if path == "/json-hook"
        )
    )
    assert posted["type"] == "success"
    assert posted["title"] == "[ModelMonitor] [RESOLVED] iris: High error rate"
    await dispatcher.stop()


async def test_retries_go_only_to_the_urls_that_failed_and_are_logged(
    receiver: Receiver, store: SQLiteAlertStore
) -> None:
    where = hostport(receiver)
    channels = build_channels(
        {
            "chat": {
                "type": "apprise",
                "urls": [f"json://{where}/ok", f"json://{where}/flaky"],
                "backoff_seconds": 0,
            }
        }
    )
    # The first URL is answered 200; the second 503 twice, then 200.
    receiver.statuses = [200, 503, 503, 200]
    dispatcher = Dispatcher(channels=channels, store=store)
    delivery = await dispatcher.deliver(channels["chat"], notification())
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert receiver.paths == ["/ok", "/flaky", "/flaky", "/flaky"]
    [logged] = await store.deliveries()
    assert (logged.channel, logged.status, logged.attempts) == ("chat", "delivered", 3)
    await dispatcher.stop()


async def test_failing_apprise_channel_is_disabled_and_credentials_never_shown(
    receiver: Receiver, store: SQLiteAlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    where = hostport(receiver)
    url = f"json://alerts:{SECRET}@{where}/{SECRET}/hook?+X-Api-Key={SECRET}"
    channels = build_channels(
        {
            "pager": {
                "type": "apprise",
                "urls": url,
                "max_attempts": 2,
                "backoff_seconds": 0,
                "disable_after": 2,
            }
        }
    )
    receiver.statuses = [500] * 10
    dispatcher = Dispatcher(channels=channels, store=store)
    with caplog.at_level(logging.DEBUG):
        first = await dispatcher.deliver(channels["pager"], notification())
        second = await dispatcher.deliver(channels["pager"], notification())
        third = await dispatcher.deliver(channels["pager"], notification())
    assert (first.status, first.attempts) == ("failed", 2)
    assert second.status == "failed"
    assert third.status == "skipped"  # disabled after two failed deliveries
    assert len(receiver.requests) == 4
    [status] = await store.channel_statuses()
    assert not status.enabled and "2 consecutive failed deliveries" in status.disabled_reason
    # The receiver did get the credentials; nothing we show, store or log does.
    headers, _ = receiver.requests[0]
    assert headers["x-api-key"] == SECRET
    shown = channels["pager"].describe()
    assert shown["urls"] == [f"json://***@{where}/***?***"]
    assert first.error.startswith(f"1 of 1 URL(s) failed: json://***@{where}/***?***")
    stored = [d.error for d in await store.deliveries()] + [status.last_error]
    # (The test's own receiver logs the path it was called on: that is not ours.)
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith("uvicorn")]
    assert any(r.name == "urllib3.connectionpool" for r in caplog.records)
    assert any("json://***@" in message for message in logged)
    for text in [json.dumps(shown), *stored, *logged]:
        assert SECRET not in text
    await dispatcher.stop()


def test_unknown_apprise_urls_are_refused_without_echoing_them() -> None:
    with pytest.raises(ChannelConfigError) as error:
        build_channels({"chat": {"type": "apprise", "urls": [f"nosuch://{SECRET}@host/x"]}})
    message = str(error.value)
    assert message.startswith("notification_channels.chat.urls: entry 0 is not a URL Apprise")
    assert SECRET not in message
    with pytest.raises(ChannelConfigError, match=r"chat\.urls: List should have at least 1"):
        build_channels({"chat": {"type": "apprise", "urls": []}})
