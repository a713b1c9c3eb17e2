"""The auth store contract: users, API tokens, sessions, audit log, pending SSO logins."""

from __future__ import annotations

from typing import Protocol

from modelmonitor.auth.models import ApiToken, AuditEntry, LoginState, SessionRecord, User

__all__ = ["AuthStore"]


class AuthStore(Protocol):
    url: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    # Users.
    async def list_users(self) -> list[User]: ...

    async def get_user(self, name: str) -> User | None: ...

    async def put_user(self, user: User) -> None:
        """Insert, or replace the user of that name."""

    async def delete_user(self, name: str) -> bool:
        """Remove the user and their sessions; False when there was none."""

    # API tokens.
    async def add_token(self, token: ApiToken) -> None: ...

    async def list_tokens(self) -> list[ApiToken]: ...

    async def token_by_hash(self, token_hash: str) -> ApiToken | None: ...

    async def touch_token(self, token_id: str, at: float) -> None: ...

    async def delete_token(self, token_id: str) -> bool: ...

    async def has_credentials(self, now: float) -> bool:
        """Whether any user or unexpired token exists (authentication is then on)."""

    # Sessions.
    async def put_session(self, session: SessionRecord) -> None: ...

    async def get_session(self, id_hash: str) -> SessionRecord | None: ...

    async def touch_session(self, id_hash: str, at: float) -> None: ...

    async def delete_session(self, id_hash: str) -> None: ...

    async def delete_sessions_of(self, user: str) -> int: ...

    async def prune_sessions(self, now: float) -> int:
        """Drop expired sessions and SSO login states."""

    # Pending OIDC logins.
    async def put_login_state(self, state: LoginState) -> None: ...

    async def take_login_state(self, state: str, now: float) -> LoginState | None:
        """Return and delete an unexpired login state (each is usable once)."""

    # Audit log.
    async def add_audit(self, entry: AuditEntry) -> None: ...

    async def list_audit(
        self, *, limit: int, before_id: int | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        """Newest first."""

    async def prune_audit(self, before: float) -> int: ...
