"""Where a request comes from (believing forwarded headers only from trusted proxies),
and which ``Host`` and ``Origin`` values the API accepts."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ClientInfo", "HostPolicy", "IPNetwork", "client_info", "is_loopback_host"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback_host(host: str) -> bool:
    """Whether a bind address or host name is loopback only."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ClientInfo:
    #: The TCP peer.
    peer: str
    #: The client as far as trusted proxies say (the peer when there are none).
    address: str
    #: ``https`` when the browser's connection is TLS (here or at a trusted proxy).
    scheme: str
    #: Whether the peer is one of the trusted proxies.
    via_trusted_proxy: bool


def _in(address: str, networks: Iterable[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_info(
    *, peer: str, scheme: str, headers: Mapping[str, str], trusted: list[IPNetwork]
) -> ClientInfo:
    """The client behind any trusted proxies: the rightmost ``X-Forwarded-For`` entry
    that is not itself a trusted proxy (entries to its left are the client's own say)."""
    if not trusted or not _in(peer, trusted):
        return ClientInfo(peer=peer, address=peer, scheme=scheme, via_trusted_proxy=False)
    address = peer
    hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        address = hop
        if not _in(hop, trusted):
            break
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return ClientInfo(
        peer=peer,
        address=address,
        scheme=proto if proto in ("http", "https") else scheme,
        via_trusted_proxy=True,
    )


def _split_host(value: str) -> tuple[str, str]:
    """``host[:port]`` (``[v6]:port`` too) -> (lower-case host, port text)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest.removeprefix(":")
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, port
    return value, ""


class HostPolicy:
    """The ``Host`` names the API answers to (against DNS rebinding) and the origins
    a browser may call it from (same origin, plus an explicit allow-list)."""

    def __init__(self, *, bind_host: str, allowed_hosts: list[str], allowed_origins: list[str]):
        names = set(_LOOPBACK_NAMES)
        bind = bind_host.strip("[]").lower()
        if bind not in ("0.0.0.0", "::", ""):
            names.add(bind)
        self._any = "*" in allowed_hosts
        self._names = names | {h.lower() for h in allowed_hosts if not h.startswith(".")}
        self._suffixes = tuple(h.lower() for h in allowed_hosts if h.startswith("."))
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    def allows_host(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        if self._any:
            return True
        host, port = _split_host(host_header)
        if port and not port.isdigit():
            return False
        return host in self._names or (bool(self._suffixes) and host.endswith(self._suffixes))

    def allows_origin(self, origin: str, *, scheme: str, host_header: str) -> bool:
        """Same origin as the request (scheme and host), or allow-listed."""
        normalised = origin.rstrip("/").lower()
        if normalised in self.allowed_origins:
            return True
        parts = urlsplit(normalised)
        return parts.scheme == scheme and parts.netloc == host_header.strip().lower()
