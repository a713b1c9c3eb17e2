"""Monitored services change at run time: through the API, into the store, and into the
running proxy without a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import ServiceConfig, load_settings
from tests.integration.proxy_upstreams import (
    Request,
    Upstream,
    base_url,
    closed_port,
    events,
    running_proxy,
    running_upstream,
    wait_for_events,
)


def answering(name: bytes, delay: float = 0.0) -> Any:
    async def handler(request: Request, reader: asyncio.StreamReader, writer: Any) -> bool:
        if delay:
            await asyncio.sleep(delay)
        body = name + b" " + request.target.encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        return True

    return handler


@contextlib.asynccontextmanager
async def upstreams(*names: str, delay: float = 0.0) -> AsyncIterator[dict[str, Upstream]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(running_upstream(answering(name.encode(), delay)))
            for name in names
        }


async def test_apply_adds_changes_and_removes_services_while_requests_flow() -> None:
    async with (
        upstreams("a", "a2", "b", "c") as up,
        running_proxy(ServiceConfig(name="a", upstream=up["a"].url)) as (proxy, capture),
    ):
        main = base_url(proxy, "a")
        async with httpx.AsyncClient(base_url=main) as client:
            assert (await client.get("/x")).text == "a /x"
            # A prefix on the shared port and a service on a port of its own.
            await proxy.apply(
                [
                    ServiceConfig(name="a", upstream=up["a"].url),
                    ServiceConfig(name="b", upstream=up["b"].url, path_prefix="/b"),
                    ServiceConfig(name="c", upstream=up["c"].url, listen="127.0.0.1:0"),
                ]
            )
            assert (await client.get("/b/y")).text == "b /y"
            assert (await client.get("/z")).text == "a /z"  # same keep-alive connection
            own = base_url(proxy, "c")
            assert own != main
            async with httpx.AsyncClient(base_url=own) as other:
                assert (await other.get("/w")).text == "c /w"
            # a moves to another upstream; c goes away.
            await proxy.apply(
                [
                    ServiceConfig(name="a", upstream=up["a2"].url),
                    ServiceConfig(name="b", upstream=up["b"].url, path_prefix="/b"),
                ]
            )
            assert (await client.get("/x")).text == "a2 /x"
            assert "c" not in proxy.addresses
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient(base_url=own) as other:
                    await other.get("/w")
        await wait_for_events(capture, 5)
        recorded = [(event.service, event.path) for event in events(capture)]
        assert recorded == [("a", "/x"), ("b", "/y"), ("a", "/z"), ("c", "/w"), ("a", "/x")]


async def test_a_request_in_flight_finishes_on_the_service_it_started_on() -> None:
    async with (
        upstreams("slow", delay=0.5) as slow,
        upstreams("fast") as fast,
        running_proxy(ServiceConfig(name="a", upstream=slow["slow"].url)) as (proxy, capture),
    ):
        async with httpx.AsyncClient(base_url=base_url(proxy, "a")) as client:
            pending = asyncio.create_task(client.get("/long"))
            await asyncio.sleep(0.1)
            await proxy.apply([ServiceConfig(name="a", upstream=fast["fast"].url)])
            async with httpx.AsyncClient(base_url=base_url(proxy, "a")) as second:
                assert (await second.get("/now")).text == "fast /now"
            assert (await pending).text == "slow /long"
        await wait_for_events(capture, 2)
        assert sorted(event.status for event in events(capture)) == [200, 200]


async def test_a_port_that_is_taken_leaves_the_running_services_alone() -> None:
    async with (
        upstreams("a", "b") as up,
        running_proxy(ServiceConfig(name="a", upstream=up["a"].url)) as (proxy, _),
    ):
        taken = proxy.addresses["a"]
        with pytest.raises(OSError):
            await proxy.apply(
                [
                    ServiceConfig(name="a", upstream=up["a"].url),
                    ServiceConfig(name="b", upstream=up["b"].url, listen=taken),
                ]
            )
        assert set(proxy.addresses) == {"a"} and proxy.addresses["a"] == taken
        async with httpx.AsyncClient(base_url=base_url(proxy, "a")) as client:
            assert (await client.get("/x")).text == "a /x"


async def eventually(check: Any, seconds: float = 15.0) -> Any:
    last: Any = None
    for _ in range(int(seconds / 0.1)):
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached in {seconds} s: {last!r}")


async def test_services_added_through_the_api_are_proxied_without_a_restart(
    tmp_path: Path,
) -> None:
    async with upstreams("model", "chat", "chat2") as up:
        settings = load_settings(
            data_dir=tmp_path,
            target=up["model"].url,
            target_name="model",
            listen="127.0.0.1:0",
            api="127.0.0.1:0",
            catalog_poll_seconds=0.2,
        )
        runtime = Runtime(settings, parts=Parts())
        await runtime.start()
        try:
            assert runtime.api_url is not None
            proxy_url = f"http://{runtime.proxy_addresses['model']}"
            async with (
                httpx.AsyncClient(base_url=runtime.api_url) as api,
                httpx.AsyncClient(base_url=proxy_url) as proxied,
            ):
                listed = (await api.get("/api/v1/config/services")).json()["services"]
                assert [(s["name"], s["source"], s["read_only"]) for s in listed] == [
                    ("model", "config", True)
                ]
                chat = {"name": "chat", "upstream": up["chat"].url, "path_prefix": "/chat"}
                created = await api.post("/api/v1/config/services", json=chat)
                assert created.status_code == 201, created.text
                assert created.json()["source"] == "api"

                async def chat_answers() -> bool:
                    return (await proxied.get("/chat/v1/x")).text == "chat /v1/x"

                await eventually(chat_answers)
                moved = {**chat, "upstream": up["chat2"].url}
                changed = await api.put("/api/v1/config/services/chat", json=moved)
                assert changed.status_code == 200

                async def moved_answers() -> bool:
                    return (await proxied.get("/chat/v1/x")).text == "chat2 /v1/x"

                await eventually(moved_answers)

                # The requests were recorded under the new service's name.
                async def recorded() -> Any:
                    page = (await api.get("/api/v1/requests", params={"service": "chat"})).json()
                    return page["requests"]

                assert {r["path"] for r in await eventually(recorded)} == {"/v1/x"}

                # Refusals: a declared service, a bad body, a clash.
                declared = await api.put(
                    "/api/v1/config/services/model",
                    json={"name": "model", "upstream": up["chat"].url},
                )
                assert declared.status_code == 409
                assert "configuration file" in declared.json()["detail"]
                bad = await api.post(
                    "/api/v1/config/services", json={"name": "x", "upstream": "ftp://nowhere"}
                )
                assert bad.status_code == 422
                assert bad.json()["detail"][0]["loc"] == ["body", "upstream"]
                clash = await api.post(
                    "/api/v1/config/services",
                    json={"name": "again", "upstream": up["chat"].url, "path_prefix": "/chat"},
                )
                assert clash.status_code == 409

                # Dry runs.
                ok = await api.post("/api/v1/config/services/test", json=moved)
                assert ok.json()["reachable"] is True and ok.json()["status"] == 200
                down = await api.post(
                    "/api/v1/config/services/test",
                    json={"name": "d", "upstream": f"http://127.0.0.1:{closed_port()}"},
                )
                assert down.json()["reachable"] is False and down.json()["error"]

                deleted = await api.delete("/api/v1/config/services/chat")
                assert deleted.status_code == 204

                async def gone() -> bool:
                    # No prefix claims /chat any more: the service without one answers.
                    return (await proxied.get("/chat/v1/x")).text == "model /chat/v1/x"

                await eventually(gone)
                # Every change is in the audit log, with what it replaced.
                audit = (await api.get("/api/v1/audit")).json()["entries"]
                actions = [(e["action"], e["target"], e["outcome"]) for e in audit]
                assert ("add_service", "/api/v1/config/services", "ok 201") in actions
                assert ("delete_service", "chat", "ok 204") in actions
                (replaced,) = [
                    e for e in audit if e["action"] == "replace_service" and e["target"] == "chat"
                ]
                assert replaced["before"]["config"]["upstream"] == up["chat"].url
        finally:
            await runtime.stop()
