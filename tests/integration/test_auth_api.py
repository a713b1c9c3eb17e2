"""Authentication in front of the API: sessions, tokens, roles, CSRF, Host and Origin
checks, CORS, the WebSocket, /metrics, SSO headers, masking and the audit log.

Every test runs a real API (uvicorn on loopback) over a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.auth_helpers import PASSWORD, login, running_api, seed

USERS = {"ada": "admin", "eve": "editor", "vic": "viewer"}
SILENCE = {
    "matchers": [{"name": "service", "value": "iris"}],
    "starts_at": 1_700_000_000,
    "ends_at": "2099-01-01T00:00:00Z",
    "comment": "maintenance",
}


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws/metrics"


async def test_anonymous_callers_get_401_json_and_public_routes_stay_open(
    tmp_path: Path,
) -> None:
    await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        for path in ("/api/v1/services", "/api/v1/health", "/metrics", "/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.json()["detail"].startswith("authentication required")
            assert response.headers["www-authenticate"].startswith("Bearer")
        health = await client.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        page = await client.get("/overview?x=1")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/overview%3Fx%3D1"
        state = (await client.get("/api/v1/auth/state")).json()
        assert state["enabled"] is True and state["user"] is None
        assert (await client.get("/login")).status_code not in (401, 403)


async def test_login_cookie_flags_session_and_logout(tmp_path: Path) -> None:
    await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        response = await client.post(
            "/api/v1/auth/login", json={"username": "vic", "password": PASSWORD}
        )
        assert response.status_code == 200
        cookie = response.headers["set-cookie"].lower()
        assert "mm_session=" in cookie and "httponly" in cookie
        assert "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP on loopback
        body = response.json()
        assert body["user"] == {"name": "vic", "role": "viewer", "method": "session"}
        csrf = body["csrf_token"]
        assert (await client.get("/api/v1/services")).status_code == 200
        assert (await client.get("/health")).json()["components"]  # detail for viewers
        assert (await client.post("/api/v1/auth/logout")).status_code == 403  # no CSRF token
        out = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 200 and out.json()["user"] is None
        assert (await client.get("/api/v1/services")).status_code == 401


async def test_secure_cookie_behind_a_trusted_tls_proxy(tmp_path: Path) -> None:
    await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    async with (
        running_api(tmp_path, auth={"trusted_proxies": ["127.0.0.1"]}) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        response = await client.post(
            "/api/v1/auth/login",
            json={"username": "vic", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("__host-mm_session=") and "secure" in cookie


async def test_wrong_passwords_are_rate_limited_and_audited(tmp_path: Path) -> None:
    await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    async with (
        running_api(tmp_path, auth={"login_attempts": 3}) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        answers = []
        for name in ("vic", "vic", "nobody"):
            response = await client.post(
                "/api/v1/auth/login", json={"username": name, "password": "wrong password!"}
            )
            answers.append((response.status_code, response.json()["detail"]))
        # An unknown user and a wrong password look the same.
        assert set(answers) == {(401, "wrong user name or password")}
        limited = await client.post(
            "/api/v1/auth/login", json={"username": "vic", "password": PASSWORD}
        )
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        missing = await client.post("/api/v1/auth/login", json={"username": "vic"})
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["loc"] == ["body", "password"]
        token_headers = {"Authorization": f"Bearer {runtime.settings.admin_token}"}
        assert runtime.api_server is not None
        outcomes = [
            e.outcome
            for e in await runtime_auth(runtime).store.list_audit(limit=20)
            if e.action == "login"
        ]
        assert outcomes.count("failed") == 3 and "rate-limited" in outcomes
        del token_headers


def runtime_auth(runtime: Any) -> Any:
    return runtime.api_server.config.app.state.auth


async def test_roles_and_csrf_on_writes(tmp_path: Path) -> None:
    tokens = await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    silence = SILENCE
    async with running_api(tmp_path) as runtime:
        base = runtime.api_url
        async with httpx.AsyncClient(base_url=base) as client:
            csrf = await login(client, "eve")
            refused = await client.post("/api/v1/alerts/silences", json=silence)
            assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
            wrong = await client.post(
                "/api/v1/alerts/silences", json=silence, headers={"X-CSRF-Token": "guess"}
            )
            assert wrong.status_code == 403
            made = await client.post(
                "/api/v1/alerts/silences", json=silence, headers={"X-CSRF-Token": csrf}
            )
            assert made.status_code == 201, made.text
            assert (await client.get("/api/v1/users")).status_code == 403  # editors manage no users

        def bearer(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[role]}"}

        async with httpx.AsyncClient(base_url=base) as client:
            viewer = await client.post(
                "/api/v1/alerts/silences", json=silence, headers=bearer("viewer")
            )
            assert viewer.status_code == 403 and viewer.json() == {
                "detail": "this needs the editor role"
            }
            editor = await client.post(
                "/api/v1/alerts/silences", json=silence, headers=bearer("editor")
            )
            assert editor.status_code == 201  # tokens need no CSRF token: browsers cannot send them
            assert (await client.get("/api/v1/users", headers=bearer("admin"))).status_code == 200
            bad = await client.get("/api/v1/services", headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401 and bad.json() == {"detail": "invalid token"}
            basic = await client.get("/api/v1/services", headers={"Authorization": "Basic eA=="})
            assert basic.status_code == 401
            scrape = bearer("metrics")
            assert (await client.get("/metrics", headers=scrape)).status_code == 200
            assert (await client.get("/api/v1/services", headers=scrape)).status_code == 403


async def test_admin_token_from_the_environment_is_never_stored_or_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "automation-" + "x7" * 16
    monkeypatch.setenv("MODELMONITOR_ADMIN_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        assert (await client.get("/api/v1/services")).status_code == 401  # auth is on
        headers = {"Authorization": f"Bearer {secret}"}
        made = await client.post(
            "/api/v1/users",
            json={"name": "ops", "role": "viewer", "password": PASSWORD},
            headers=headers,
        )
        assert made.status_code == 201
        near = {"Authorization": f"Bearer {secret[:-1]}y"}
        assert (await client.get("/api/v1/users", headers=near)).status_code == 401
        audit = (await client.get("/api/v1/audit", headers=headers)).json()["entries"]
        assert audit[0]["actor"] == "admin-token" and audit[0]["action"] == "user.add"
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("modelmonitor.db*"))
    assert secret.encode() not in stored
    assert secret not in caplog.text
    assert "repr" not in str(runtime.settings.admin_token) and secret not in repr(runtime.settings)


async def test_tokens_are_shown_once_stored_hashed_expire_and_revoke(tmp_path: Path) -> None:
    tokens = await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url, headers=admin) as client,
    ):
        created = await client.post(
            "/api/v1/tokens", json={"name": "grafana", "role": "viewer", "expires_in": "1s"}
        )
        assert created.status_code == 201
        secret, info = created.json()["token"], created.json()["info"]
        assert secret.startswith("mmt_") and len(secret) > 40
        listing = (await client.get("/api/v1/tokens")).text
        assert secret not in listing and info["id"] in listing
        use = {"Authorization": f"Bearer {secret}"}
        assert (await client.get("/api/v1/services", headers=use)).status_code == 200
        used = {t["id"]: t for t in (await client.get("/api/v1/tokens")).json()["tokens"]}
        assert used[info["id"]]["last_used_at"] is not None
        await asyncio.sleep(1.2)
        expired = await client.get("/api/v1/services", headers=use)
        assert expired.status_code == 401 and expired.json()["detail"] == "the token has expired"
        bad = await client.post("/api/v1/tokens", json={"name": "x", "role": "root"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "role"]
        bad = await client.post(
            "/api/v1/tokens", json={"name": "x", "role": "viewer", "expires_in": "soon"}
        )
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "expires_in"]
        viewer_id = next(t["id"] for t in used.values() if t["name"] == "viewer")
        assert (await client.delete(f"/api/v1/tokens/{viewer_id}")).status_code == 204
        gone = {"Authorization": f"Bearer {tokens['viewer']}"}
        assert (await client.get("/api/v1/services", headers=gone)).status_code == 401
        assert (await client.delete(f"/api/v1/tokens/{viewer_id}")).status_code == 404
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("modelmonitor.db*"))
    assert secret.encode() not in stored and tokens["admin"].encode() not in stored


async def test_sessions_expire_when_idle_and_after_their_lifetime(tmp_path: Path) -> None:
    await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    async with (
        running_api(tmp_path, auth={"session_idle_timeout": "1s", "session_ttl": "3s"}) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        await login(client, "vic")
        await asyncio.sleep(1.3)
        idle = await client.get("/api/v1/services")
        assert idle.status_code == 401 and "expired" in idle.json()["detail"]
        await login(client, "vic")
        started = time.monotonic()
        # The cookie is sent by hand: the server, not the browser's Max-Age, ends it.
        cookie = {"Cookie": f"mm_session={client.cookies['mm_session']}"}
        client.cookies.clear()
        # Active (never idle for a second): the session lives until its 3 s are up.
        while (answer := await client.get("/api/v1/services", headers=cookie)).status_code == 200:
            await asyncio.sleep(0.3)
            assert time.monotonic() - started < 4.5, "the session outlived session_ttl"
        assert answer.status_code == 401 and "expired" in answer.json()["detail"]
        assert time.monotonic() - started > 2.5


async def test_users_api_validates_and_keeps_an_admin(tmp_path: Path) -> None:
    tokens = await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users={"ada": "admin"})
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url, headers=admin) as client,
    ):
        short = await client.post(
            "/api/v1/users", json={"name": "bo", "role": "viewer", "password": "short"}
        )
        assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "password"]
        role = await client.post(
            "/api/v1/users", json={"name": "bo", "role": "owner", "password": PASSWORD}
        )
        assert role.status_code == 422 and role.json()["detail"][0]["loc"] == ["body", "role"]
        name = await client.post(
            "/api/v1/users", json={"name": "-bad", "role": "viewer", "password": PASSWORD}
        )
        assert name.status_code == 422 and name.json()["detail"][0]["loc"] == ["body", "name"]
        made = await client.post(
            "/api/v1/users", json={"name": "bo", "role": "viewer", "password": PASSWORD}
        )
        assert made.status_code == 201 and made.json()["role"] == "viewer"
        assert "password" not in made.text and "argon2" not in made.text
        again = await client.post(
            "/api/v1/users", json={"name": "bo", "role": "viewer", "password": PASSWORD}
        )
        assert again.status_code == 409
        assert (await client.delete("/api/v1/users/ada")).status_code == 409  # the last admin
        demote = await client.put("/api/v1/users/ada", json={"role": "viewer"})
        assert demote.status_code == 409
        promote = await client.put("/api/v1/users/bo", json={"role": "admin"})
        assert promote.status_code == 200 and promote.json()["role"] == "admin"
        assert (await client.delete("/api/v1/users/ada")).status_code == 204
        assert (await client.put("/api/v1/users/ada", json={"role": "viewer"})).status_code == 404
        listed = (await client.get("/api/v1/users")).json()["users"]
        assert [(u["name"], u["role"]) for u in listed] == [("bo", "admin")]


async def test_host_allow_list_stops_dns_rebinding(tmp_path: Path) -> None:
    async with running_api(tmp_path, auth={"allowed_hosts": ["mm.example.com"]}) as runtime:
        port = runtime.api_url.rsplit(":", 1)[1]
        async with httpx.AsyncClient(base_url=runtime.api_url) as client:
            rebound = await client.get("/api/v1/services", headers={"Host": f"evil.example:{port}"})
            assert rebound.status_code == 421 and "Host" in rebound.json()["detail"]
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", "mm.example.com"):
                ok = await client.get("/api/v1/services", headers={"Host": host})
                assert ok.status_code == 200, host
            # Probes may use any address; anonymous callers get the status only.
            probe = await client.get("/health", headers={"Host": "10.1.2.3:8000"})
            assert probe.status_code == 200
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(
                ws_url(runtime.api_url), additional_headers={"Host": "evil.example"}
            ):
                pass


async def test_cross_site_writes_and_websockets_are_refused_even_with_auth_off(
    tmp_path: Path,
) -> None:
    async with running_api(tmp_path) as runtime:
        base = runtime.api_url
        async with httpx.AsyncClient(base_url=base) as client:
            state = (await client.get("/api/v1/auth/state")).json()
            assert state["enabled"] is False and state["user"]["method"] == "none"
            assert (await client.get("/api/v1/services")).status_code == 200  # local mode
            foreign = await client.post(
                "/api/v1/alerts/silences",
                data={"comment": "x"},
                headers={"Origin": "http://evil.example"},
            )
            assert foreign.status_code == 403
            assert foreign.json() == {"detail": "cross-origin request refused"}
            fetch_meta = await client.post(
                "/api/v1/alerts/silences", json={}, headers={"Sec-Fetch-Site": "cross-site"}
            )
            assert fetch_meta.status_code == 403
            same = await client.post(
                "/api/v1/alerts/silences",
                json=SILENCE,
                headers={"Origin": base},
            )
            assert same.status_code == 201
            # Reading is harmless, but no CORS header lets a foreign page see it.
            read = await client.get("/api/v1/services", headers={"Origin": "http://evil.example"})
            assert "access-control-allow-origin" not in read.headers
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(base), origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        async with websockets.connect(ws_url(base), origin=base) as ws:  # type: ignore[arg-type]
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            assert message["type"] == "snapshot"


async def test_cors_only_for_allow_listed_origins(tmp_path: Path) -> None:
    friend = "https://ops.example.com"
    async with (
        running_api(tmp_path, auth={"allowed_origins": [friend]}) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = await client.options(
            "/api/v1/alerts/silences", headers={"Origin": friend, **preflight}
        )
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == friend
        assert "X-CSRF-Token" in allowed.headers["access-control-allow-headers"]
        other = await client.options(
            "/api/v1/alerts/silences", headers={"Origin": "https://evil.example", **preflight}
        )
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        read = await client.get("/api/v1/services", headers={"Origin": friend})
        assert read.headers["access-control-allow-origin"] == friend
        assert read.headers["access-control-allow-credentials"] == "true"
        assert read.headers["cache-control"] == "no-store"
        assert read.headers["x-frame-options"] == "DENY"


async def test_websocket_needs_a_viewer(tmp_path: Path) -> None:
    tokens = await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    async with running_api(tmp_path) as runtime:
        url = ws_url(runtime.api_url)
        for headers in ({}, {"Authorization": f"Bearer {tokens['metrics']}"}):
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(url, additional_headers=headers):
                    pass
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        async with websockets.connect(url, additional_headers=viewer) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "snapshot"
        async with httpx.AsyncClient(base_url=runtime.api_url) as client:
            await login(client, "vic")
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "snapshot"


async def test_trusted_proxy_headers_only_from_configured_addresses(tmp_path: Path) -> None:
    sso = {
        "proxy_auth": True,
        "group_roles": {"ml-ops": "editor", "staff": "viewer"},
    }
    headers = {"X-Forwarded-User": "carol", "X-Forwarded-Groups": "staff,ml-ops"}
    async with (
        running_api(tmp_path, auth={**sso, "trusted_proxies": ["127.0.0.1"]}) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        state = (await client.get("/api/v1/auth/state", headers=headers)).json()
        assert state["user"] == {"name": "carol", "role": "editor", "method": "proxy"}
        unmapped = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "guests"}
        assert (await client.get("/api/v1/services", headers=unmapped)).status_code == 401
        assert (await client.get("/api/v1/services")).status_code == 401
    async with (
        running_api(tmp_path, auth={**sso, "trusted_proxies": ["10.9.9.9"]}) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        # The same headers from an address that is not a trusted proxy count for nothing.
        assert (await client.get("/api/v1/services", headers=headers)).status_code == 401


async def test_channel_secrets_and_header_values_are_masked(tmp_path: Path) -> None:
    channels = {
        "hook": {
            "type": "webhook",
            "url": "http://127.0.0.1:1/hook",
            "allow_private": True,
            "headers": {"Authorization": "Bearer very-secret-value", "X-Team": "ml"},
        }
    }
    async with (
        running_api(tmp_path, notification_channels=channels) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        response = await client.get("/api/v1/alerts/channels")
    assert response.status_code == 200
    assert "very-secret-value" not in response.text
    (channel,) = response.json()["channels"]
    assert channel["config"]["headers"] == {"Authorization": "***", "X-Team": "***"}


async def test_changes_are_audited_with_before_and_after(tmp_path: Path) -> None:
    tokens = await seed(f"sqlite:///{tmp_path / 'modelmonitor.db'}", users=USERS)
    rule = {"name": "slow", "service": "iris", "metric": "latency_p99", "threshold": 1}
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        editor = {"Authorization": f"Bearer {tokens['editor']}"}
        made = (await client.post("/api/v1/alerts/rules", json=rule, headers=editor)).json()
        changed = {**rule, "threshold": 2}
        put = await client.put(f"/api/v1/alerts/rules/{made['id']}", json=changed, headers=editor)
        assert put.status_code == 200
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        denied = await client.delete(f"/api/v1/alerts/rules/{made['id']}", headers=viewer)
        assert denied.status_code == 403
        assert (await client.get("/api/v1/audit", headers=editor)).status_code == 403
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        entries = (await client.get("/api/v1/audit", headers=admin)).json()["entries"]
    by_action = {e["action"]: e for e in entries}
    update = by_action["update_rule"]
    assert update["actor"] == "token:editor" and update["role"] == "editor"
    assert update["target"] == made["id"] and update["source"] == "127.0.0.1"
    assert update["before"]["threshold"] == 1 and update["after"]["threshold"] == 2
    assert update["outcome"] == "ok 200"
    assert by_action["create_rule"]["after"]["name"] == "slow"
    assert by_action["delete_rule"]["outcome"] == "denied 403"
    assert by_action["delete_rule"]["actor"] == "token:viewer"
    assert by_action["token.create"]["actor"] == "test-seed"
