"""Every write through the API lands in the audit log (pure ASGI middleware).

For each unsafe request under ``/api/v1`` by an authenticated principal (refused
ones included) it records who, the route's name as the action, the target from the path,
the outcome, the source address, and masked before/after summaries: *after* is
the JSON answer, *before* is read by a loader registered for the route (the
rule, silence or channel as it was). Routes that audit themselves in more
detail (users, tokens, login) are skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from modelmonitor.api.guard import SAFE_METHODS, app_routes
from modelmonitor.api.security import ASGIApp, Message, Receive, Scope, Send
from modelmonitor.auth.audit import Actor, record
from modelmonitor.auth.network import client_info
from modelmonitor.auth.roles import Principal
from modelmonitor.auth.service import AuthService

__all__ = ["AuditTrailMiddleware", "BeforeLoader", "alert_loaders"]

log = logging.getLogger("modelmonitor.audit")

BeforeLoader = Callable[[FastAPI, dict[str, Any]], Awaitable[Any]]
_SELF_AUDITED = ("/api/v1/auth/", "/api/v1/users", "/api/v1/tokens")
_MAX_BODY = 64 * 1024


class AuditTrailMiddleware:
    def __init__(self, app: ASGIApp, *, fastapi: FastAPI, loaders: dict[str, BeforeLoader]) -> None:
        self.app = app
        self.fastapi = fastapi
        self.loaders = loaders

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or not path.startswith("/api/v1/")
            or path.startswith(_SELF_AUDITED)
        ):
            await self.app(scope, receive, send)
            return
        route, params = self._route(scope)
        before = await self._before(route, params)
        status = 0
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and size < _MAX_BODY:
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._record(scope, route, params, status, before, b"".join(chunks))

    def _route(self, scope: Scope) -> tuple[Any, dict[str, Any]]:
        """The route serving this request and its path parameters (writes only, so
        walking the routes costs nothing on the read path)."""
        for route in app_routes(self.fastapi):
            regex = getattr(route, "path_regex", None)
            methods = getattr(route, "methods", None) or ()
            match = regex.match(scope["path"]) if regex is not None else None
            if match is not None and scope["method"] in methods:
                return route, match.groupdict()
        return None, {}

    async def _before(self, route: Any, params: dict[str, Any]) -> Any:
        loader = self.loaders.get(route.path) if route is not None else None
        if loader is None:
            return None
        try:
            return await loader(self.fastapi, params)
        except LookupError:
            return None

    async def _record(
        self,
        scope: Scope,
        route: Any,
        params: dict[str, Any],
        status: int,
        before: Any,
        body: bytes,
    ) -> None:
        auth: AuthService = self.fastapi.state.auth
        principal: Principal | None = scope.get("state", {}).get("principal")
        if principal is None or route is None:
            # Anonymous calls change nothing (they get 401), and recording them would
            # let anyone grow the log; failed logins are recorded by the login itself.
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = client_info(
            peer=(scope.get("client") or ("", 0))[0],
            scheme="http",
            headers=headers,
            trusted=auth.trusted_networks,
        )
        actor = Actor(name=principal.name, role=principal.role.label, source=client.address)
        after = None
        if 200 <= status < 300 and body:
            try:
                after = json.loads(body)
            except ValueError:
                after = None
        outcome = "ok" if 200 <= status < 400 else ("denied" if status in (401, 403) else "error")
        name = route.name
        target = "/".join(str(v) for v in params.values()) or scope["path"]
        try:
            await record(
                store=auth.store,
                clock=auth.clock,
                actor=actor,
                action=name,
                target=target,
                before=before,
                after=after if after is not None else {"status": status},
                outcome=f"{outcome} {status}",
            )
        except (OSError, RuntimeError) as exc:
            log.error("could not write the audit log for %s %s: %s", scope["method"], target, exc)


def _alerts(app: FastAPI) -> Any:
    system = app.state.context.alerts
    if system is None:
        raise LookupError("alerting is not running")
    return system


async def _rule(app: FastAPI, params: dict[str, Any]) -> Any:
    from modelmonitor.alerts import service
    from modelmonitor.alerts.service import NotFoundError

    try:
        rule = await service.get_rule(system=_alerts(app), rule_id=params["rule_id"])
    except NotFoundError as exc:
        raise LookupError(str(exc)) from None
    return rule.document()


async def _silence(app: FastAPI, params: dict[str, Any]) -> Any:
    from modelmonitor.alerts import service
    from modelmonitor.alerts.service import NotFoundError

    try:
        silence = await service.get_silence(system=_alerts(app), silence_id=params["silence_id"])
    except NotFoundError as exc:
        raise LookupError(str(exc)) from None
    return silence.model_dump(mode="json")


async def _channel(app: FastAPI, params: dict[str, Any]) -> Any:
    import msgspec

    from modelmonitor.alerts import service

    for view in await service.list_channels(system=_alerts(app)):
        if view.name == params["name"]:
            return msgspec.to_builtins(view)
    raise LookupError(params["name"])


def alert_loaders() -> dict[str, BeforeLoader]:
    """What a rule, silence or channel was before a change, for the audit log."""
    return {
        "/api/v1/alerts/rules/{rule_id}": _rule,
        "/api/v1/alerts/silences/{silence_id}": _silence,
        "/api/v1/alerts/channels/{name}/enable": _channel,
        "/api/v1/alerts/channels/{name}/disable": _channel,
    }
