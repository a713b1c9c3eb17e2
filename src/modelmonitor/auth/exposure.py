"""The start-up check: an API reachable beyond loopback must have authentication."""

from __future__ import annotations

from modelmonitor.auth.network import is_loopback_host
from modelmonitor.auth.service import AuthService
from modelmonitor.settings import Settings, parse_host_port

__all__ = ["exposure_problem"]


async def exposure_problem(settings: Settings, service: AuthService) -> str | None:
    """One line saying how to set authentication up, or None when starting is safe."""
    host, port = parse_host_port(settings.api)
    if is_loopback_host(host) or settings.auth.insecure_no_auth or await service.enabled():
        return None
    return (
        f"the API would listen on {host}:{port}, beyond loopback, with no authentication: "
        "create a user (`modelmonitor users add NAME --role admin`), set "
        "MODELMONITOR_ADMIN_TOKEN, configure single sign-on (auth.oidc or auth.proxy_auth), "
        "or pass --insecure-no-auth"
    )
