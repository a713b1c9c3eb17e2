"""``/api/v1/users``: local users (admins only). Every change is audited."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import json_response
from modelmonitor.api.guard import Admin
from modelmonitor.api.routes._accounts import actor_of, auth_service, call
from modelmonitor.auth import accounts
from modelmonitor.auth.accounts import UserView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class UserList(msgspec.Struct, kw_only=True):
    users: list[UserView]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    role: str = Field(pattern="^(viewer|editor|admin)$")
    password: str = Field(min_length=1, max_length=1024)


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(default=None, pattern="^(viewer|editor|admin)$")
    password: str | None = Field(default=None, min_length=1, max_length=1024)


@router.get("", responses=schema_response(UserList), summary="Local users")
async def list_users(request: Request, principal: Admin) -> object:
    service = auth_service(request)
    return json_response(UserList(users=await accounts.list_users(store=service.store)))


@router.post("", status_code=201, responses=schema_response(UserView), summary="Add a user")
async def add_user(request: Request, principal: Admin, body: NewUser) -> object:
    service = auth_service(request)
    view = await call(
        accounts.add_user(
            store=service.store,
            clock=service.clock,
            actor=actor_of(request, principal),
            name=body.name,
            role=body.role,
            password=body.password,
        )
    )
    service.forget_enabled()
    return json_response(view, status_code=201)


@router.put(
    "/{name}", responses=schema_response(UserView), summary="Change a user's role or password"
)
async def change_user(request: Request, principal: Admin, name: str, body: UserChange) -> object:
    service = auth_service(request)
    actor = actor_of(request, principal)
    if body.password is not None:
        await call(
            accounts.set_password(
                store=service.store,
                clock=service.clock,
                actor=actor,
                name=name,
                password=body.password,
            )
        )
    if body.role is not None:
        await call(
            accounts.set_role(
                store=service.store,
                clock=service.clock,
                actor=actor,
                name=name,
                role=body.role,
                keep_an_admin=True,
            )
        )
    users = {user.name: user for user in await accounts.list_users(store=service.store)}
    if name not in users:
        return json_response({"detail": f"no user {name!r}"}, status_code=404)
    return json_response(users[name])


@router.delete("/{name}", status_code=204, response_model=None, summary="Remove a user")
async def remove_user(request: Request, principal: Admin, name: str) -> Response:
    service = auth_service(request)
    await call(
        accounts.remove_user(
            store=service.store,
            clock=service.clock,
            actor=actor_of(request, principal),
            name=name,
            keep_an_admin=True,
        )
    )
    service.forget_enabled()
    return Response(status_code=204)
