"""Stored records: users, API tokens, sessions, audit entries, pending SSO logins."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ApiToken", "AuditEntry", "LoginState", "SessionRecord", "User"]


class User(msgspec.Struct, kw_only=True):
    name: str
    role: str
    password_hash: str
    created_at: float
    updated_at: float


class ApiToken(msgspec.Struct, kw_only=True):
    id: str
    name: str
    role: str
    #: SHA-256 of the secret, hex; the secret itself is shown once and never stored.
    token_hash: str
    created_at: float
    created_by: str
    expires_at: float | None = None
    last_used_at: float | None = None


class SessionRecord(msgspec.Struct, kw_only=True):
    #: SHA-256 of the cookie value, hex: a copy of the table cannot be replayed.
    id_hash: str
    user: str
    role: str
    csrf: str
    #: How the person logged in: ``password`` or ``oidc``.
    source: str
    created_at: float
    last_seen_at: float
    expires_at: float


class AuditEntry(msgspec.Struct, kw_only=True):
    at: float
    actor: str
    role: str
    action: str
    target: str
    source: str
    outcome: str = "ok"
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    id: int | None = None


class LoginState(msgspec.Struct, kw_only=True):
    """An OIDC login between the redirect to the provider and its callback."""

    state: str
    nonce: str
    verifier: str
    next_path: str
    expires_at: float
