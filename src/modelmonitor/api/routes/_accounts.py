"""What the user, token and auth routes share: the service, the actor, error mapping."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import NoReturn, TypeVar

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from modelmonitor.api.guard import connection_client
from modelmonitor.auth.accounts import AccountConflict, AccountError, AccountNotFound
from modelmonitor.auth.audit import Actor
from modelmonitor.auth.roles import Principal
from modelmonitor.auth.service import AuthService

__all__ = ["actor_of", "auth_service", "call"]

T = TypeVar("T")


def auth_service(connection: HTTPConnection) -> AuthService:
    service: AuthService = connection.app.state.auth
    return service


def actor_of(connection: HTTPConnection, principal: Principal) -> Actor:
    return Actor(
        name=principal.name,
        role=principal.role.label,
        source=connection_client(connection).address,
    )


def _unprocessable(error: AccountError) -> NoReturn:
    raise HTTPException(
        status_code=422,
        detail=[{"loc": ["body", error.field], "msg": error.message, "type": "value_error"}],
    )


async def call(result: Awaitable[T]) -> T:
    """Await an accounts function, turning its errors into 422, 404 and 409."""
    try:
        return await result
    except AccountError as exc:
        _unprocessable(exc)
    except AccountNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except AccountConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
