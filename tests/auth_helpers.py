"""Seeding users and tokens, and a running API with authentication on, for the auth tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from modelmonitor.auth import accounts
from modelmonitor.auth.audit import Actor
from modelmonitor.auth.store import create_auth_store
from modelmonitor.runtime import Parts, Runtime
from modelmonitor.settings import load_settings

__all__ = ["PASSWORD", "ROLES", "login", "running_api", "seed"]

PASSWORD = "correct horse battery staple"
ROLES = ("metrics", "viewer", "editor", "admin")
_SEEDER = Actor(name="test-seed", role="admin", source="test")


async def seed(database_url: str, *, users: dict[str, str]) -> dict[str, str]:
    """Add users (name -> role, all with :data:`PASSWORD`) and one token per role;
    returns role -> token secret."""
    store = create_auth_store(database_url)
    await store.connect()
    try:
        for name, role in users.items():
            await accounts.add_user(
                store=store, clock=time.time, actor=_SEEDER, name=name, role=role, password=PASSWORD
            )
        secrets = {}
        for role in ROLES:
            secret, _ = await accounts.create_token(
                store=store, clock=time.time, actor=_SEEDER, name=role, role=role, expires_in=None
            )
            secrets[role] = secret
        return secrets
    finally:
        await store.close()


@asynccontextmanager
async def running_api(tmp_path: Path, **settings: Any) -> AsyncIterator[Runtime]:
    options: dict[str, Any] = {
        "data_dir": tmp_path,
        "api": "127.0.0.1:0",
        "ws_interval_seconds": 0.2,
        "target": "http://127.0.0.1:1",
    }
    options.update(settings)
    runtime = Runtime(load_settings(**options), parts=Parts(proxy=False, worker=True, api=True))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def login(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    """Log in (the client keeps the cookie); returns the CSRF token."""
    response = await client.post(
        "/api/v1/auth/login", json={"username": name, "password": password}
    )
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf
