"""The supervisor restarts failed loops with backoff and says so in health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from modelmonitor._tasks import Restart, Supervisor


async def wait_for(check: Callable[[], bool], within: float = 3.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polling the supervisor's state is the test
            await asyncio.sleep(0.005)


async def test_a_failing_loop_is_logged_marked_down_then_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    release = asyncio.Event()

    async def loop() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("broker went away")
        await release.wait()

    supervisor = Supervisor("worker", base_delay=0.2, healthy_after=60)
    with caplog.at_level(logging.ERROR, logger="modelmonitor.tasks"):
        supervisor.spawn("pump", loop)
        await wait_for(lambda: supervisor.health().status == "down")
    health = supervisor.health()
    assert "pump failed (RuntimeError: broker went away), restarting in" in health.detail
    assert "broker went away" in caplog.text and "Traceback" in caplog.text
    await wait_for(lambda: len(runs) == 2)
    health = supervisor.health()
    assert health.status == "degraded"
    assert "pump restarted 1x, last after: RuntimeError: broker went away" in health.detail
    assert supervisor.failures == 1
    await supervisor.stop()


async def test_a_loop_that_returns_is_a_failure_and_never_means_stay_down() -> None:
    async def ends() -> None:
        return None

    supervisor = Supervisor("feed")
    supervisor.spawn("relay", ends, restart=Restart.NEVER)
    await wait_for(lambda: supervisor.health().status == "down")
    assert supervisor.health().detail == "relay failed (stopped unexpectedly), not restarted"
    await asyncio.sleep(0.05)
    assert supervisor.failures == 1
    await supervisor.stop()


async def test_healthy_after_a_quiet_period_and_ok_while_running() -> None:
    now = [0.0]
    gate = asyncio.Event()
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("once")
        await gate.wait()

    supervisor = Supervisor("x", base_delay=0.01, healthy_after=10, clock=lambda: now[0])
    supervisor.spawn("loop", flaky)
    await wait_for(lambda: len(calls) == 2)
    assert supervisor.health().status == "degraded"
    now[0] = 11.0
    assert supervisor.health().status == "ok"
    await supervisor.stop()
