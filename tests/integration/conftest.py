"""Real backends for integration tests: a fresh database, vhost and Redis prefix each."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings
from tests.alert_helpers import Receiver, serve
from tests.integration.services_support import (
    PG_ADMIN_URL,
    REDIS_URL,
    Backends,
    rabbitmqctl,
    reachable,
)


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    for port, name in ((5432, "PostgreSQL"), (5672, "RabbitMQ"), (6379, "Redis")):
        if not reachable(port):
            pytest.fail(f"{name} is not running (run `make services`)")
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed")
    import asyncpg
    import redis.asyncio as redis

    token = uuid.uuid4().hex[:12]
    database = f"modelmonitor_test_{token}"
    vhost = f"mmtest_{token}"
    prefix = f"mmtest:{token}:"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield Backends(
            database_url=f"postgresql://postgres@127.0.0.1:5432/{database}",
            broker_url=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            cache_url=f"{REDIS_URL}?prefix={prefix}",
            vhost=vhost,
            prefix=prefix,
        )
    finally:
        rabbitmqctl("delete_vhost", vhost)
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP server on 127.0.0.1 recording what is POSTed to it."""
    found = Receiver()
    async with serve(found.app()) as url:
        found.url = url
        yield found


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Runtime]:
    """Worker and API on embedded backends (pushes every 0.2 s), no proxy."""
    settings = load_settings(
        data_dir=tmp_path, api="127.0.0.1:0", ws_interval_seconds=0.2, target="http://127.0.0.1:1"
    )
    runtime = Runtime(settings, parts=Parts(proxy=False, worker=True, api=True))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
