"""The auth store written once in portable SQL; drivers supply a transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from modelmonitor.auth.models import ApiToken, AuditEntry, LoginState, SessionRecord, User

__all__ = ["Session", "SqlAuthStore", "schema"]


def schema(real: str, serial: str) -> list[str]:
    """The tables, with the driver's float and auto-increment column types."""
    return [
        f"""CREATE TABLE IF NOT EXISTS auth_users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
            created_at {real} NOT NULL, updated_at {real} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS auth_tokens (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE, created_at {real} NOT NULL,
            created_by TEXT NOT NULL, expires_at {real}, last_used_at {real})""",
        f"""CREATE TABLE IF NOT EXISTS auth_sessions (
            id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, role TEXT NOT NULL,
            csrf TEXT NOT NULL, source TEXT NOT NULL, created_at {real} NOT NULL,
            last_seen_at {real} NOT NULL, expires_at {real} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS auth_sessions_user ON auth_sessions (username)",
        f"""CREATE TABLE IF NOT EXISTS auth_login_states (
            state TEXT PRIMARY KEY, doc TEXT NOT NULL, expires_at {real} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS auth_audit (
            id {serial} PRIMARY KEY, at {real} NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, doc TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS auth_audit_at ON auth_audit (at)",
    ]


class Session(Protocol):
    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]: ...

    async def execute(self, sql: str, *args: Any) -> None: ...


_USER = "name, role, password_hash, created_at, updated_at"
_TOKEN = "id, name, role, token_hash, created_at, created_by, expires_at, last_used_at"
_SESSION = "id_hash, username, role, csrf, source, created_at, last_seen_at, expires_at"
_audit_decoder = msgspec.json.Decoder(AuditEntry)
_state_decoder = msgspec.json.Decoder(LoginState)


def _user(row: Sequence[Any]) -> User:
    return User(
        name=row[0], role=row[1], password_hash=row[2], created_at=row[3], updated_at=row[4]
    )


def _token(row: Sequence[Any]) -> ApiToken:
    return ApiToken(
        id=row[0],
        name=row[1],
        role=row[2],
        token_hash=row[3],
        created_at=row[4],
        created_by=row[5],
        expires_at=row[6],
        last_used_at=row[7],
    )


def _session(row: Sequence[Any]) -> SessionRecord:
    return SessionRecord(
        id_hash=row[0],
        user=row[1],
        role=row[2],
        csrf=row[3],
        source=row[4],
        created_at=row[5],
        last_seen_at=row[6],
        expires_at=row[7],
    )


class SqlAuthStore:
    """Shared logic; subclasses implement :meth:`session` (one transaction)."""

    url: str

    def session(self) -> contextlib.AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    # Users.
    async def list_users(self) -> list[User]:
        async with self.session() as s:
            rows = await s.fetch(f"SELECT {_USER} FROM auth_users ORDER BY name")
        return [_user(row) for row in rows]

    async def get_user(self, name: str) -> User | None:
        async with self.session() as s:
            rows = await s.fetch(f"SELECT {_USER} FROM auth_users WHERE name = ?", name)
        return _user(rows[0]) if rows else None

    async def put_user(self, user: User) -> None:
        async with self.session() as s:
            await s.execute(
                f"INSERT INTO auth_users ({_USER}) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
                "password_hash = excluded.password_hash, updated_at = excluded.updated_at",
                user.name,
                user.role,
                user.password_hash,
                user.created_at,
                user.updated_at,
            )

    async def delete_user(self, name: str) -> bool:
        async with self.session() as s:
            await s.execute("DELETE FROM auth_sessions WHERE username = ?", name)
            rows = await s.fetch("DELETE FROM auth_users WHERE name = ? RETURNING name", name)
        return bool(rows)

    # Tokens.
    async def add_token(self, token: ApiToken) -> None:
        async with self.session() as s:
            await s.execute(
                f"INSERT INTO auth_tokens ({_TOKEN}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                token.id,
                token.name,
                token.role,
                token.token_hash,
                token.created_at,
                token.created_by,
                token.expires_at,
                token.last_used_at,
            )

    async def list_tokens(self) -> list[ApiToken]:
        async with self.session() as s:
            rows = await s.fetch(f"SELECT {_TOKEN} FROM auth_tokens ORDER BY created_at, id")
        return [_token(row) for row in rows]

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        async with self.session() as s:
            rows = await s.fetch(
                f"SELECT {_TOKEN} FROM auth_tokens WHERE token_hash = ?", token_hash
            )
        return _token(rows[0]) if rows else None

    async def touch_token(self, token_id: str, at: float) -> None:
        async with self.session() as s:
            await s.execute("UPDATE auth_tokens SET last_used_at = ? WHERE id = ?", at, token_id)

    async def delete_token(self, token_id: str) -> bool:
        async with self.session() as s:
            rows = await s.fetch("DELETE FROM auth_tokens WHERE id = ? RETURNING id", token_id)
        return bool(rows)

    async def has_credentials(self, now: float) -> bool:
        async with self.session() as s:
            rows = await s.fetch(
                "SELECT EXISTS (SELECT 1 FROM auth_users) OR EXISTS (SELECT 1 FROM auth_tokens "
                "WHERE expires_at IS NULL OR expires_at > ?)",
                now,
            )
        return bool(rows[0][0])

    # Sessions.
    async def put_session(self, session: SessionRecord) -> None:
        async with self.session() as s:
            await s.execute(
                f"INSERT INTO auth_sessions ({_SESSION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                session.id_hash,
                session.user,
                session.role,
                session.csrf,
                session.source,
                session.created_at,
                session.last_seen_at,
                session.expires_at,
            )

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        async with self.session() as s:
            rows = await s.fetch(f"SELECT {_SESSION} FROM auth_sessions WHERE id_hash = ?", id_hash)
        return _session(rows[0]) if rows else None

    async def touch_session(self, id_hash: str, at: float) -> None:
        async with self.session() as s:
            await s.execute(
                "UPDATE auth_sessions SET last_seen_at = ? WHERE id_hash = ?", at, id_hash
            )

    async def delete_session(self, id_hash: str) -> None:
        async with self.session() as s:
            await s.execute("DELETE FROM auth_sessions WHERE id_hash = ?", id_hash)

    async def delete_sessions_of(self, user: str) -> int:
        async with self.session() as s:
            rows = await s.fetch(
                "DELETE FROM auth_sessions WHERE username = ? RETURNING id_hash", user
            )
        return len(rows)

    async def prune_sessions(self, now: float) -> int:
        async with self.session() as s:
            rows = await s.fetch(
                "DELETE FROM auth_sessions WHERE expires_at <= ? RETURNING id_hash", now
            )
            await s.execute("DELETE FROM auth_login_states WHERE expires_at <= ?", now)
        return len(rows)

    # Pending OIDC logins.
    async def put_login_state(self, state: LoginState) -> None:
        async with self.session() as s:
            await s.execute(
                "INSERT INTO auth_login_states (state, doc, expires_at) VALUES (?, ?, ?)",
                state.state,
                msgspec.json.encode(state).decode(),
                state.expires_at,
            )

    async def take_login_state(self, state: str, now: float) -> LoginState | None:
        async with self.session() as s:
            rows = await s.fetch(
                "DELETE FROM auth_login_states WHERE state = ? RETURNING doc, expires_at", state
            )
        if not rows or rows[0][1] <= now:
            return None
        return _state_decoder.decode(rows[0][0])

    # Audit.
    async def add_audit(self, entry: AuditEntry) -> None:
        doc = msgspec.json.encode(msgspec.structs.replace(entry, id=None)).decode()
        async with self.session() as s:
            await s.execute(
                "INSERT INTO auth_audit (at, actor, action, doc) VALUES (?, ?, ?, ?)",
                entry.at,
                entry.actor,
                entry.action,
                doc,
            )

    async def list_audit(
        self, *, limit: int, before_id: int | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        where: list[str] = []
        args: list[Any] = []
        if before_id is not None:
            where.append("id < ?")
            args.append(before_id)
        if actor is not None:
            where.append("actor = ?")
            args.append(actor)
        sql = "SELECT id, doc FROM auth_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self.session() as s:
            rows = await s.fetch(sql + " ORDER BY id DESC LIMIT ?", *args, limit)
        entries = []
        for row_id, doc in rows:
            entry = _audit_decoder.decode(doc)
            entry.id = int(row_id)
            entries.append(entry)
        return entries

    async def prune_audit(self, before: float) -> int:
        async with self.session() as s:
            rows = await s.fetch("DELETE FROM auth_audit WHERE at < ? RETURNING id", before)
        return len(rows)
