"""Who calls a model: a configured header, or a keyed hash of the caller's API key.

API keys are turned into ``key:`` plus twelve hex digits of an HMAC-SHA256 under a
secret of the deployment (see :func:`load_secret`); the key itself never leaves
this module. The client address comes from ``X-Forwarded-For``/``Forwarded`` only
when the connection's peer is a configured trusted proxy.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from modelmonitor.protocols.config import ConsumerConfig

__all__ = ["KEY_HEADERS", "ConsumerIdentifier", "hash_key", "load_secret"]

#: Request headers that carry an API key (lower case).
KEY_HEADERS = (b"authorization", b"api-key", b"x-api-key")
_FORWARDED = b"forwarded"
_FOR = re.compile(rb'for="?\[?([^";,\]]+)')
_CACHE_LIMIT = 4096
_SECRET_FILE = "consumer-secret"
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def hash_key(secret: bytes, key: bytes) -> str:
    """The consumer name of an API key: ``key:`` and 12 hex digits of HMAC-SHA256."""
    return "key:" + hmac.new(secret, key, hashlib.sha256).hexdigest()[:12]


def load_secret(data_dir: Path, given: str | None = None) -> bytes:
    """The key-hashing secret: ``given`` (settings or env), else ``data_dir``'s file,
    created with 32 random bytes (mode 0600) when absent."""
    if given:
        return given.encode()
    path = data_dir / _SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ValueError(f"{path} is not a hex secret; remove it to make a new one") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret.hex() + "\n")
    return secret


def _credential(name: bytes, value: bytes) -> bytes:
    """The secret part of a key header (``Bearer sk-...`` -> ``sk-...``)."""
    if name == b"authorization":
        scheme, _, rest = value.strip().partition(b" ")
        return rest.strip() or scheme
    return value.strip()


class ConsumerIdentifier:
    """Names the consumer of one request from its watched headers."""

    __slots__ = ("_cache", "_header_names", "_labels", "_secret", "_trusted", "api_keys", "watched")

    def __init__(self, config: ConsumerConfig, *, secret: bytes) -> None:
        self._header_names = [name.lower().encode("latin-1") for name in config.headers]
        self.api_keys = config.api_keys
        self._labels = dict(config.labels)
        self._secret = secret
        self._trusted: list[_IPNetwork] = [
            ipaddress.ip_network(text, strict=False) for text in config.trusted_proxies
        ]
        self._cache: dict[bytes, str] = {}
        watched = list(self._header_names)
        if self.api_keys:
            watched += KEY_HEADERS
        if self._trusted:
            watched.append(_FORWARDED)
        #: Lower-case header names the proxy must hand to :meth:`consumer`.
        self.watched = frozenset(watched)

    @property
    def trusts_proxies(self) -> bool:
        return bool(self._trusted)

    def consumer(self, headers: Mapping[bytes, bytes]) -> str:
        """The configured header's value, else the API key's label or hash, else ``""``."""
        for name in self._header_names:
            value = headers.get(name)
            if value:
                return value.decode("utf-8", "replace")[:200]
        if not self.api_keys:
            return ""
        for name in KEY_HEADERS:
            value = headers.get(name)
            if value:
                return self._key_name(_credential(name, value))
        return ""

    def identify(
        self, headers: Mapping[bytes, bytes], peer: str, forwarded_for: Sequence[bytes]
    ) -> tuple[str, str]:
        """(consumer, client address or "" for the peer) of one request head."""
        consumer = self.consumer(headers)
        if not self._trusted or not (forwarded_for or _FORWARDED in headers):
            return consumer, ""
        return consumer, self.client(peer, forwarded_for, headers.get(_FORWARDED))

    def _key_name(self, key: bytes) -> str:
        name = self._cache.get(key)
        if name is None:
            hashed = hash_key(self._secret, key)
            name = self._labels.get(hashed, hashed)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = name
        return name

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def client(self, peer: str, forwarded_for: Sequence[bytes], forwarded: bytes | None) -> str:
        """The client address: ``peer``, or when ``peer`` is a trusted proxy, the
        nearest untrusted address of the forwarding chain (right to left)."""
        if not self._trusted or not self._is_trusted(peer):
            return peer
        chain: list[str] = []
        if forwarded_for:
            for value in forwarded_for:
                chain += [part.strip() for part in value.decode("latin-1").split(",")]
        elif forwarded:
            chain = [m.decode("latin-1") for m in _FOR.findall(forwarded)]
        for address in reversed(chain):
            if address and not self._is_trusted(address):
                return address
        return chain[0] if chain and chain[0] else peer
