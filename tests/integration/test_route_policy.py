"""Every route of the app, walked: the public ones are exactly the documented list, and
every other route answers each role (and anonymous callers) as docs/security.md says.

The expected role comes from the rules below, not from the routes' own guards, so a
route that loses or weakens its guard, or a new route nobody classified, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from modelmonitor.api.app import create_app
from modelmonitor.api.guard import PUBLIC_MOUNTS, PUBLIC_ROUTES, app_routes, check_routes
from modelmonitor.settings import load_settings
from tests.auth_helpers import ROLES, running_api, seed

RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
DOCUMENTED_PUBLIC = {
    ("GET", "/health"),
    ("GET", "/login"),
    ("GET", "/api/v1/auth/state"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/auth/oidc/login"),
    ("GET", "/api/v1/auth/oidc/callback"),
}


def documented_role(method: str, path: str) -> str:
    """docs/security.md, "Roles": the least role each route needs."""
    if path == "/metrics":
        return "metrics"
    if path == "/api/v1/auth/logout":
        return "metrics"  # anyone authenticated
    if path.startswith(("/api/v1/users", "/api/v1/tokens", "/api/v1/audit")):
        return "admin"
    if path.startswith("/api/v1/config/") and method not in ("GET", "HEAD"):
        return "admin"
    if path.startswith(("/api/v1/alerts", "/api/v1/services/{service}/references")) and (
        method not in ("GET", "HEAD")
    ):
        return "editor"
    if method in ("GET", "WEBSOCKET"):
        return "viewer"
    raise AssertionError(f"{method} {path}: no documented role; add it to docs/security.md")


def routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for route in app_routes(app):
        methods = getattr(route, "methods", None) or {"WEBSOCKET"}
        if not hasattr(route, "dependant") and route.path in PUBLIC_MOUNTS:
            continue
        found.extend((method, route.path) for method in methods if method != "HEAD")
    return sorted(found)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "zz-missing", path)


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(load_settings(data_dir=tmp_path, api="127.0.0.1:0"))


def test_public_routes_are_exactly_the_documented_list(app: FastAPI) -> None:
    served = set(routes(app))
    assert set(PUBLIC_ROUTES) == DOCUMENTED_PUBLIC
    assert served >= DOCUMENTED_PUBLIC  # no stale entries
    assert set(PUBLIC_MOUNTS) == {"/assets"}
    for method, path in served - DOCUMENTED_PUBLIC:
        documented_role(method, path)  # every other route is classified


def test_an_unguarded_route_stops_the_app_from_being_built(app: FastAPI) -> None:
    check_routes(app)

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, Any]:
        return {}

    with pytest.raises(RuntimeError, match="GET /api/v1/forgotten"):
        check_routes(app)


async def test_every_route_answers_every_role_as_documented(tmp_path: Path) -> None:
    tokens = await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users={"ada": "admin"})
    callers: dict[str, dict[str, str]] = {"anonymous": {}}
    callers.update({role: {"Authorization": f"Bearer {tokens[role]}"} for role in ROLES})
    async with running_api(tmp_path) as runtime:
        assert runtime.api_server is not None
        app: FastAPI = runtime.api_server.config.app
        table = routes(app)
        assert len(table) > 30
        failures = []
        async with httpx.AsyncClient(base_url=runtime.api_url, timeout=30) as client:
            for method, path in table:
                if method == "WEBSOCKET":
                    continue
                public = (method, path) in DOCUMENTED_PUBLIC
                need = None if public else RANK[documented_role(method, path)]
                for caller, headers in callers.items():
                    response = await client.request(
                        method,
                        concrete(path),
                        headers=headers,
                        json={} if method in ("POST", "PUT") else None,
                    )
                    got = response.status_code
                    if public or (caller != "anonymous" and RANK[caller] >= need):  # type: ignore[operator]
                        ok = got not in (401, 403)
                    elif caller == "anonymous":
                        ok = got == 401 or (got == 303 and path == "/{path:path}")
                    else:
                        ok = got == 403
                    if got in (401, 403):
                        ok = ok and "detail" in response.json()
                    if not ok:
                        failures.append(f"{method} {path} as {caller}: {got}")
        assert not failures, "\n".join(failures)
        url = runtime.api_url.replace("http://", "ws://") + "/ws/metrics"
        for caller, headers in callers.items():
            allowed = caller != "anonymous" and RANK[caller] >= RANK["viewer"]
            try:
                async with websockets.connect(url, additional_headers=headers):
                    connected = True
            except websockets.InvalidStatus as exc:
                assert exc.response.status_code == 403
                connected = False
            assert connected is allowed, caller


def test_openapi_declares_401_and_403_on_guarded_routes(app: FastAPI) -> None:
    schema = app.openapi()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (method.upper(), path) in DOCUMENTED_PUBLIC:
                continue
            if not {"401", "403"} <= set(operation["responses"]):
                missing.append(f"{method.upper()} {path}")
    assert not missing
