"""Route guards: every route states the least role it needs, or is on the public list.

``create_app`` calls :func:`check_routes` after building the app, so a route that
forgets its guard stops start-up instead of being open. Guards answer 401 (who
are you?) or 403 (not allowed) with JSON bodies, and check the CSRF token of
cookie-authenticated writes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, WebSocketException
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection
from starlette.routing import Mount
from starlette.status import WS_1008_POLICY_VIOLATION

from modelmonitor.auth.credentials import same_secret
from modelmonitor.auth.network import ClientInfo, client_info
from modelmonitor.auth.roles import Principal, Role
from modelmonitor.auth.service import AuthService, Credentials, InvalidCredentials

__all__ = [
    "CSRF_HEADER",
    "PUBLIC_MOUNTS",
    "PUBLIC_ROUTES",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "Admin",
    "Authenticated",
    "Editor",
    "Guard",
    "LoginRedirect",
    "MaybePrincipal",
    "Metrics",
    "Viewer",
    "app_routes",
    "auth_responses",
    "check_routes",
    "connection_client",
    "guard_of",
    "principal_of",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "mm_session"
SECURE_SESSION_COOKIE = "__Host-mm_session"

#: Everything anyone may reach without logging in; each with its reason.
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/health"): "liveness for probes and load balancers; detail only for viewers",
    ("GET", "/login"): "the dashboard's login page",
    ("GET", "/api/v1/auth/state"): "whether auth is on, how to log in, and who you are",
    ("POST", "/api/v1/auth/login"): "password login (rate limited)",
    ("GET", "/api/v1/auth/oidc/login"): "starts single sign-on",
    ("GET", "/api/v1/auth/oidc/callback"): "the identity provider sends the browser back here",
}
PUBLIC_MOUNTS: dict[str, str] = {
    "/assets": "the dashboard's compiled scripts, styles and fonts (no data)",
}


class LoginRedirect(Exception):
    """A dashboard page asked for by someone not logged in: go to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _auth(connection: HTTPConnection) -> AuthService:
    service: AuthService = connection.app.state.auth
    return service


def connection_client(connection: HTTPConnection) -> ClientInfo:
    service = _auth(connection)
    peer = connection.client.host if connection.client else ""
    scheme = "https" if connection.url.scheme in ("https", "wss") else "http"
    return client_info(
        peer=peer,
        scheme=scheme,
        headers=connection.headers,
        trusted=service.trusted_networks,
    )


def session_cookie_name(connection: HTTPConnection) -> str:
    return (
        SECURE_SESSION_COOKIE if connection_client(connection).scheme == "https" else SESSION_COOKIE
    )


def _bearer(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return ""  # present but unusable: refused, never ignored
    return value.strip()


async def principal_of(connection: HTTPConnection) -> Principal | None:
    """Who sent this request (cached on the connection); None when anonymous."""
    state = connection.scope.setdefault("state", {})
    if "principal" in state:
        cached: Principal | None = state["principal"]
        return cached
    credentials = Credentials(
        bearer=_bearer(connection),
        session=connection.cookies.get(SECURE_SESSION_COOKIE)
        or connection.cookies.get(SESSION_COOKIE),
        headers=connection.headers,
        client=connection_client(connection),
    )
    try:
        principal = await _auth(connection).authenticate(credentials)
    except InvalidCredentials as exc:
        _deny(connection, 401, str(exc))
    state["principal"] = principal
    return principal


def _deny(connection: HTTPConnection, status: int, detail: str) -> Any:
    if connection.scope["type"] == "websocket":
        raise WebSocketException(code=WS_1008_POLICY_VIOLATION, reason=detail)
    headers = {"WWW-Authenticate": 'Bearer realm="modelmonitor"'} if status == 401 else None
    raise HTTPException(status_code=status, detail=detail, headers=headers)


class Guard:
    """A dependency: the caller must hold at least ``role``."""

    def __init__(self, role: Role, *, login_redirect: bool = False) -> None:
        self.role = role
        self.login_redirect = login_redirect

    async def __call__(self, connection: HTTPConnection) -> Principal:
        principal = await principal_of(connection)
        if principal is None:
            if self.login_redirect:
                query = connection.url.query
                raise LoginRedirect(connection.url.path + (f"?{query}" if query else ""))
            _deny(connection, 401, "authentication required: log in or send a bearer token")
        assert principal is not None
        if principal.role < self.role:
            _deny(connection, 403, f"this needs the {self.role.label} role")
        method = connection.scope.get("method", "GET")
        if principal.cookie_based and method not in SAFE_METHODS:
            sent = connection.headers.get(CSRF_HEADER, "")
            if not sent or not same_secret(sent, principal.csrf):
                _deny(connection, 403, f"missing or wrong {CSRF_HEADER} header")
        return principal

    def __repr__(self) -> str:
        return f"Guard({self.role.label})"


Viewer = Annotated[Principal, Depends(Guard(Role.VIEWER))]
Editor = Annotated[Principal, Depends(Guard(Role.EDITOR))]
Admin = Annotated[Principal, Depends(Guard(Role.ADMIN))]
Metrics = Annotated[Principal, Depends(Guard(Role.METRICS))]
#: Anyone authenticated (a scrape token included).
Authenticated = Metrics


async def _maybe_principal(connection: HTTPConnection) -> Principal | None:
    return await principal_of(connection)


#: For public routes that show more to those logged in.
MaybePrincipal = Annotated[Principal | None, Depends(_maybe_principal)]


def auth_responses() -> dict[int | str, Any]:
    """The 401 and 403 answers every guarded route can give, for the OpenAPI schema."""
    body = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    }
    return {
        401: {
            "description": "Not authenticated (or the token/session is invalid)",
            "content": body,
        },
        403: {
            "description": "Authenticated, but the role is too low (or no CSRF token)",
            "content": body,
        },
    }


def app_routes(app: FastAPI) -> list[Any]:
    """Every route as served, with the dependencies of the routers it was included by
    (FastAPI >= 0.160 keeps included routers nested)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _original(route: Any) -> Any:
    return getattr(route, "original_route", route)


def guard_of(route: Any) -> Guard | None:
    """The strictest guard among a route's dependencies (router-level ones included)."""
    found: list[Guard] = []
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Guard):
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return max(found, key=lambda guard: guard.role, default=None)


def check_routes(app: FastAPI) -> None:
    """Refuse to build an app with a route that is neither guarded nor public."""
    open_routes = []
    for route in app_routes(app):
        original = _original(route)
        if isinstance(original, Mount):
            if route.path not in PUBLIC_MOUNTS:
                open_routes.append(f"mount {route.path}")
            continue
        if not isinstance(original, APIRoute | APIWebSocketRoute):
            open_routes.append(f"{type(original).__name__} {getattr(route, 'path', '?')}")
            continue
        if guard_of(route) is not None:
            continue
        methods = getattr(route, "methods", None) or {"WEBSOCKET"}
        for method in methods:
            if (method, route.path) not in PUBLIC_ROUTES and method != "HEAD":
                open_routes.append(f"{method} {route.path}")
    if open_routes:
        raise RuntimeError(f"routes with no guard and not public: {', '.join(open_routes)}")
