"""Single sign-on through OpenID Connect, against a real provider the test starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alert_helpers import serve
from tests.auth_helpers import running_api
from tests.oidc_provider import OIDCProvider


@pytest.fixture
async def provider() -> AsyncIterator[tuple[OIDCProvider, str]]:
    found = OIDCProvider()
    async with serve(found.app()) as url:
        yield found, url


def sso(issuer: str, provider: OIDCProvider) -> dict[str, Any]:
    return {
        "oidc": {
            "issuer": issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            "scopes": ["openid", "email", "groups"],
        },
        "group_roles": {"ml": "editor", "admins": "admin"},
    }


async def sign_in(client: httpx.AsyncClient, next_path: str = "/alerts") -> httpx.Response:
    """Follow the browser's way: API -> provider -> callback."""
    start = await client.get("/api/v1/auth/oidc/login", params={"next": next_path})
    assert start.status_code == 303
    at_provider = await client.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    return await client.get(at_provider.headers["location"])


async def test_oidc_login_maps_groups_to_a_role_and_opens_a_session(
    tmp_path: Path, provider: tuple[OIDCProvider, str]
) -> None:
    found, issuer = provider
    async with (
        running_api(tmp_path, auth=sso(issuer, found)) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        assert (await client.get("/api/v1/services")).status_code == 401  # SSO turns auth on
        state = (await client.get("/api/v1/auth/state")).json()
        assert "oidc" in state["methods"]
        callback = await sign_in(client)
        assert callback.status_code == 200 and 'url=/alerts"' in callback.text
        cookie = callback.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        me = (await client.get("/api/v1/auth/state")).json()["user"]
        assert me == {"name": "carol@example.com", "role": "editor", "method": "session"}
        assert (await client.get("/api/v1/services")).status_code == 200
        assert (await client.get("/api/v1/users")).status_code == 403
        assert found.token_requests and all(len(r["verifier"]) >= 43 for r in found.token_requests)


async def test_oidc_refuses_what_does_not_verify(
    tmp_path: Path, provider: tuple[OIDCProvider, str]
) -> None:
    found, issuer = provider
    async with (
        running_api(tmp_path, auth=sso(issuer, found)) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        for flaw, status in (
            ("wrong_nonce", 401),
            ("audience", 401),
            ("sign_with_other_key", 401),
            ("groups", 403),
        ):
            fresh = OIDCProvider(key=found.key)
            found.wrong_nonce = fresh.wrong_nonce
            found.audience = fresh.audience
            found.sign_with_other_key = fresh.sign_with_other_key
            found.person = dict(fresh.person)
            if flaw == "audience":
                found.audience = "someone-else"
            elif flaw == "groups":
                found.person["groups"] = ["guests"]
            else:
                setattr(found, flaw, True)
            answer = await sign_in(client)
            assert answer.status_code == status, (flaw, answer.text)
            assert "detail" in answer.json()
            assert (await client.get("/api/v1/services")).status_code == 401, flaw
        # A callback replayed (or forged) with an unknown state is refused.
        replay = await client.get(
            "/api/v1/auth/oidc/callback", params={"code": "x", "state": "forged"}
        )
        assert replay.status_code == 400
        # An open redirect through ``next`` is not possible.
        found.audience = None
        found.person["groups"] = ["ml"]
        done = await sign_in(client, next_path="//evil.example/x")
        assert done.status_code == 200 and 'url=/"' in done.text


async def test_oidc_routes_answer_404_when_not_configured(tmp_path: Path) -> None:
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        assert (await client.get("/api/v1/auth/oidc/login")).status_code == 404
