"""The API against its own OpenAPI schema: schemathesis, every check, on a running
ModelMonitor (worker and API on embedded backends, with traffic stored and
authentication on: it calls with an API token)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelmonitor.events import EventBatch, ProxyStats, encode_batch
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from tests.auth_helpers import seed
from tests.helpers import make_events

pytestmark = pytest.mark.timeout(600)

#: Checks left out, and why:
#: - positive_data_acceptance: OpenAPI cannot say "start before end" across two
#:   parameters, that a cursor must be one the API returned, or that 2026-02-30 is
#:   not a date; those answers are 422s naming the field, as they should be.
EXCLUDED_CHECKS = "positive_data_acceptance"
#: The read side (services, metrics, routes, requests, anomalies, health, /metrics).
#: The alerting routes' request models still carry server-owned fields (id,
#: created_at, source), and the user, token and drift routes are checked by their
#: own suites.
INCLUDED_PATHS = r"^/(api/v1/(services|metrics|routes|requests|anomalies|health)|metrics|health)"


@pytest.fixture
async def tokens(tmp_path: Path) -> dict[str, str]:
    return await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users={"ada": "admin"})


@pytest.fixture
async def running(tmp_path: Path, tokens: dict[str, str]) -> AsyncIterator[Runtime]:
    settings = load_settings(data_dir=tmp_path, api="127.0.0.1:0", target="http://127.0.0.1:1")
    runtime = Runtime(settings, parts=Parts(proxy=False, worker=True, api=True))
    await runtime.start()
    assert runtime.bus is not None
    events = make_events(200, start=time.time() - 120, spread=110, service="default")
    await runtime.bus.publish(
        encode_batch(EventBatch(ProxyStats("p", time.time(), 0, 9, 0, 0), events))
    )
    try:
        yield runtime
    finally:
        await runtime.stop()


async def test_schemathesis_finds_nothing(running: Runtime, tokens: dict[str, str]) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable is not None, "schemathesis is a dev dependency"
    process = await asyncio.create_subprocess_exec(
        executable,
        "run",
        f"{running.api_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--include-path-regex",
        INCLUDED_PATHS,
        "--header",
        f"Authorization: Bearer {tokens['admin']}",
        "--max-examples",
        "25",
        "--seed",
        "1",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
