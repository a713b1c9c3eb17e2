"""``/api/v1/alerts``: rule CRUD, 422s naming the field, the configure short form,
silences, channels; rules and silences survive a restart."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import ConfigError, load_settings
from tests.alert_helpers import Receiver, serve


def make_settings(tmp_path: Path, receiver_url: str, **extra: Any) -> Any:
    return load_settings(
        data_dir=tmp_path,
        api="127.0.0.1:0",
        target="http://127.0.0.1:1",
        target_name="iris",
        notification_channels={
            "webhook": {"url": f"{receiver_url}/hook", "secret": "k", "allow_private": True},
            "oncall": {
                "type": "email",
                "host": "127.0.0.1",
                "port": 1,
                "from": "m@example.com",
                "to": ["o@example.com"],
                "password": "hunter2",
                "username": "u",
            },
        },
        alert_rules=[
            {
                "name": "iris errors",
                "service": "iris",
                "metric": "error_rate",
                "threshold": 0.2,
                "for": "2m",
                "channels": ["webhook"],
            }
        ],
        **extra,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serve(found.app()) as url:
        found.url = url
        yield found


@pytest.fixture
async def runtime(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        make_settings(tmp_path, receiver.url), parts=Parts(proxy=False, worker=True, api=True)
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    assert runtime.api_url is not None
    async with httpx.AsyncClient(base_url=f"{runtime.api_url}/api/v1/alerts") as client:
        yield client


RULE = {
    "name": "slow predictions",
    "service": "iris",
    "route": "/v1/models/{name}/predict",
    "metric": "latency_p99",
    "comparator": ">=",
    "threshold": 0.8,
    "window": "5m",
    "for": "1m",
    "keep_firing_for": "30s",
    "severity": "critical",
    "labels": {"team": "ml"},
    "channels": ["webhook", "email"],
    "repeat_interval": "1h",
    "min_requests": 20,
}


async def test_rule_crud(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/rules")).json()["rules"]
    assert [(r["name"], r["source"], r["id"]) for r in listed] == [
        ("iris errors", "config", "config-iris-errors")
    ]
    created = await client.post("/rules", json=RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["kind"] == "threshold" and rule["for"] == 60.0 and rule["window"] == "5m"
    assert rule["source"] == "api" and rule["created_at"] > 0
    rule_id = rule["id"]
    assert (await client.get(f"/rules/{rule_id}")).json() == rule
    changed = await client.put(f"/rules/{rule_id}", json={**RULE, "threshold": 1.5})
    assert changed.status_code == 200 and changed.json()["threshold"] == 1.5
    assert changed.json()["created_at"] == rule["created_at"]
    assert len((await client.get("/rules")).json()["rules"]) == 2
    assert (await client.delete(f"/rules/{rule_id}")).status_code == 204
    assert (await client.get(f"/rules/{rule_id}")).status_code == 404
    assert (await client.delete(f"/rules/{rule_id}")).status_code == 404
    assert (await client.put("/rules/nope", json=RULE)).status_code == 404


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"metric": None}, ["body", "metric"], "Field required"),
        ({"metric": "cpu"}, ["body", "metric"], "Input should be"),
        ({"comparator": "=="}, ["body", "comparator"], "Input should be"),
        ({"window": "2m"}, ["body", "window"], "window must be one of 10s, 1m, 5m"),
        ({"for": "soon"}, ["body", "for"], "is not a duration"),
        ({"severity": "page"}, ["body", "severity"], "Input should be"),
        ({"threshold": "high"}, ["body", "threshold"], "valid number"),
        ({"min_requests": -1}, ["body", "min_requests"], "greater than or equal"),
        ({"channels": ["pager"]}, ["body", "channels", 0], "no channel or channel type"),
        ({"route": "predict"}, ["body", "route"], "must start with '/'"),
        ({"color": "red"}, ["body", "color"], "unknown field"),
        ({"kind": "magic"}, ["body", "kind"], "unknown rule kind"),
        ({"id": "mine"}, ["body", "id"], "set by the server"),
        ({"name": "iris errors"}, ["body", "name"], "exists"),
    ],
)
async def test_invalid_rules_are_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], loc: list[Any], message: str
) -> None:
    body = {key: value for key, value in {**RULE, **change}.items() if value is not None}
    response = await client.post("/rules", json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["loc"] == loc and message in p["msg"] for p in problems), problems


async def test_configure_short_form(client: httpx.AsyncClient) -> None:
    body = {
        "metrics": ["response_time", "error_rate"],
        "thresholds": {"response_time_ms": 1000, "error_rate_percent": 5.0},
        "alert_channels": ["email", "webhook"],
    }
    response = await client.post("/configure", json=body)
    assert response.status_code == 200, response.text
    rules = {rule["id"]: rule for rule in response.json()["rules"]}
    latency = rules["configure-all-response_time_ms"]
    assert (latency["metric"], latency["comparator"], latency["threshold"]) == (
        "latency_p95",
        ">",
        1.0,
    )
    assert (latency["window"], latency["for"], latency["service"]) == ("1m", 60.0, "*")
    errors = rules["configure-all-error_rate_percent"]
    assert (errors["metric"], errors["threshold"]) == ("error_rate", 0.05)
    assert errors["channels"] == ["email", "webhook"]
    # Configuring again replaces the same rules.
    body["thresholds"] = {"response_time_ms": 250, "error_rate_percent": 1}
    await client.post("/configure", json=body)
    stored = (await client.get("/rules")).json()["rules"]
    assert len(stored) == 3
    assert {r["threshold"] for r in stored if r["id"].startswith("configure-")} == {0.25, 0.01}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"thresholds": {"cpu_percent": 5}}, ["body", "thresholds", "cpu_percent"]),
        (
            {"metrics": ["error_rate"], "thresholds": {"response_time_ms": 5}},
            ["body", "thresholds", "response_time_ms"],
        ),
        ({"thresholds": {"error_rate_percent": "x"}}, ["body", "thresholds", "error_rate_percent"]),
        ({"thresholds": {}}, ["body", "thresholds"]),
        (
            {"thresholds": {"error_rate_percent": 5}, "alert_channels": ["sms"]},
            ["body", "alert_channels", 0],
        ),
        ({"metrics": ["cpu"], "thresholds": {"error_rate_percent": 5}}, ["body", "metrics", 0]),
    ],
)
async def test_configure_errors_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await client.post("/configure", json=body)
    assert response.status_code == 422, response.text
    assert loc in [problem["loc"] for problem in response.json()["detail"]]


async def test_silence_crud(client: httpx.AsyncClient) -> None:
    now = time.time()
    body = {
        "matchers": [
            {"name": "service", "value": "iris"},
            {"name": "severity", "value": "info|warning", "op": "=~"},
        ],
        "starts_at": now - 10,
        "ends_at": "2099-01-01T00:00:00Z",
        "comment": "deploy",
    }
    created = await client.post("/silences", json=body)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["ends_at"] == 4070908800.0
    listed = (await client.get("/silences")).json()["silences"]
    assert [s["id"] for s in listed] == [silence["id"]]
    updated = await client.put(f"/silences/{silence['id']}", json={**body, "comment": "longer"})
    assert updated.json()["comment"] == "longer"
    bad = await client.post("/silences", json={**body, "ends_at": now - 100})
    assert bad.status_code == 422 and "ends_at must be after starts_at" in bad.text
    bad = await client.post(
        "/silences", json={**body, "matchers": [{"name": "x", "value": "(", "op": "=~"}]}
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:3] == [
        "body",
        "matchers",
        0,
    ]
    assert (await client.delete(f"/silences/{silence['id']}")).status_code == 204
    assert (await client.get(f"/silences/{silence['id']}")).status_code == 404


async def test_channels_hide_secrets_disable_enable_and_test(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    channels = {c["name"]: c for c in (await client.get("/channels")).json()["channels"]}
    assert channels["webhook"]["config"]["secret"] == "***"
    assert channels["oncall"]["config"]["password"] == "***"
    assert "hunter2" not in (await client.get("/channels")).text
    assert channels["webhook"]["enabled"] is True
    disabled = (await client.post("/channels/webhook/disable")).json()
    assert disabled["enabled"] is False and disabled["disabled_reason"]
    skipped = (await client.post("/channels/webhook/test")).json()
    assert skipped["status"] == "skipped"
    enabled = (await client.post("/channels/webhook/enable")).json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] == ""
    delivered = (await client.post("/channels/webhook/test")).json()
    assert delivered["status"] == "delivered"
    assert len(receiver.requests) == 1
    log = (await client.get("/deliveries", params={"channel": "webhook"})).json()["deliveries"]
    assert [d["status"] for d in log] == ["delivered", "skipped"]
    assert (await client.post("/channels/nope/enable")).status_code == 404


async def test_alert_lists_validate_parameters(client: httpx.AsyncClient) -> None:
    root = client.base_url.copy_with(path="/api/v1/alerts")
    assert (await client.get(root, params={"resolved_within": "soon"})).status_code == 422
    response = await client.get("/history", params={"start": "yesterday"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
        "query",
        "start",
    ]
    assert (await client.get(root)).json() == {"alerts": []}
    assert (await client.get("/history", params={"start": "-1h"})).json() == {"history": []}


async def test_rules_and_silences_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    settings = make_settings(tmp_path, receiver.url)
    ids = {}
    for round_ in range(2):
        runtime = Runtime(settings, parts=Parts(proxy=False, worker=True, api=True))
        await runtime.start()
        try:
            async with httpx.AsyncClient(base_url=f"{runtime.api_url}/api/v1/alerts") as client:
                if round_ == 0:
                    ids["rule"] = (await client.post("/rules", json=RULE)).json()["id"]
                    ids["silence"] = (
                        await client.post(
                            "/silences",
                            json={
                                "matchers": [{"name": "service", "value": "iris"}],
                                "starts_at": "now",
                                "ends_at": "2099-01-01",
                            },
                        )
                    ).json()["id"]
                else:
                    assert (await client.get(f"/rules/{ids['rule']}")).status_code == 200
                    assert (await client.get(f"/silences/{ids['silence']}")).status_code == 200
        finally:
            await runtime.stop()


def test_bad_alerting_config_fails_at_start(tmp_path: Path) -> None:
    from modelmonitor.alerts.system import AlertSystem
    from modelmonitor.live.memory import MemoryLiveState

    settings = load_settings(
        data_dir=tmp_path,
        alert_rules=[{"name": "x", "metric": "error_rate", "threshold": 1, "window": "3m"}],
        notification_channels={"hook": {"type": "webhook"}},
    )
    with pytest.raises(ConfigError) as caught:
        AlertSystem.from_settings(settings, live=MemoryLiveState())
    assert "notification_channels.hook.url: Field required" in str(caught.value)
    settings = load_settings(
        data_dir=tmp_path,
        alert_rules=[{"name": "x", "metric": "error_rate", "threshold": 1, "window": "3m"}],
    )
    with pytest.raises(ConfigError, match=r"alert_rules\.0\.window: window must be one of"):
        AlertSystem.from_settings(settings, live=MemoryLiveState())
