"""Fixtures for the contract suites: one URL per backend, each isolated and cleaned up.

PostgreSQL gets a fresh database per test (TimescaleDB too, with the extension
created in it), RabbitMQ a vhost per session and a
queue per test, Redis a key prefix per test. A backend whose service does not
answer is skipped (``make services`` starts them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("MODELMONITOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MODELMONITOR_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_HOST = os.environ.get("MODELMONITOR_TEST_AMQP_HOST", "127.0.0.1:5672")


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def _require(host_port: str, name: str) -> None:
    if not _reachable(host_port):
        pytest.fail(f"{name} is not running on {host_port} (run `make services`)")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def create_database() -> str:
    """A fresh PostgreSQL database; returns its URL."""
    import asyncpg

    name = unique("modelmonitor_test_")
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    _require("127.0.0.1:5432", "PostgreSQL")
    url = await create_database()
    try:
        yield url
    finally:
        await drop_database(url)


#: Where `make services` builds TimescaleDB from (scripts/ensure-timescaledb.sh).
TIMESCALE_SOURCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "vendor" / "timescaledb"


@pytest.fixture
async def timescale_url() -> AsyncIterator[str]:
    """A fresh database with ``CREATE EXTENSION timescaledb``."""
    import asyncpg

    _require("127.0.0.1:5432", "PostgreSQL")
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        available = await admin.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
        preloaded = "timescaledb" in await admin.fetchval("SHOW shared_preload_libraries")
    finally:
        await admin.close()
    if not (available and preloaded):
        if not TIMESCALE_SOURCE.is_dir():
            pytest.skip(
                f"TimescaleDB is not installed and {TIMESCALE_SOURCE} (its vendored source)"
                " is absent, so `make services` could not build it"
            )
        pytest.fail("TimescaleDB is not installed: run scripts/ensure-timescaledb.sh")
    url = await create_database()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    finally:
        await connection.close()
    try:
        yield url
    finally:
        await drop_database(url)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def amqp_vhost() -> Iterator[str]:
    _require(AMQP_HOST, "RabbitMQ")
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed")
    vhost = unique("mmtest_")
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def rabbitmq_url(amqp_vhost: str) -> str:
    return f"amqp://guest:guest@{AMQP_HOST}/{amqp_vhost}?queue={unique('test.')}"


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    _require("127.0.0.1:6379", "Redis")
    prefix = unique("mmtest:") + ":"
    yield f"{REDIS_URL}?prefix={prefix}"
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
async def alert_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The alert store over SQLite and over PostgreSQL (in a schema of its own)."""
    from modelmonitor.alerts.store import create_alert_store
    from modelmonitor.alerts.store.postgres import PostgresAlertStore

    if request.param == "sqlite":
        store = create_alert_store(f"sqlite:///{tmp_path / 'alerts.db'}")
        await store.connect()
        yield store
        await store.close()
        return
    _require("127.0.0.1:5432", "PostgreSQL")
    schema = unique("alerts_contract_")
    pg = PostgresAlertStore("postgresql://postgres@127.0.0.1:5432/test", schema=schema)
    await pg.connect()
    try:
        yield pg
    finally:
        async with pg.session() as session:
            await session.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
async def auth_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The auth store over SQLite and over PostgreSQL (in a schema of its own)."""
    from modelmonitor.auth.store import create_auth_store
    from modelmonitor.auth.store.postgres import PostgresAuthStore

    if request.param == "sqlite":
        store = create_auth_store(f"sqlite:///{tmp_path / 'auth.db'}")
        await store.connect()
        yield store
        await store.close()
        return
    _require("127.0.0.1:5432", "PostgreSQL")
    schema = unique("auth_contract_")
    pg = PostgresAuthStore(PG_ADMIN_URL, schema_name=schema)
    await pg.connect()
    try:
        yield pg
    finally:
        async with pg.session() as session:
            await session.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pg.close()
