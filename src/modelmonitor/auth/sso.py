"""Single sign-on helpers: SSO groups to a role, and trusted reverse-proxy headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelmonitor.auth.roles import Role
from modelmonitor.settings import AuthConfig

__all__ = ["role_for_groups", "split_groups"]


def split_groups(value: str) -> list[str]:
    """oauth2-proxy sends groups comma-separated; some proxies use spaces."""
    return [group.strip() for group in value.replace(" ", ",").split(",") if group.strip()]


def role_for_groups(config: AuthConfig, groups: Iterable[str]) -> Role | None:
    """The highest role any of ``groups`` maps to, else the default SSO role (or None)."""
    mapping: Mapping[str, str] = config.group_roles
    roles = [Role.parse(mapping[group]) for group in groups if group in mapping]
    if roles:
        return max(roles)
    return Role.parse(config.default_sso_role) if config.default_sso_role else None
