"""Notification channels change at run time: through the API, into the store, and into a
separate dispatching process (a worker) without a restart; secrets never come back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelmonitor.alerts.system import AlertSystem
from modelmonitor.live.memory import MemoryLiveState
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from tests.alert_helpers import Receiver, batch, events_for_second, serve

SECRETS = ("s3cr3t-query", "hook-secret-42", "tok-abc-123", "pw-user-9")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serve(found.app()) as url:
        found.url = url
        yield found


async def eventually(check: Any, seconds: float = 15.0) -> Any:
    last: Any = None
    for _ in range(int(seconds / 0.05)):
        last = check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached in {seconds} s: {last!r}")


def hook(receiver: Receiver, path: str) -> dict[str, Any]:
    return {
        "url": f"http://pw-user-9:pw-user-9@{receiver.url.removeprefix('http://')}{path}"
        "?token=s3cr3t-query",
        "secret": "hook-secret-42",
        "headers": {"X-Api-Key": "tok-abc-123"},
        "allow_private": True,
    }


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked: {text[:300]}"


async def fire(live: MemoryLiveState, *, errors: int, count: int = 10) -> None:
    now = time.time()
    for second in range(-2, 2):
        await live.record(
            batch(events_for_second(now + second, count=count, errors=errors), sent_at=now)
        )


async def test_channels_added_changed_and_removed_through_the_api_reach_a_worker(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        api="127.0.0.1:0",
        target="http://127.0.0.1:1",
        target_name="svc",
        alert_evaluation_interval_seconds=0.05,
        notification_channels={
            "declared": {
                "type": "webhook",
                "url": f"{receiver.url}/declared",
                "allow_private": True,
            }
        },
    )
    runtime = Runtime(settings, parts=Parts(proxy=False, worker=False, api=True))
    await runtime.start()
    live = MemoryLiveState()
    worker = AlertSystem.from_settings(settings, live=live)  # another dispatching process
    await worker.start(evaluate=True)
    answers: list[str] = []
    try:
        assert runtime.api_url is not None
        async with httpx.AsyncClient(base_url=f"{runtime.api_url}/api/v1") as api:

            async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                response = await api.request(method, path, **kwargs)
                answers.append(response.text)
                return response

            body = {"name": "pager", "type": "webhook", "settings": hook(receiver, "/one")}
            created = await call("POST", "/alerts/channels", json=body)
            assert created.status_code == 201, created.text
            view = created.json()
            assert (view["source"], view["read_only"], view["type"]) == ("api", False, "webhook")
            assert view["config"]["url"].endswith("/one?token=***")
            listed = (await call("GET", "/alerts/channels")).json()["channels"]
            assert {(c["name"], c["source"], c["read_only"]) for c in listed} == {
                ("declared", "config", True),
                ("pager", "api", False),
            }
            # Rules can name the stored channel.
            rule = {
                "name": "errors",
                "service": "svc",
                "metric": "error_rate",
                "threshold": 0.5,
                "window": "10s",
                "for": 0,
                "min_requests": 5,
                "repeat_interval": 0,
                "channels": ["pager"],
            }
            assert (await call("POST", "/alerts/rules", json=rule)).status_code == 201

            # The worker picks the channel up from the store, and the next alert reaches it.
            await eventually(lambda: "pager" in worker.channels)
            await fire(live, errors=10)
            await receiver.wait_for(1)
            assert receiver.paths == ["/one"]
            headers, payload = receiver.requests[0]
            assert headers["x-api-key"] == "tok-abc-123"
            assert json.loads(payload)["status"] == "firing"

            # Changed: the resolution goes to the new target.
            changed = await call(
                "PUT",
                "/alerts/channels/pager",
                json={"type": "webhook", "settings": hook(receiver, "/two")},
            )
            assert changed.status_code == 200, changed.text
            await eventually(lambda: "/two" in worker.channels["pager"].config.url)
            await fire(live, errors=0, count=40)
            await receiver.wait_for(2)
            assert receiver.paths == ["/one", "/two"]
            assert json.loads(receiver.requests[1][1])["status"] == "resolved"

            # Deleted: the next alert goes nowhere.
            assert (await call("DELETE", "/alerts/channels/pager")).status_code == 204
            await eventually(lambda: "pager" not in worker.channels)
            await fire(live, errors=10)
            for _ in range(300):
                states = await worker.store.list_states()
                if any(state.status == "firing" for state in states):
                    break
                await asyncio.sleep(0.05)
            assert any(state.status == "firing" for state in states)
            await asyncio.sleep(1.0)
            assert receiver.paths == ["/one", "/two"]
            assert (await call("DELETE", "/alerts/channels/pager")).status_code == 404

            # Declared channels are read-only.
            for method, path, payload in (
                ("PUT", "/alerts/channels/declared", {"type": "webhook", "settings": {}}),
                ("DELETE", "/alerts/channels/declared", None),
                ("POST", "/alerts/channels", {**body, "name": "declared"}),
            ):
                refused = await call(method, path, json=payload)
                assert refused.status_code == 409, (method, path, refused.text)
                assert "configuration file" in refused.json()["detail"]

            # Bad input names the field.
            bad = {"name": "x", "type": "webhook", "settings": {"url": "ftp://nowhere"}}
            wrong = await call("POST", "/alerts/channels", json=bad)
            assert wrong.status_code == 422
            assert wrong.json()["detail"][0]["loc"] == ["body", "settings", "url"]
            unknown = await call("POST", "/alerts/channels", json={**bad, "type": "pigeon"})
            assert unknown.json()["detail"][0]["loc"] == ["body", "type"]
            missing = await call("POST", "/alerts/channels", json={"name": "x", "type": "slack"})
            assert missing.json()["detail"][0]["loc"] == ["body", "settings", "webhook_url"]

            # A dry run sends now and stores nothing.
            dry = await call(
                "POST",
                "/alerts/channels/dry-run",
                json={"type": "webhook", "settings": hook(receiver, "/dry")},
            )
            assert dry.status_code == 200 and dry.json()["delivered"] is True
            assert receiver.paths[-1] == "/dry"
            receiver.statuses.append(503)
            failed = await call(
                "POST",
                "/alerts/channels/dry-run",
                json={"type": "webhook", "settings": hook(receiver, "/dry")},
            )
            assert failed.json()["delivered"] is False and failed.json()["http_status"] == 503
            names = [c["name"] for c in (await call("GET", "/alerts/channels")).json()["channels"]]
            assert names == ["declared"]
            deliveries = (await call("GET", "/alerts/deliveries")).json()["deliveries"]
            assert {d["channel"] for d in deliveries} <= {"pager"}

            # No answer and no audit entry holds a secret; every change was audited.
            audit = await call("GET", "/audit")
            actions = {(e["action"], e["outcome"]) for e in audit.json()["entries"]}
            assert {("add_channel", "ok 201"), ("replace_channel", "ok 200")} <= actions
            assert ("delete_channel", "ok 204") in actions
            assert_no_secret(audit.text)
            for text in answers:
                assert_no_secret(text)
    finally:
        await worker.stop()
        await runtime.stop()
