"""``/api/v1/auth/oidc``: single sign-on through an OpenID Connect provider.

``login`` sends the browser to the provider; ``callback`` redeems the code,
verifies the ID token, maps the person's groups to a role and opens a session.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from modelmonitor.api.guard import connection_client
from modelmonitor.api.routes._accounts import auth_service
from modelmonitor.api.routes.auth import set_session_cookie
from modelmonitor.auth.audit import Actor, record
from modelmonitor.auth.oidc import OIDCError, OIDCLogin

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth/oidc", tags=["auth"])
_CALLBACK = "/api/v1/auth/oidc/callback"


def _login(request: Request) -> OIDCLogin:
    oidc = auth_service(request).oidc
    if oidc is None:
        raise HTTPException(status_code=404, detail="single sign-on is not configured (auth.oidc)")
    return oidc


def _redirect_uri(request: Request, oidc: OIDCLogin) -> str:
    if oidc.config.redirect_url:
        return oidc.config.redirect_url
    client = connection_client(request)
    return f"{client.scheme}://{request.headers['host']}{_CALLBACK}"


@router.get(
    "/login",
    status_code=303,
    responses={303: {"description": "To the identity provider"}},
    summary="Start single sign-on",
)
async def oidc_login(request: Request, next: str | None = None) -> RedirectResponse:
    oidc = _login(request)
    try:
        url = await oidc.start(redirect_uri=_redirect_uri(request, oidc), next_path=next)
    except OIDCError as exc:
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
    return RedirectResponse(url, status_code=303)


@router.get(
    "/callback",
    response_class=HTMLResponse,
    responses={
        200: {"description": "Logged in: a page that moves on to the dashboard"},
        400: {"description": "Unknown, expired or reused login state"},
        401: {"description": "The provider's answer did not verify"},
        403: {"description": "The person is in no group with access"},
    },
    summary="The identity provider sends the browser back here",
)
async def oidc_callback(
    request: Request,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    oidc = _login(request)
    service = auth_service(request)
    client = connection_client(request)
    if error is not None or not code or not state:
        detail = f"the identity provider said: {error}" if error else "code and state are required"
        raise HTTPException(status_code=400, detail=detail[:300])
    try:
        identity = await oidc.finish(
            code=code, state=state, redirect_uri=_redirect_uri(request, oidc)
        )
    except OIDCError as exc:
        await record(
            store=service.store,
            clock=service.clock,
            actor=Actor(name="oidc", role="", source=client.address),
            action="login.oidc",
            target="",
            outcome=f"failed: {exc}"[:200],
        )
        raise HTTPException(status_code=exc.status, detail=str(exc)) from None
    cookie = await service.open_session(user=identity.name, role=identity.role, source="oidc")
    await record(
        store=service.store,
        clock=service.clock,
        actor=Actor(name=identity.name, role=identity.role.label, source=client.address),
        action="login.oidc",
        target=identity.name,
        after={"groups": list(identity.groups)},
    )
    response = _same_site_redirect(identity.next_path)
    set_session_cookie(request, response, cookie)
    return response


def _same_site_redirect(path: str) -> HTMLResponse:
    """A page that moves on by itself: a plain 303 here would continue the provider's
    cross-site navigation, and browsers would not send the SameSite=Strict cookie."""
    target = html.escape(path, quote=True)
    body = (
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
        f'<title>Signed in</title><p>Signed in. <a href="{target}">Continue</a></p>'
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})
