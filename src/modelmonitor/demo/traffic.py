"""``modelmonitor demo traffic``: paced, realistic requests against the demo model API."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import msgspec

__all__ = ["TrafficReport", "drive_traffic"]

_IRIS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
_WINE = [
    [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050],
    [12.37, 0.94, 1.36, 10.6, 88, 1.98, 0.57, 0.28, 0.42, 1.95, 1.05, 1.82, 520],
]


class TrafficReport(msgspec.Struct, kw_only=True):
    sent: int = 0
    by_status: dict[str, int] = {}
    transport_errors: int = 0
    seconds: float = 0.0


def _request(rng: random.Random) -> tuple[str, str, dict[str, object] | None, dict[str, str]]:
    roll = rng.random()
    if roll < 0.45:
        return (
            "POST",
            "/v1/models/iris/predict",
            {"instances": [rng.choice(_IRIS)]},
            {"X-Model-Name": "iris"},
        )
    if roll < 0.75:
        return (
            "POST",
            "/v1/models/wine/predict",
            {"instances": [rng.choice(_WINE)]},
            {"X-Model-Name": "wine"},
        )
    if roll < 0.9:
        return "POST", "/predict", {"model": "iris", "features": rng.choice(_IRIS)}, {}
    if roll < 0.97:
        return "POST", "/v1/completions", {"model": "tiny-lm", "prompt": "hi", "max_tokens": 8}, {}
    return "GET", "/v1/models", None, {}


async def drive_traffic(
    target: str,
    *,
    rps: float = 20.0,
    duration: float = 60.0,
    concurrency: int = 64,
    seed: int | None = None,
) -> TrafficReport:
    """Send about ``rps`` requests per second for ``duration`` seconds."""
    if rps <= 0 or duration <= 0:
        raise ValueError("rps and duration must be positive")
    rng = random.Random(seed)
    report = TrafficReport()
    limit = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=target, timeout=30.0, limits=limits) as client:

        async def one() -> None:
            method, path, body, headers = _request(rng)
            try:
                response = await client.request(method, path, json=body, headers=headers)
                key = str(response.status_code)
                report.by_status[key] = report.by_status.get(key, 0) + 1
            except httpx.HTTPError:
                report.transport_errors += 1
            finally:
                limit.release()

        tasks: set[asyncio.Task[None]] = set()
        total = int(rps * duration)
        for index in range(total):
            due = started + index / rps
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await limit.acquire()
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            report.sent += 1
        if tasks:
            await asyncio.gather(*tasks)
    report.seconds = time.perf_counter() - started
    return report
