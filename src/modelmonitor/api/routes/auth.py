"""``/api/v1/auth``: the auth state, password login and logout (single sign-on in
:mod:`modelmonitor.api.routes.oidc`).

The session cookie is HttpOnly and SameSite=Strict (``__Host-`` prefixed and
Secure when the browser connects over TLS); writes made with it need the
session's CSRF token in ``X-CSRF-Token``, which only this API's own pages can read.
"""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import json_response
from modelmonitor.api.guard import (
    SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
    Authenticated,
    MaybePrincipal,
    auth_responses,
    connection_client,
)
from modelmonitor.api.routes._accounts import auth_service
from modelmonitor.auth.roles import AuthMethod, Principal
from modelmonitor.auth.service import LoginRefused, RateLimited

__all__ = ["router", "set_session_cookie"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Me(msgspec.Struct, kw_only=True):
    name: str
    role: str
    method: str


class AuthState(msgspec.Struct, kw_only=True):
    #: False: no users, tokens or SSO are configured, and everyone acts as admin.
    enabled: bool
    #: How a person can log in: ``password``, ``oidc``, ``proxy``.
    methods: list[str]
    oidc_label: str | None
    user: Me | None
    #: Send as ``X-CSRF-Token`` with every write made with the session cookie.
    csrf_token: str | None


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


async def _state(request: Request, principal: Principal | None) -> AuthState:
    service = auth_service(request)
    methods = ["password"]
    if service.config.oidc is not None:
        methods.append("oidc")
    if service.config.proxy_auth:
        methods.append("proxy")
    user = None
    if principal is not None:
        user = Me(name=principal.name, role=principal.role.label, method=principal.method.value)
    return AuthState(
        enabled=await service.enabled(),
        methods=methods,
        oidc_label=service.config.oidc.display_name if service.config.oidc else None,
        user=user,
        csrf_token=principal.csrf if principal is not None and principal.csrf else None,
    )


def set_session_cookie(request: Request, response: Response, cookie: str | None) -> None:
    """Set (or, with None, clear) the session cookie."""
    secure = connection_client(request).scheme == "https"
    name = SECURE_SESSION_COOKIE if secure else SESSION_COOKIE
    if cookie is None:
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")
        return
    response.set_cookie(
        name,
        cookie,
        max_age=int(auth_service(request).config.session_ttl),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


@router.get("/state", responses=schema_response(AuthState), summary="Auth on/off and who you are")
async def auth_state(request: Request, principal: MaybePrincipal) -> object:
    return json_response(await _state(request, principal))


@router.post(
    "/login",
    responses={
        **schema_response(AuthState),
        401: {"description": "Wrong user name or password"},
        429: {"description": "Too many failed logins (see Retry-After)"},
    },
    summary="Log in with a password; sets the session cookie",
)
async def login(request: Request, body: Login) -> object:
    service = auth_service(request)
    try:
        cookie = await service.login(
            username=body.username, password=body.password, client=connection_client(request)
        )
    except RateLimited as exc:
        raise HTTPException(
            status_code=429, detail=str(exc), headers={"Retry-After": str(int(exc.retry_after) + 1)}
        ) from None
    except LoginRefused as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None
    session = await service.authenticate_cookie(cookie)
    response = json_response(await _state(request, session))
    set_session_cookie(request, response, cookie)
    return response


@router.post(
    "/logout",
    responses={**schema_response(AuthState), **auth_responses()},
    summary="End the session",
)
async def logout(request: Request, principal: Authenticated) -> object:
    service = auth_service(request)
    await service.logout(principal, connection_client(request))
    response = json_response(await _state(request, None))
    if principal.method is AuthMethod.SESSION:
        set_session_cookie(request, response, None)
    return response
