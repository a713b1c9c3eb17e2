"""Scale-out on real services: 2 workers, 2 API replicas, 2 publishers, one broker restart
and one worker killed with SIGKILL mid-stream; nothing is lost and nothing is stored twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from modelmonitor.bus import BusUnavailable, EventBus, create_bus
from modelmonitor.events import EventBatch, ProxyStats, encode_batch
from tests.integration.services_support import Backends, free_port, rabbitmqctl

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

PUBLISHERS = 2
EVENTS_PER_PUBLISHER = 30_000
PUBLISH_SECONDS = 20.0
PUBLISHER = Path(__file__).with_name("publisher.py")


class Process:
    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def spawn(name: str, args: list[str], tmp: Path, *, pipe: bool = False) -> Process:
    log = tmp / f"{name}.log"
    env = {
        **os.environ,
        "MODELMONITOR_WS_INTERVAL_SECONDS": "0.5",
        "MODELMONITOR_LOG_LEVEL": "warning",
    }
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.PIPE if pipe else output,
            stderr=output if pipe else asyncio.subprocess.STDOUT,
            env=env,
        )
    return Process(name, proc, log)


async def until(check: Callable[[], Awaitable[bool]], within: float, step: float = 0.1) -> None:
    """Poll ``check`` until it is true; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(step)


async def wait_healthy(client: httpx.AsyncClient, url: str, process: Process) -> None:
    for _ in range(300):
        if process.proc.returncode is not None:
            raise AssertionError(f"{process.name} exited: {process.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"{url}/health")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


async def collect_ws(url: str, into: list[dict[str, object]]) -> None:
    import websockets

    async with websockets.connect(url) as socket:
        async for message in socket:
            into.append(json.loads(message))


EMPTY = EventBatch(
    stats=ProxyStats(
        proxy_id="observer",
        sent_at=0.0,
        buffer_size=0,
        buffer_capacity=1,
        dropped_total=0,
        captured_total=0,
    ),
    events=[],
)


def _is_connected(bus: EventBus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bus.connected

    return check


def _not(bus: EventBus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not bus.connected

    return check


def total_5m(snapshot: dict[str, object]) -> int:
    services = snapshot["services"]
    assert isinstance(services, list)
    return sum(int(s["windows"]["5m"]["requests"]) for s in services)


async def test_scale_out_survives_broker_restart_and_worker_kill(
    backends: Backends, tmp_path: Path
) -> None:
    cli = [sys.executable, "-m", "modelmonitor"]
    common = ["--database", backends.database_url, "--cache", backends.cache_url]
    broker = f"{backends.broker_url}?queue=modelmonitor.events"
    upgrade = await spawn(
        "upgrade", [*cli, "db", "upgrade", "--database", backends.database_url], tmp_path
    )
    assert await upgrade.proc.wait() == 0, upgrade.log.read_text()

    processes: list[Process] = []
    ws_tasks: list[asyncio.Task[None]] = []
    try:
        workers = [
            await spawn(f"worker{i}", [*cli, "worker", "--broker", broker, *common], tmp_path)
            for i in range(2)
        ]
        processes += workers
        ports = [free_port() for _ in range(2)]
        apis = [
            await spawn(f"api{i}", [*cli, "api", "--api", f"127.0.0.1:{port}", *common], tmp_path)
            for i, port in enumerate(ports)
        ]
        processes += apis
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        async with httpx.AsyncClient(timeout=10) as client:
            for url, api in zip(urls, apis, strict=True):
                await wait_healthy(client, url, api)
            pushed: list[list[dict[str, object]]] = [[], []]
            ws_tasks = [
                asyncio.create_task(collect_ws(url.replace("http", "ws") + "/ws/metrics", box))
                for url, box in zip(urls, pushed, strict=True)
            ]

            publishers = [
                await spawn(
                    f"publisher{i}",
                    [
                        sys.executable,
                        str(PUBLISHER),
                        broker,
                        str(EVENTS_PER_PUBLISHER),
                        "--batch",
                        "500",
                        "--duration",
                        str(PUBLISH_SECONDS),
                        "--proxy",
                        f"pub{i}",
                    ],
                    tmp_path,
                    pipe=True,
                )
                for i in range(PUBLISHERS)
            ]
            processes += publishers
            progress = [0] * PUBLISHERS
            results: list[tuple[int, int]] = []

            async def follow(index: int) -> None:
                stdout = publishers[index].proc.stdout
                assert stdout is not None
                async for raw in stdout:
                    words = raw.decode().split()
                    if words[:1] == ["progress"]:
                        progress[index] = int(words[1])
                    elif words[:1] == ["done"]:
                        results.append((int(words[1]), int(words[2])))

            followers = [asyncio.create_task(follow(i)) for i in range(PUBLISHERS)]
            total = PUBLISHERS * EVENTS_PER_PUBLISHER

            async def reach(fraction: float) -> None:
                async def reached() -> bool:
                    return sum(progress) >= fraction * total

                await until(reached, 120, 0.05)

            await reach(0.25)
            observer = create_bus(broker)  # the test's own handle on the broker
            await observer.connect()
            assert observer.connected
            await asyncio.to_thread(rabbitmqctl, "stop_app")
            try:
                await until(_not(observer), 15)
                with pytest.raises(BusUnavailable):
                    await observer.publish(encode_batch(EMPTY))
                await asyncio.sleep(2)
            finally:
                await asyncio.to_thread(rabbitmqctl, "start_app")
            await until(_is_connected(observer), 30)
            await observer.publish(encode_batch(EMPTY))  # works again after the restart
            await observer.close()
            await reach(0.6)
            workers[0].proc.kill()  # SIGKILL: its unacked batches go to the other worker
            async with asyncio.timeout(150):
                for publisher in publishers:
                    assert await publisher.proc.wait() == 0, publisher.log.read_text()[-3000:]
                await asyncio.gather(*followers)
            assert sorted(sent for sent, _ in results) == [EVENTS_PER_PUBLISHER] * PUBLISHERS
            retries = sum(r for _, r in results)
            assert retries > 0, "publishers should have met BusUnavailable during the restart"

            import asyncpg

            db = await asyncpg.connect(backends.database_url)
            try:

                async def all_stored() -> bool:
                    return bool(await db.fetchval("SELECT count(*) FROM events") >= total)

                await until(all_stored, 90, 0.25)
                await asyncio.sleep(1.0)  # anything more would be a duplicate
                stored = await db.fetchval("SELECT count(*) FROM events")
                distinct = await db.fetchval("SELECT count(DISTINCT id) FROM events")
                rolled = await db.fetchval("SELECT sum(requests) FROM rollups")
                summarised = await db.fetchval("SELECT sum(requests) FROM services")
            finally:
                await db.close()
            assert stored == total
            assert distinct == total
            assert rolled == total
            assert summarised == total

            await asyncio.sleep(1.5)  # the last second completes in the live windows
            services_totals = []
            realtime_totals = []
            for url in urls:
                listed = (await client.get(f"{url}/api/v1/services")).json()["services"]
                services_totals.append(sum(s["requests_total"] for s in listed))
                realtime_totals.append(
                    total_5m((await client.get(f"{url}/api/v1/metrics/realtime")).json())
                )
            assert services_totals == [total, total]
            # Redelivered batches are recorded once in the shared live windows too.
            assert realtime_totals == [total, total]

            async def both_pushed_everything() -> bool:
                return all(pushed) and all(
                    max(total_5m(m["data"]) for m in box) >= total for box in pushed
                )

            await until(both_pushed_everything, 10)
            print(
                f"\nscale-out: {total} events stored exactly once; {retries} publish retries;"
                f" realtime 5m totals {realtime_totals}; ws messages {[len(b) for b in pushed]}"
            )
    finally:
        for task in ws_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for process in processes:
            await process.stop()
