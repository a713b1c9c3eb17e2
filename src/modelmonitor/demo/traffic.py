"""``modelmonitor demo traffic``: paced, realistic requests against the demo model API."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import msgspec

from modelmonitor.demo.llm import DEMO_LLMS

__all__ = ["TrafficReport", "drive_traffic"]

_IRIS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
_WINE = [
    [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050],
    [12.37, 0.94, 1.36, 10.6, 88, 1.98, 0.57, 0.28, 0.42, 1.95, 1.05, 1.82, 520],
]


DEMO_MODELS = sorted(DEMO_LLMS)


class TrafficReport(msgspec.Struct, kw_only=True):
    sent: int = 0
    by_status: dict[str, int] = {}
    transport_errors: int = 0
    seconds: float = 0.0


#: Who calls the demo: two teams by API key (recorded only as a keyed hash) and two
#: people by an ``X-User`` header.
_CALLERS: list[dict[str, str]] = [
    {"Authorization": "Bearer demo-key-search-team-0001"},
    {"Authorization": "Bearer demo-key-support-bot-0002"},
    {"X-User": "alice"},
    {"X-User": "bob"},
]
_QUESTIONS = [
    "What is the capital of France?",
    "Summarise the attached incident report in three sentences, listing the root cause.",
    "Write a haiku about latency.",
    "Explain the difference between p95 and p99 latency to a new engineer, with an example.",
]


def _chat(rng: random.Random) -> dict[str, object]:
    body: dict[str, object] = {
        "model": rng.choice(DEMO_MODELS),
        "messages": [{"role": "user", "content": rng.choice(_QUESTIONS)}],
        "stream": rng.random() < 0.7,
    }
    if rng.random() < 0.3:
        body["max_tokens"] = rng.choice([16, 32, 64])
    if body["stream"] and rng.random() < 0.6:
        body["stream_options"] = {"include_usage": True}
    return body


def _v2(rng: random.Random) -> tuple[str, dict[str, object]]:
    name = "iris" if rng.random() < 0.6 else "wine"
    rows = [rng.choice(_IRIS if name == "iris" else _WINE) for _ in range(rng.randint(1, 4))]
    path = f"/v2/models/{name}/infer"
    if name == "iris" and rng.random() < 0.5:
        path = "/v2/models/iris/versions/3/infer"
    tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP32"}
    tensor["data"] = [float(value) for row in rows for value in row]
    return path, {"inputs": [tensor]}


def _request(rng: random.Random) -> tuple[str, str, dict[str, object] | None, dict[str, str]]:
    roll = rng.random()
    caller = dict(rng.choice(_CALLERS))
    if roll < 0.3:
        return (
            "POST",
            "/v1/models/iris/predict",
            {"instances": [rng.choice(_IRIS)]},
            {"X-Model-Name": "iris"},
        )
    if roll < 0.45:
        return (
            "POST",
            "/v1/models/wine/predict",
            {"instances": [rng.choice(_WINE)]},
            {"X-Model-Name": "wine"},
        )
    if roll < 0.52:
        return "POST", "/predict", {"model": "iris", "features": rng.choice(_IRIS)}, {}
    if roll < 0.55:
        return "POST", "/v1/completions", {"model": "tiny-lm", "prompt": "hi", "max_tokens": 8}, {}
    if roll < 0.8:
        return "POST", "/v1/chat/completions", _chat(rng), caller
    if roll < 0.97:
        path, body = _v2(rng)
        return "POST", path, body, caller
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
