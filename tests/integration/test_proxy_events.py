"""One event per request, with the fields the pipeline needs."""

from __future__ import annotations

import asyncio
import json

import httpx

from modelmonitor.events import ERROR_KINDS
from modelmonitor.settings import ServiceConfig
from tests.integration.proxy_upstreams import (
    Request,
    base_url,
    running_proxy,
    running_upstream,
    wait_for_events,
)


async def answer(
    request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    status = 404 if "missing" in request.target else 200
    body = b"r" * (10 + len(request.body))
    writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
    return True


async def test_n_requests_make_n_events_with_the_right_fields() -> None:
    service = ServiceConfig(
        name="models",
        upstream="http://127.0.0.1:1",  # replaced below
        route_patterns=["/v1/models/{model}/predict"],
        model_json_field="model",
    )
    async with running_upstream(answer) as upstream:
        service = service.model_copy(update={"upstream": upstream.url})
        async with running_proxy(service) as (proxy, capture), httpx.AsyncClient() as client:
            url = base_url(proxy, "models")
            sent = []
            for index in range(12):
                body = json.dumps({"inputs": [index], "model": f"json-{index}"}).encode()
                headers = {"X-Model-Name": "from-header"} if index % 3 == 0 else {}
                await client.post(
                    url + f"/v1/models/m{index}/predict?debug=1", content=body, headers=headers
                )
                sent.append((index, body, headers))
            await client.get(url + "/v1/users/12345/missing")
            await wait_for_events(capture, 13)
            got = capture.snapshot()
    assert len(got) == 13
    assert len({event.id for event in got}) == 13
    for (index, body, headers), event in zip(sent, got, strict=False):
        assert event.service == "models"
        assert event.method == "POST"
        assert event.route == "/v1/models/{model}/predict"
        assert event.path == f"/v1/models/m{index}/predict"
        assert event.status == 200
        assert event.request_bytes == len(body)
        assert event.response_bytes == 10 + len(body)
        assert event.model == ("from-header" if headers else f"json-{index}")
        assert event.client == "127.0.0.1"
        assert event.error == ""
        assert 0 < event.ttfb_seconds <= event.latency_seconds < 5
        assert event.start > 1e9
    last = got[-1]
    assert (last.method, last.route, last.status, last.model) == (
        "GET",
        "/v1/users/{id}/missing",
        404,
        "",
    )
    assert last.request_bytes == 0 and last.response_bytes == 10
    assert all(event.error in ("", *ERROR_KINDS) for event in got)


async def test_model_from_a_large_json_body_uses_the_first_64k_only() -> None:
    async with running_upstream(answer) as upstream:
        service = ServiceConfig(name="svc", upstream=upstream.url, model_json_field="model")
        async with running_proxy(service) as (proxy, capture), httpx.AsyncClient() as client:
            early = json.dumps({"model": "early", "data": "x" * 200_000}).encode()
            late = json.dumps({"data": "x" * 200_000, "model": "late"}).encode()
            nested = json.dumps({"params": {"model": "nested"}, "model": "top"}).encode()
            for body in (early, late, nested, b"not json", b"[1, 2]"):
                response = await client.post(base_url(proxy, "svc") + "/p", content=body)
                assert response.status_code == 200
            await wait_for_events(capture, 5)
            models = [event.model for event in capture.snapshot()]
    assert models == ["early", "", "top", "", ""]


async def test_in_flight_counts_per_service() -> None:
    release = asyncio.Event()

    async def held(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        async with asyncio.timeout(5):
            await release.wait()
        return await answer(request, reader, writer)

    async with running_upstream(held) as upstream:
        service = ServiceConfig(name="svc", upstream=upstream.url)
        async with running_proxy(service) as (proxy, capture), httpx.AsyncClient() as client:
            tasks = [
                asyncio.create_task(client.get(base_url(proxy, "svc") + f"/{i}")) for i in range(3)
            ]
            for _ in range(200):
                if proxy.in_flight() == {"svc": 3}:
                    break
                await asyncio.sleep(0.01)
            assert proxy.in_flight() == {"svc": 3}
            release.set()
            assert [r.status_code for r in await asyncio.gather(*tasks)] == [200] * 3
            assert proxy.in_flight() == {"svc": 0}
            assert len(capture) == 3


async def test_events_reach_the_bus_through_the_shipper() -> None:
    from modelmonitor.bus.memory import MemoryBus
    from modelmonitor.events import decode_batch
    from modelmonitor.proxy import Shipper

    bus = MemoryBus()
    await bus.connect()
    async with running_upstream(answer) as upstream:
        service = ServiceConfig(name="svc", upstream=upstream.url)
        async with running_proxy(service) as (proxy, capture), httpx.AsyncClient() as client:
            shipper = Shipper(
                capture,
                bus,
                proxy_id="it",
                flush_interval_seconds=0.02,
                in_flight=proxy.in_flight,
            )
            await shipper.start()
            for index in range(25):
                assert (await client.get(base_url(proxy, "svc") + f"/r/{index}")).status_code == 200
            await shipper.stop()
    shipped = []
    stats = []
    async for delivery in bus.consume():
        batch = decode_batch(delivery.body)
        shipped += batch.events
        stats.append(batch.stats)
        await delivery.ack()
        if not bus.depth:
            break
    assert [event.path for event in shipped] == [f"/r/{index}" for index in range(25)]
    assert {event.route for event in shipped} == {"/r/{id}"}
    assert stats[-1].captured_total == 25 and stats[-1].in_flight == {"svc": 0}


async def test_informational_responses_are_forwarded() -> None:
    async def hints(
        request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async with (
        running_upstream(hints) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url)) as (proxy, capture),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.bound[0][1])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            early = await reader.readuntil(b"\r\n\r\n")
            final = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(2)
        writer.close()
        assert early.startswith(b"HTTP/1.1 103") and b"Link: </style.css>" in early
        assert final.startswith(b"HTTP/1.1 200") and body == b"ok"
        await wait_for_events(capture, 1)
        assert capture.snapshot()[0].status == 200
