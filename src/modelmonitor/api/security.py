"""The API's front door (pure ASGI): ``Host`` allow-list, cross-origin rules, CORS,
and security headers, before any route runs.

- ``Host`` must be a loopback name, the bound address, or allow-listed: a page
  that rebinds its own DNS name to 127.0.0.1 gets 421, so a loopback-only API
  with authentication off is not reachable from a web page.
- Writes and WebSocket handshakes carrying a foreign ``Origin`` (or
  ``Sec-Fetch-Site: cross-site``) get 403, whatever credentials they carry: a
  form or script on another site can change nothing, logged in or not.
- CORS is off unless ``auth.allowed_origins`` lists the calling origin.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from modelmonitor.auth.network import HostPolicy, IPNetwork, client_info

__all__ = ["SecurityMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: Reachable with any ``Host``: orchestrators probe pod addresses. It shows no detail
#: to anonymous callers.
_ANY_HOST_PATHS = frozenset({"/health"})
_CORS_HEADERS = "Authorization, Content-Type, X-CSRF-Token"
_CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        if key == "host" and key in headers:
            headers["host"] = "\x00"  # two Host headers: never a match
            continue
        headers[key] = value.decode("latin-1")
    return headers


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, policy: HostPolicy, trusted: list[IPNetwork]) -> None:
        self.app = app
        self.policy = policy
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        if scope["path"] not in _ANY_HOST_PATHS and not self.policy.allows_host(host):
            await self._refuse(
                scope, send, 421, "this Host is not served here (auth.allowed_hosts)"
            )
            return
        origin = headers.get("origin")
        client = client_info(
            peer=(scope.get("client") or ("", 0))[0],
            scheme="https" if scope.get("scheme") in ("https", "wss") else "http",
            headers=headers,
            trusted=self.trusted,
        )
        same = origin is None or self.policy.allows_origin(
            origin, scheme=client.scheme, host_header=host or ""
        )
        method = scope.get("method", "GET")
        cross_site = headers.get("sec-fetch-site") == "cross-site" and not (
            origin and origin.rstrip("/").lower() in self.policy.allowed_origins
        )
        if (scope["type"] == "websocket" or method not in _SAFE) and (not same or cross_site):
            await self._refuse(scope, send, 403, "cross-origin request refused")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        cors = (
            origin if origin and origin.rstrip("/").lower() in self.policy.allowed_origins else None
        )
        if method == "OPTIONS" and origin and "access-control-request-method" in headers:
            await self._preflight(send, cors)
            return
        await self.app(scope, receive, self._decorate(send, scope, cors))

    @staticmethod
    def _decorate(send: Send, scope: Scope, cors: str | None) -> Send:
        api = scope["path"].startswith(("/api/", "/metrics", "/openapi.json"))

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                if api:
                    headers.append((b"cache-control", b"no-store"))
                if cors is not None:
                    headers.extend(_cors(cors))
                message["headers"] = headers
            await send(message)

        return wrapped

    @staticmethod
    async def _preflight(send: Send, cors: str | None) -> None:
        if cors is None:
            await _json(send, 403, "CORS: this origin is not allowed (auth.allowed_origins)")
            return
        headers = [
            *_cors(cors),
            (b"access-control-allow-methods", _CORS_METHODS.encode()),
            (b"access-control-allow-headers", _CORS_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": detail})
            return
        await _json(send, status, detail)


def _cors(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


async def _json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *_SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
