"""The auth package's pure parts: forwarded addresses, Host/Origin policy, login rate
limits, secret masking, group mapping, password policy and settings validation."""

from __future__ import annotations

import ipaddress

import pytest

from modelmonitor.auth.audit import mask_secrets
from modelmonitor.auth.credentials import hash_secret, new_token, same_secret
from modelmonitor.auth.network import HostPolicy, client_info, is_loopback_host
from modelmonitor.auth.oidc import safe_next
from modelmonitor.auth.passwords import check_password_policy, hash_password, verify_password
from modelmonitor.auth.ratelimit import LoginLimiter
from modelmonitor.auth.roles import Role
from modelmonitor.auth.sso import role_for_groups, split_groups
from modelmonitor.settings import AuthConfig, ConfigError, load_settings
from tests.alert_helpers import SimClock

TRUSTED = [ipaddress.ip_network("10.0.0.0/8")]


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    spoofed = {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"}
    direct = client_info(peer="203.0.113.9", scheme="http", headers=spoofed, trusted=TRUSTED)
    assert (direct.address, direct.scheme, direct.via_trusted_proxy) == (
        "203.0.113.9",
        "http",
        False,
    )
    # The client's own X-Forwarded-For entries (left) are not believed; the rightmost
    # address that is not a trusted proxy is the client.
    chain = {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.1.1.1", "x-forwarded-proto": "https"}
    proxied = client_info(peer="10.2.2.2", scheme="http", headers=chain, trusted=TRUSTED)
    assert (proxied.address, proxied.scheme, proxied.via_trusted_proxy) == (
        "198.51.100.7",
        "https",
        True,
    )


def test_host_policy() -> None:
    policy = HostPolicy(
        bind_host="0.0.0.0", allowed_hosts=["mm.example.com", ".corp.example"], allowed_origins=[]
    )
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "MM.example.com", "a.corp.example"):
        assert policy.allows_host(host), host
    for host in (None, "", "evil.example", "0.0.0.0:8000", "corp.example.evil", "x:y"):
        assert not policy.allows_host(host), host
    assert policy.allows_origin(
        "http://localhost:8000", scheme="http", host_header="localhost:8000"
    )
    assert not policy.allows_origin("http://evil:8000", scheme="http", host_header="localhost:8000")
    assert not policy.allows_origin(
        "https://localhost:8000", scheme="http", host_header="localhost:8000"
    )
    assert HostPolicy(bind_host="10.0.0.5", allowed_hosts=[], allowed_origins=[]).allows_host(
        "10.0.0.5:8000"
    )
    assert is_loopback_host("127.0.0.2") and is_loopback_host("::1")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("example.com")


def test_login_limiter_per_key_and_window() -> None:
    clock = SimClock()
    limiter = LoginLimiter(attempts=3, window=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("user:a", "address:x") == 0
        limiter.failed("user:a", "address:x")
    assert limiter.retry_after("user:a") == pytest.approx(60)
    assert limiter.retry_after("address:x", "user:b") == pytest.approx(60)
    assert limiter.retry_after("user:b") == 0
    clock.advance(61)
    assert limiter.retry_after("user:a", "address:x") == 0


def test_secrets_are_masked_in_summaries() -> None:
    masked = mask_secrets(
        {
            "name": "hook",
            "config": {
                "password": "hunter2",
                "webhook_url": "https://hooks.slack.com/x",
                "headers": {"Authorization": "Bearer t", "X-Team": "ml"},
                "api_key": None,
            },
            "note": "x" * 600,
        }
    )
    assert masked["config"] == {
        "password": "***",
        "webhook_url": "***",
        "headers": {"Authorization": "***", "X-Team": "***"},
        "api_key": None,
    }
    assert masked["name"] == "hook" and len(masked["note"]) < 510


def test_groups_to_roles() -> None:
    config = AuthConfig(group_roles={"ops": "admin", "ml": "editor"}, default_sso_role="viewer")
    assert role_for_groups(config, ["ml", "ops"]) is Role.ADMIN
    assert role_for_groups(config, ["other"]) is Role.VIEWER
    assert role_for_groups(AuthConfig(group_roles={"ml": "editor"}), ["x"]) is None
    assert split_groups("a, b c,,") == ["a", "b", "c"]


async def test_passwords_and_tokens() -> None:
    with pytest.raises(ValueError, match="at least 12"):
        check_password_policy("short", username="bo")
    with pytest.raises(ValueError, match="user name"):
        check_password_policy("longusername1", username="LongUserName1")
    hashed = await hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert await verify_password(hashed, "correct horse battery")
    assert not await verify_password(hashed, "correct horse batterY")
    assert not await verify_password(None, "anything at all")
    token = new_token()
    assert token.startswith("mmt_") and token != new_token()
    assert hash_secret(token) != token and len(hash_secret(token)) == 64
    assert same_secret("abc", "abc") and not same_secret("abc", "abd")


def test_next_paths_stay_on_site() -> None:
    assert safe_next("/alerts?x=1") == "/alerts?x=1"
    for bad in (None, "", "https://evil.example", "//evil.example", "/\\evil", "alerts"):
        assert safe_next(bad) == "/"


def test_auth_settings_fail_fast() -> None:
    with pytest.raises(ConfigError, match="proxy_auth needs trusted_proxies"):
        load_settings(auth={"proxy_auth": True})
    with pytest.raises(ConfigError, match="allowed origin"):
        load_settings(auth={"allowed_origins": ["ops.example.com"]})
    with pytest.raises(ConfigError, match=r"auth\.trusted_proxies\.0"):
        load_settings(auth={"trusted_proxies": ["not-an-ip"]})
    with pytest.raises(ConfigError, match="admin_token"):
        load_settings(admin_token="short")
    with pytest.raises(ConfigError, match=r"auth\.group_roles\.ml"):
        load_settings(auth={"group_roles": {"ml": "owner"}})
