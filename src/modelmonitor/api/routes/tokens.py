"""``/api/v1/tokens``: API tokens (admins only). A token's secret is shown once."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import json_response
from modelmonitor.api.guard import Admin
from modelmonitor.api.routes._accounts import actor_of, auth_service, call
from modelmonitor.auth import accounts
from modelmonitor.auth.accounts import TokenView
from modelmonitor.timeparse import parse_duration

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenList(msgspec.Struct, kw_only=True):
    tokens: list[TokenView]


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: str = Field(pattern="^(metrics|viewer|editor|admin)$")
    #: How long the token lives, e.g. ``90d``; none: until revoked.
    expires_in: str | None = Field(default=None, examples=["90d"])


class CreatedToken(msgspec.Struct, kw_only=True):
    #: The secret: shown this once, send it as ``Authorization: Bearer <token>``.
    token: str
    info: TokenView


@router.get("", responses=schema_response(TokenList), summary="API tokens (no secrets)")
async def list_tokens(request: Request, principal: Admin) -> object:
    service = auth_service(request)
    return json_response(TokenList(tokens=await accounts.list_tokens(store=service.store)))


@router.post(
    "", status_code=201, responses=schema_response(CreatedToken), summary="Create an API token"
)
async def create_token(request: Request, principal: Admin, body: NewToken) -> object:
    service = auth_service(request)
    expires_in = None
    if body.expires_in is not None:
        try:
            expires_in = parse_duration(body.expires_in)
        except ValueError as exc:
            raise HTTPException(
                status_code=422,
                detail=[{"loc": ["body", "expires_in"], "msg": str(exc), "type": "value_error"}],
            ) from None
    secret, view = await call(
        accounts.create_token(
            store=service.store,
            clock=service.clock,
            actor=actor_of(request, principal),
            name=body.name,
            role=body.role,
            expires_in=expires_in,
        )
    )
    service.forget_enabled()
    return json_response(CreatedToken(token=secret, info=view), status_code=201)


@router.delete("/{token_id}", status_code=204, response_model=None, summary="Revoke a token")
async def revoke_token(request: Request, principal: Admin, token_id: str) -> Response:
    service = auth_service(request)
    await call(
        accounts.revoke_token(
            store=service.store,
            clock=service.clock,
            actor=actor_of(request, principal),
            token_id=token_id,
        )
    )
    service.forget_enabled()
    return Response(status_code=204)
