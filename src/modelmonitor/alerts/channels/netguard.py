"""SSRF guard for outgoing webhooks: refuse targets on private networks.

A webhook URL resolving to a loopback, private (RFC 1918, ULA), link-local
(169.254/16, e.g. cloud metadata), shared, multicast, reserved or unspecified
address is refused unless the channel sets ``allow_private: true``. Every
address the name resolves to must be public. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from modelmonitor.alerts.channels.base import DeliveryError

__all__ = ["check_target", "is_public"]


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip in ipaddress.ip_network("100.64.0.0/10")
    )


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise a non-retryable :class:`DeliveryError` when ``url`` may not be called."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"refused: {url!r} is not an http(s) URL", retryable=False)
    if allow_private:
        return
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryError(f"cannot resolve {host!r}: {exc}", retryable=True) from None
    for info in infos:
        address = str(info[4][0])
        if not is_public(address):
            raise DeliveryError(
                f"refused: {host} resolves to the non-public address {address} "
                "(set allow_private: true on the channel to allow it)",
                retryable=False,
            )
