"""Users and API tokens, as keyword-only functions shared by the API and the CLI.

Every change is written to the audit log. Problems raise :class:`AccountError`
(naming the field), :class:`AccountNotFound` or :class:`AccountConflict`.
"""

from __future__ import annotations

import re
import uuid

import msgspec

from modelmonitor.auth.audit import Actor, record
from modelmonitor.auth.credentials import hash_secret, new_token
from modelmonitor.auth.models import ApiToken, User
from modelmonitor.auth.passwords import check_password_policy, hash_password
from modelmonitor.auth.roles import USER_ROLES, Role
from modelmonitor.auth.store.base import AuthStore
from modelmonitor.types import Clock

__all__ = [
    "AccountConflict",
    "AccountError",
    "AccountNotFound",
    "TokenView",
    "UserView",
    "add_user",
    "create_token",
    "list_tokens",
    "list_users",
    "remove_user",
    "revoke_token",
    "set_password",
    "set_role",
]

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:@+-]{0,63}$")


class AccountError(ValueError):
    """Bad input; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AccountNotFound(LookupError):
    pass


class AccountConflict(ValueError):
    pass


class UserView(msgspec.Struct, kw_only=True):
    name: str
    role: str
    created_at: float
    updated_at: float


class TokenView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    role: str
    created_at: float
    created_by: str
    expires_at: float | None
    last_used_at: float | None


def _user_view(user: User) -> UserView:
    return UserView(
        name=user.name, role=user.role, created_at=user.created_at, updated_at=user.updated_at
    )


def _token_view(token: ApiToken) -> TokenView:
    return TokenView(
        id=token.id,
        name=token.name,
        role=token.role,
        created_at=token.created_at,
        created_by=token.created_by,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


def _role(text: str, *, allowed: tuple[Role, ...]) -> Role:
    try:
        role = Role.parse(text)
    except ValueError as exc:
        raise AccountError("role", str(exc)) from None
    if role not in allowed:
        choices = ", ".join(r.label for r in allowed)
        raise AccountError("role", f"must be one of {choices}")
    return role


def _check_name(name: str) -> None:
    if not _USER_NAME.match(name):
        raise AccountError(
            "name", "must be 1-128 letters, digits or _.@+- and start with a letter or digit"
        )


def _check_password(password: str, name: str) -> None:
    try:
        check_password_policy(password, username=name)
    except ValueError as exc:
        raise AccountError("password", str(exc)) from None


async def list_users(*, store: AuthStore) -> list[UserView]:
    return [_user_view(user) for user in await store.list_users()]


async def add_user(
    *, store: AuthStore, clock: Clock, actor: Actor, name: str, role: str, password: str
) -> UserView:
    _check_name(name)
    parsed = _role(role, allowed=USER_ROLES)
    _check_password(password, name)
    if await store.get_user(name) is not None:
        raise AccountConflict(f"user {name!r} already exists")
    now = clock()
    user = User(
        name=name,
        role=parsed.label,
        password_hash=await hash_password(password),
        created_at=now,
        updated_at=now,
    )
    await store.put_user(user)
    view = _user_view(user)
    await record(store=store, clock=clock, actor=actor, action="user.add", target=name, after=view)
    return view


async def _existing(store: AuthStore, name: str) -> User:
    user = await store.get_user(name)
    if user is None:
        raise AccountNotFound(f"no user {name!r}")
    return user


async def set_password(
    *, store: AuthStore, clock: Clock, actor: Actor, name: str, password: str
) -> None:
    """Change a password and end that user's sessions."""
    user = await _existing(store, name)
    _check_password(password, name)
    user.password_hash = await hash_password(password)
    user.updated_at = clock()
    await store.put_user(user)
    ended = await store.delete_sessions_of(name)
    await record(
        store=store,
        clock=clock,
        actor=actor,
        action="user.password",
        target=name,
        after={"sessions_ended": ended},
    )


async def _admins_left(store: AuthStore, *, without: str) -> int:
    users = await store.list_users()
    return sum(1 for u in users if u.role == Role.ADMIN.label and u.name != without)


async def set_role(
    *, store: AuthStore, clock: Clock, actor: Actor, name: str, role: str, keep_an_admin: bool
) -> UserView:
    user = await _existing(store, name)
    parsed = _role(role, allowed=USER_ROLES)
    before = _user_view(user)
    if (
        keep_an_admin
        and user.role == Role.ADMIN.label
        and parsed is not Role.ADMIN
        and not await _admins_left(store, without=name)
    ):
        raise AccountConflict(f"{name!r} is the last admin")
    user.role = parsed.label
    user.updated_at = clock()
    await store.put_user(user)
    await store.delete_sessions_of(name)
    view = _user_view(user)
    await record(
        store=store,
        clock=clock,
        actor=actor,
        action="user.role",
        target=name,
        before=before,
        after=view,
    )
    return view


async def remove_user(
    *, store: AuthStore, clock: Clock, actor: Actor, name: str, keep_an_admin: bool
) -> None:
    """Remove a user and end their sessions. ``keep_an_admin``: refuse to remove the
    last admin (the API does; the CLI, run by whoever holds the database, need not)."""
    user = await _existing(store, name)
    if (
        keep_an_admin
        and user.role == Role.ADMIN.label
        and not await _admins_left(store, without=name)
    ):
        raise AccountConflict(f"{name!r} is the last admin")
    await store.delete_user(name)
    await record(
        store=store,
        clock=clock,
        actor=actor,
        action="user.remove",
        target=name,
        before=_user_view(user),
    )


async def list_tokens(*, store: AuthStore) -> list[TokenView]:
    return [_token_view(token) for token in await store.list_tokens()]


async def create_token(
    *,
    store: AuthStore,
    clock: Clock,
    actor: Actor,
    name: str,
    role: str,
    expires_in: float | None,
) -> tuple[str, TokenView]:
    """A new token; the secret is returned once and only its hash is stored."""
    if not _TOKEN_NAME.match(name):
        raise AccountError(
            "name", "must be 1-64 letters, digits, spaces or _.:@+- starting with a letter or digit"
        )
    parsed = _role(role, allowed=tuple(Role))
    if expires_in is not None and expires_in <= 0:
        raise AccountError("expires_in", "must be a positive duration")
    now = clock()
    secret = new_token()
    token = ApiToken(
        id=uuid.uuid4().hex[:16],
        name=name,
        role=parsed.label,
        token_hash=hash_secret(secret),
        created_at=now,
        created_by=actor.name,
        expires_at=now + expires_in if expires_in is not None else None,
    )
    await store.add_token(token)
    view = _token_view(token)
    await record(
        store=store, clock=clock, actor=actor, action="token.create", target=token.id, after=view
    )
    return secret, view


async def revoke_token(*, store: AuthStore, clock: Clock, actor: Actor, token_id: str) -> None:
    tokens = {token.id: token for token in await store.list_tokens()}
    if token_id not in tokens or not await store.delete_token(token_id):
        raise AccountNotFound(f"no token {token_id!r}")
    await record(
        store=store,
        clock=clock,
        actor=actor,
        action="token.revoke",
        target=token_id,
        before=_token_view(tokens[token_id]),
    )
