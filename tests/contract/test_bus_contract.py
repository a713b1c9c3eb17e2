"""One bus contract, every backend: publish, consume, ack, redelivery, competing consumers."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest

from modelmonitor.bus import BusUnavailable, Delivery, EventBus, create_bus

BACKENDS = ["memory", "unix", "rabbitmq"]


@pytest.fixture(params=BACKENDS)
def bus_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "unix":
        # A short private directory: socket paths are limited to 107 bytes.
        with tempfile.TemporaryDirectory(prefix="mm-bus-") as directory:
            yield f"unix://{directory}/bus.sock"
    else:
        yield str(request.getfixturevalue("rabbitmq_url"))


@pytest.fixture
async def bus(bus_url: str) -> AsyncIterator[EventBus]:
    bus = create_bus(bus_url)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()


async def _second_handle(bus: EventBus) -> EventBus:
    """Another handle on the same queue: a new connection, or the same in-process bus."""
    if bus.url.startswith("memory"):
        return bus
    other = create_bus(bus.url)
    await other.connect()
    return other


async def _take(stream: AsyncIterator[Delivery], within: float = 10.0) -> Delivery:
    return await asyncio.wait_for(anext(stream), within)


async def _nothing_within(stream: AsyncIterator[Delivery], seconds: float) -> bool:
    try:
        await asyncio.wait_for(anext(stream), seconds)
    except TimeoutError:
        return True
    return False


async def test_publish_consume_ack(bus: EventBus) -> None:
    assert bus.connected
    await bus.publish(b"one")
    await bus.publish(b"two")
    stream = bus.consume(prefetch=4)
    first = await _take(stream)
    second = await _take(stream)
    assert [first.body, second.body] == [b"one", b"two"]
    await first.ack()
    await second.ack()
    assert await _nothing_within(stream, 0.5)


async def test_reject_requeues_and_reject_without_requeue_drops(bus: EventBus) -> None:
    await bus.publish(b"again")
    stream = bus.consume(prefetch=1)
    delivery = await _take(stream)
    await delivery.reject(requeue=True)
    redelivered = await _take(stream)
    assert redelivered.body == b"again"
    await redelivered.reject(requeue=False)
    assert await _nothing_within(stream, 0.5)


async def test_competing_consumers_share_the_stream(bus: EventBus) -> None:
    other = await _second_handle(bus)
    try:
        bodies = [f"m{i}".encode() for i in range(60)]
        for body in bodies:
            await bus.publish(body)
        received: list[list[bytes]] = [[], []]

        async def consume(handle: EventBus, index: int) -> None:
            async for delivery in handle.consume(prefetch=1):
                received[index].append(delivery.body)
                await delivery.ack()
                await asyncio.sleep(0.005)  # let the other consumer take its share

        tasks = [
            asyncio.create_task(consume(bus, 0)),
            asyncio.create_task(consume(other, 1)),
        ]
        deadline = asyncio.get_running_loop().time() + 20
        while sum(map(len, received)) < len(bodies):
            assert asyncio.get_running_loop().time() < deadline, received
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert sorted(received[0] + received[1]) == sorted(bodies)
        assert received[0] and received[1], "both consumers should take messages"
    finally:
        if other is not bus:
            await other.close()


async def test_publish_after_close_raises_bus_unavailable(bus_url: str) -> None:
    bus = create_bus(bus_url)
    await bus.connect()
    await bus.close()
    assert not bus.connected
    with pytest.raises(BusUnavailable):
        await bus.publish(b"late")


# The in-process bus dies with its process; a broker or a hub outlives a consumer.
@pytest.mark.parametrize("bus_url", ["unix", "rabbitmq"], indirect=True)
async def test_unacked_messages_are_redelivered_when_a_consumer_dies(bus: EventBus) -> None:
    dying = await _second_handle(bus)
    await bus.publish(b"in-flight")
    stream = dying.consume(prefetch=1)
    first = await _take(stream)
    assert first.body == b"in-flight"
    await dying.close()  # dies without acking
    redelivered = await _take(bus.consume(prefetch=1))
    assert redelivered.body == b"in-flight"
    await redelivered.ack()


# Only a broker outlives its connections; the in-process bus dies with its process.
@pytest.mark.parametrize("bus_url", ["rabbitmq"], indirect=True)
async def test_messages_are_durable_across_connections(bus: EventBus) -> None:
    await bus.publish(b"kept")
    await bus.close()
    again = create_bus(bus.url)
    await again.connect()
    try:
        delivery = await _take(again.consume())
        assert delivery.body == b"kept"
        await delivery.ack()
    finally:
        await again.close()


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_a_broker_that_comes_up_later_is_connected_in_the_background(
    rabbitmq_url: str,
) -> None:
    """Parts start before the broker: publish raises until it answers, then works."""
    import socket
    from urllib.parse import urlsplit

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    parts = urlsplit(rabbitmq_url)
    late_url = parts._replace(netloc=f"guest:guest@127.0.0.1:{port}").geturl()
    bus = create_bus(late_url)
    await bus.connect()  # nothing listens yet
    tasks: list[asyncio.Task[None]] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            parts.hostname, parts.port or 5672
        )
        tasks.append(asyncio.create_task(_forward(reader, upstream_writer)))
        tasks.append(asyncio.create_task(_forward(upstream_reader, writer)))

    server = None
    try:
        assert not bus.connected
        with pytest.raises(BusUnavailable):
            await bus.publish(b"too early")
        server = await asyncio.start_server(relay, "127.0.0.1", port)
        deadline = asyncio.get_running_loop().time() + 15
        while not bus.connected:
            assert asyncio.get_running_loop().time() < deadline, "never connected"
            await asyncio.sleep(0.05)
        await bus.publish(b"in time")
        delivery = await _take(bus.consume())
        assert delivery.body == b"in time"
        await delivery.ack()
    finally:
        await bus.close()
        if server is not None:
            server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
