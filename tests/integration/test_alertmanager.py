"""The Alertmanager channel against Debian's real Alertmanager: an alert appears, is
re-posted while firing, resolves, and a silence set in Alertmanager is respected."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelmonitor.alerts.channels import AlertmanagerChannel, build_channels
from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.engine import AlertEngine
from modelmonitor.alerts.models import Notification
from modelmonitor.alerts.rules import parse_rule
from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from modelmonitor.live.memory import MemoryLiveState
from tests.alert_helpers import FakeChannel, Receiver, SimClock, feed, sample_notification, serve

BINARY = "prometheus-alertmanager"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Alertmanager:
    def __init__(self, url: str, receiver: Receiver) -> None:
        self.url = url
        self.receiver = receiver
        self.http = httpx.AsyncClient(base_url=url, timeout=5)

    async def alerts(self) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v2/alerts")
        response.raise_for_status()
        return list(response.json())

    async def wait_for_alerts(self, count: int, seconds: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while True:
            found = await self.alerts()
            if len(found) == count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.1)

    def webhooks(self) -> list[dict[str, Any]]:
        """What Alertmanager sent on to its receiver (our webhook receiver)."""
        return [json.loads(body) for _, body in self.receiver.requests]

    async def silence(self, **matchers: str) -> str:
        now = datetime.now(UTC)
        response = await self.http.post(
            "/api/v2/silences",
            json={
                "matchers": [
                    {"name": k, "value": v, "isRegex": False, "isEqual": True}
                    for k, v in matchers.items()
                ],
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(hours=1)).isoformat(),
                "createdBy": "test",
                "comment": "maintenance",
            },
        )
        response.raise_for_status()
        return str(response.json()["silenceID"])


@pytest.fixture
async def alertmanager(tmp_path: Path) -> AsyncIterator[Alertmanager]:
    if shutil.which(BINARY) is None:
        pytest.fail(f"{BINARY} is missing: run scripts/ensure-alertmanager.sh (make test does)")
    receiver = Receiver()
    async with serve(receiver.app()) as hook_url:
        receiver.url = hook_url
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: [alertname, service]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            f"      - url: {hook_url}/am\n"
            "        send_resolved: true\n"
        )
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        manager = Alertmanager(f"http://127.0.0.1:{port}", receiver)
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await manager.http.get("/-/ready")).status_code == 200:
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError("Alertmanager did not start")
                await asyncio.sleep(0.1)
            yield manager
        finally:
            await manager.http.aclose()
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)


def _notification(status: str, started: float) -> Notification:
    labels = {"service": "iris", "rule": "High error rate", "severity": "critical", "team": "ml"}
    return sample_notification(status, labels=labels, started=started)


async def _wait(predicate: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)


async def test_alert_appears_and_resolves(
    alertmanager: Alertmanager, store: SQLiteAlertStore
) -> None:
    channels = build_channels(
        {
            "am": {
                "type": "alertmanager",
                "url": alertmanager.url,
                "dashboard_url": "https://monitor.example.com/",
                "allow_private": True,
            }
        }
    )
    dispatcher = Dispatcher(channels=channels, store=store)
    started = time.time() - 30
    delivery = await dispatcher.deliver(channels["am"], _notification("firing", started))
    assert delivery.status == "delivered" and delivery.http_status == 200
    [alert] = await alertmanager.wait_for_alerts(1)
    assert alert["labels"] == {
        "alertname": "High error rate",
        "service": "iris",
        "rule": "High error rate",
        "severity": "critical",
        "team": "ml",
    }
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["description"] == "error_rate > 0.05 over 1m on iris (value 0.5)"
    assert alert["generatorURL"] == "https://monitor.example.com/alerts?service=iris&rule=r1"
    starts = datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")).timestamp()
    assert abs(starts - started) < 0.01
    # Alertmanager routes it on to its own receivers.
    await _wait(lambda: any(hook["status"] == "firing" for hook in alertmanager.webhooks()))

    delivery = await dispatcher.deliver(channels["am"], _notification("resolved", started))
    assert delivery.status == "delivered"
    assert await alertmanager.wait_for_alerts(0) == []
    await _wait(lambda: any(hook["status"] == "resolved" for hook in alertmanager.webhooks()))
    resolved = next(hook for hook in alertmanager.webhooks() if hook["status"] == "resolved")
    assert resolved["alerts"][0]["labels"]["alertname"] == "High error rate"
    await dispatcher.stop()


async def _engine(
    store: SQLiteAlertStore, channels: dict[str, Any], clock: SimClock
) -> tuple[AlertEngine, Dispatcher, MemoryLiveState]:
    live = MemoryLiveState(clock=clock)
    dispatcher = Dispatcher(channels=channels, store=store, clock=clock)
    await dispatcher.start()
    engine = AlertEngine(
        store=store, live=live, dispatcher=dispatcher, clock=clock, configured_services=["svc"]
    )
    rule = parse_rule(
        {
            "name": "svc errors",
            "metric": "error_rate",
            "threshold": 0.5,
            "window": "10s",
            "min_requests": 5,
            "repeat_interval": 0,
        }
    )
    rule.id = "r1"
    await store.put_rule(rule)
    return engine, dispatcher, live


async def test_engine_reposts_firing_alerts_so_alertmanager_keeps_them(
    alertmanager: Alertmanager, store: SQLiteAlertStore
) -> None:
    clock = SimClock(time.time())
    am = AlertmanagerChannel(
        "am",
        AlertmanagerChannel.config_model.model_validate(
            {
                "type": "alertmanager",
                "url": alertmanager.url,
                "allow_private": True,
                "resend_seconds": 30,
            }
        ),  # type: ignore[arg-type]
        clock=clock,
    )
    engine, dispatcher, live = await _engine(store, {"am": am}, clock)
    await feed(live, clock, 5, errors=10)
    report = await engine.evaluate()
    assert [notice.reason for notice in report.notices] == ["firing"]
    await dispatcher.idle()
    [alert] = await alertmanager.wait_for_alerts(1)
    first_end = alert["endsAt"]
    assert alert["labels"]["alertname"] == "svc errors"

    # Still firing 60 s later, with no state change and no repeat notification: the
    # engine re-posts it with a later endsAt, as Prometheus does every resend_delay.
    await feed(live, clock, 5, errors=10)
    clock.advance(55)
    await feed(live, clock, 5, errors=10)
    report = await engine.evaluate()
    assert report.notices == []
    await _wait(lambda: am.last_refresh_at == clock.now)

    async def extended() -> bool:
        return [a["endsAt"] for a in await alertmanager.alerts()] != [first_end]

    deadline = time.monotonic() + 10
    while not await extended():
        assert time.monotonic() < deadline, "the firing alert was not re-posted"
        await asyncio.sleep(0.1)
    [alert] = await alertmanager.alerts()
    assert alert["endsAt"] > first_end
    await dispatcher.stop()


async def test_silence_set_in_alertmanager_is_respected(
    alertmanager: Alertmanager, store: SQLiteAlertStore
) -> None:
    clock = SimClock(time.time())
    channels = build_channels(
        {
            "am": {
                "type": "alertmanager",
                "url": alertmanager.url,
                "allow_private": True,
                "respect_silences": True,
            }
        }
    )
    am = channels["am"]
    assert isinstance(am, AlertmanagerChannel)
    pager = FakeChannel("pager")
    engine, dispatcher, live = await _engine(store, {"am": am, "pager": pager}, clock)
    silence_id = await alertmanager.silence(alertname="svc errors")
    assert [s.id for s in await am.read_silences()] == [f"alertmanager:{silence_id}"]

    await feed(live, clock, 5, errors=10)
    report = await engine.evaluate()
    assert report.notices == []  # firing, but silenced: nothing sent anywhere
    await dispatcher.idle()
    assert pager.received == []
    assert await alertmanager.alerts() == []
    history = await store.history()
    assert [(entry.status, entry.silenced) for entry in history] == [("firing", True)]

    # The silence expires in Alertmanager: the firing notification goes out then.
    response = await alertmanager.http.delete(f"/api/v2/silence/{silence_id}")
    assert response.status_code == 200
    await am.read_silences()
    await feed(live, clock, 5, errors=10)
    report = await engine.evaluate()
    assert [notice.reason for notice in report.notices] == ["firing"]
    await dispatcher.idle()
    assert len(pager.received) == 1
    assert len(await alertmanager.wait_for_alerts(1)) == 1
    await dispatcher.stop()


async def test_silences_are_ignored_unless_configured(
    alertmanager: Alertmanager, store: SQLiteAlertStore
) -> None:
    clock = SimClock(time.time())
    channels = build_channels(
        {"am": {"type": "alertmanager", "url": alertmanager.url, "allow_private": True}}
    )
    pager = FakeChannel("pager")
    engine, dispatcher, live = await _engine(store, {**channels, "pager": pager}, clock)
    await alertmanager.silence(alertname="svc errors")
    await feed(live, clock, 5, errors=10)
    report = await engine.evaluate()
    assert [notice.reason for notice in report.notices] == ["firing"]
    await dispatcher.idle()
    assert len(pager.received) == 1
    # Alertmanager holds it, silenced there.
    [alert] = await alertmanager.wait_for_alerts(1)
    assert alert["status"]["state"] == "suppressed"
    await dispatcher.stop()
