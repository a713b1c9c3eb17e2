"""The local Unix-socket bus beyond the shared contract: roles, reconnects, permissions."""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmonitor.bus import BusUnavailable, create_bus
from modelmonitor.bus.unix import UnixBus


@pytest.fixture
def url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="mm-bus-") as directory:
        yield f"unix://{directory}/bus.sock"


async def test_the_first_handle_is_the_hub_and_the_socket_is_private(url: str) -> None:
    hub, client = create_bus(url), create_bus(url)
    assert isinstance(hub, UnixBus) and isinstance(client, UnixBus)
    await hub.connect()
    await client.connect()
    try:
        assert hub.is_hub and not client.is_hub
        assert client.connected
        mode = stat.S_IMODE(os.stat(hub.path).st_mode)
        assert mode & 0o077 == 0, oct(mode)
    finally:
        await client.close()
        await hub.close()
    assert not Path(hub.path).exists()


async def test_a_client_publishes_once_the_hub_is_back(url: str) -> None:
    """Without a hub a client raises BusUnavailable (the shipper holds and retries)."""
    hub, client = UnixBus(url), UnixBus(url, retry_seconds=0.0)
    await hub.connect()
    await client.connect()
    try:
        assert not client.is_hub
        await client.publish(b"first")
        await hub.close()
        with pytest.raises(BusUnavailable):
            await client.publish(b"nobody listens")
        hub = UnixBus(url)
        await hub.connect()
        await client.publish(b"back")
        delivery = await asyncio.wait_for(anext(hub.consume()), 5)
        assert delivery.body == b"back"
        await delivery.ack()
    finally:
        await client.close()
        await hub.close()


async def test_join_waits_for_messages_a_client_published(url: str) -> None:
    hub, client = UnixBus(url), UnixBus(url)
    await hub.connect()
    await client.connect()
    try:
        await client.publish(b"one")
        joined = asyncio.create_task(hub.join())
        await asyncio.sleep(0.05)
        assert not joined.done()
        delivery = await asyncio.wait_for(anext(hub.consume()), 5)
        await delivery.ack()
        await asyncio.wait_for(joined, 5)
    finally:
        await client.close()
        await hub.close()


async def test_the_hub_refuses_past_its_byte_bound_until_the_worker_acks(url: str) -> None:
    hub, client = UnixBus(url, max_bytes=1000), UnixBus(url)
    await hub.connect()
    await client.connect()
    try:
        await client.publish(b"x" * 600)
        with pytest.raises(BusUnavailable, match="full"):
            await client.publish(b"y" * 600)
        delivery = await asyncio.wait_for(anext(hub.consume()), 5)
        await delivery.ack()
        await client.publish(b"y" * 600)
    finally:
        await client.close()
        await hub.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [("unix://relative/bus.sock", "absolute path"), ("unix:///" + "x" * 120, "longer than")],
)
def test_bad_socket_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        create_bus(url)
