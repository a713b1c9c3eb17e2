"""End to end: a failing model API behind the real proxy and pipeline fires a signed
webhook and an email, then resolves; two evaluators on one store notify once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller

from modelmonitor import ModelAPIMonitor
from modelmonitor.alerts.store import AlertStore
from modelmonitor.alerts.store.postgres import PostgresAlertStore
from modelmonitor.alerts.store.sqlite import SQLiteAlertStore
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.demo.model_api import create_demo_app
from modelmonitor.live.memory import MemoryLiveState
from modelmonitor.settings import load_settings
from tests.alert_helpers import Receiver, batch, events_for_second, serve

SECRET = "e2e-secret"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"

    async def wait_for(self, count: int, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} emails"
            await asyncio.sleep(0.05)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serve(found.app()) as url:
        found.url = url
        yield found


@pytest.fixture
def inbox() -> Any:
    found = Inbox()
    port = free_port()
    controller = Controller(found, hostname="127.0.0.1", port=port)
    controller.start()
    found.port = port  # type: ignore[attr-defined]
    yield found
    controller.stop()


def verified(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    timestamp = headers["x-modelmonitor-timestamp"]
    assert abs(time.time() - int(timestamp)) < 300
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(f"sha256={digest.hexdigest()}", headers["x-modelmonitor-signature"])
    payload: dict[str, Any] = json.loads(body)
    return payload


async def traffic(url: str, count: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post("/predict", json={"model": "iris", "features": [5.1, 3.5, 1.4, 0.2]})
                for _ in range(count)
            )
        )
    return [response.status_code for response in responses]


async def firing_in_prometheus_exposition(api_url: str, service: str, channel: str) -> None:
    """The alert shows on /metrics: firing, evaluated, and its notification counted."""
    async with httpx.AsyncClient(base_url=api_url) as client:
        for _ in range(100):
            lines = (await client.get("/metrics")).text.splitlines()
            if (
                f'modelmonitor_notifications_total{{channel="{channel}",outcome="delivered"}} 1.0'
                in (lines)
            ):
                break
            await asyncio.sleep(0.1)
    assert f'modelmonitor_alerts_firing{{service="{service}"}} 1.0' in lines
    assert f'modelmonitor_notifications_total{{channel="{channel}",outcome="delivered"}} 1.0' in (
        lines
    )
    evaluations = next(
        line for line in lines if line.startswith("modelmonitor_alert_evaluations_total ")
    )
    assert float(evaluations.split()[1]) > 0


async def test_failing_model_api_fires_and_resolves_through_the_proxy(
    tmp_path: Path, receiver: Receiver, inbox: Any
) -> None:
    async with serve(create_demo_app(seed=7, base_latency_ms=2.0)) as model_url:
        config = tmp_path / "modelmonitor.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "alert_evaluation_interval_seconds": 0.2,
                    "notification_channels": {
                        "webhook": {
                            "url": f"{receiver.url}/alerts",
                            "secret": SECRET,
                            "allow_private": True,
                        },
                        "email": {
                            "host": "127.0.0.1",
                            "port": inbox.port,
                            "security": "none",
                            "from": "monitor@example.com",
                            "to": ["oncall@example.com"],
                        },
                    },
                    "alert_rules": [
                        {
                            "name": "model failing",
                            "service": "iris-api",
                            "metric": "error_rate",
                            "threshold": 0.5,
                            "window": "10s",
                            "for": "2s",
                            "min_requests": 5,
                            "severity": "critical",
                        }
                    ],
                }
            )
        )
        monitor = ModelAPIMonitor(
            {
                "target_url": model_url,
                "service_name": "iris-api",
                "monitoring_host": "127.0.0.1",
                "monitoring_port": 0,
                "api_port": 0,
                "data_dir": str(tmp_path),
                "config_file": str(config),
            }
        )
        made = await monitor.configure(
            {"thresholds": {"response_time_ms": 1000}, "alert_channels": ["webhook"]}
        )
        assert made[0]["metric"] == "latency_p95"
        await monitor.start_monitoring()
        try:
            async with httpx.AsyncClient(base_url=model_url) as admin:
                await admin.post("/admin/chaos", json={"error_rate": 1.0})
            assert set(await traffic(monitor.proxy_url, 40)) == {500}
            await receiver.wait_for(1, seconds=20)
            headers, body = receiver.requests[0]
            firing = verified(headers, body)
            assert firing["version"] == "1" and firing["status"] == "firing"
            assert firing["service"] == "iris-api"
            (alert,) = firing["alerts"]
            assert alert["rule_name"] == "model failing" and alert["value"] == 1.0
            await inbox.wait_for(1)
            await firing_in_prometheus_exposition(monitor.api_url, "iris-api", "webhook")
            email = message_from_bytes(inbox.messages[0])
            assert email["Subject"] == "[ModelMonitor] [FIRING] iris-api: model failing"
            assert "error_rate > 0.5 over 10s" in email.get_payload(decode=True).decode()

            api = f"{monitor.api_url}/api/v1/alerts"
            async with httpx.AsyncClient() as client:
                current = (await client.get(api)).json()["alerts"]
                assert [(a["rule_name"], a["state"]) for a in current] == [
                    ("model failing", "firing")
                ]

                async with httpx.AsyncClient(base_url=model_url) as admin:
                    await admin.post("/admin/chaos", json={"error_rate": 0.0})
                for _ in range(3):
                    await traffic(monitor.proxy_url, 60)
                await receiver.wait_for(2, seconds=20)
                resolved = verified(*receiver.requests[1])
                assert resolved["status"] == "resolved"
                assert resolved["alerts"][0]["ends_at"] is not None
                await inbox.wait_for(2)
                assert "[RESOLVED]" in message_from_bytes(inbox.messages[1])["Subject"]

                history = (
                    await client.get(f"{api}/history", params={"service": "iris-api"})
                ).json()["history"]
                assert [h["status"] for h in reversed(history)] == [
                    "pending",
                    "firing",
                    "resolved",
                ]
                for _ in range(100):  # outcomes are stored just after the receiver answers
                    deliveries = (await client.get(f"{api}/deliveries")).json()["deliveries"]
                    if all(d["status"] != "pending" for d in deliveries):
                        break
                    await asyncio.sleep(0.05)
                assert sorted(d["channel"] for d in deliveries) == [
                    "email",
                    "email",
                    "webhook",
                    "webhook",
                ]
                assert {d["status"] for d in deliveries} == {"delivered"}
                assert len(receiver.requests) == 2  # one per state change
                health = (await client.get(f"{monitor.api_url}/health")).json()
                assert health["components"]["alerts"] == {"status": "ok", "detail": "evaluating"}
        finally:
            await monitor.stop_monitoring()


async def _two_evaluators(store_factory: Any, receiver: Receiver, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        alert_evaluation_interval_seconds=0.05,
        notification_channels={
            "webhook": {"url": f"{receiver.url}/a", "secret": SECRET, "allow_private": True}
        },
        alert_rules=[
            {
                "name": "errors",
                "service": "svc",
                "metric": "error_rate",
                "threshold": 0.5,
                "window": "10s",
                "for": 0,
                "min_requests": 5,
                "repeat_interval": 0,
            }
        ],
    )
    live = MemoryLiveState()  # shared, as redis:// would be
    systems = [
        AlertSystem.from_settings(settings, live=live, store=store_factory()) for _ in range(2)
    ]
    stores: list[AlertStore] = [system.store for system in systems]
    for store in stores:
        await store.connect()
    for system in systems:
        await system.start(evaluate=True)
    try:
        now = time.time()
        for second in range(3):
            await live.record(batch(events_for_second(now - 3 + second, errors=10), sent_at=now))
        await receiver.wait_for(1)
        await asyncio.sleep(1.5)  # both keep evaluating; nobody may send it again
        now = time.time()
        for second in range(-2, 2):
            await live.record(
                batch(events_for_second(now + second, count=40, errors=0), sent_at=now)
            )
        await receiver.wait_for(2)
        await asyncio.sleep(1.5)
        statuses = [verified(*request)["status"] for request in receiver.requests]
        assert statuses == ["firing", "resolved"]
        rounds = [system.engine.last_round for system in systems]
        assert all(r is not None and r.at > now for r in rounds)
    finally:
        for system in systems:
            await system.stop()
        for store in stores:
            await store.close()


async def test_two_evaluators_sqlite_notify_once(receiver: Receiver, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    await _two_evaluators(lambda: SQLiteAlertStore(url), receiver, tmp_path)


@pytest.mark.services
async def test_two_evaluators_postgres_notify_once(receiver: Receiver, tmp_path: Path) -> None:
    schema = f"alerts_test_{uuid.uuid4().hex[:8]}"
    try:
        await _two_evaluators(lambda: PostgresAlertStore(PG_URL, schema=schema), receiver, tmp_path)
    finally:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]

        connection = await asyncpg.connect(PG_URL)
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()
