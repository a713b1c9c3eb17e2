"""One suite over every auth store: SQLite always, PostgreSQL when marked ``services``."""

from __future__ import annotations

import asyncio

from modelmonitor.auth.models import ApiToken, AuditEntry, LoginState, SessionRecord, User
from modelmonitor.auth.store import AuthStore


def user(name: str, role: str = "viewer", at: float = 1.0) -> User:
    return User(name=name, role=role, password_hash="$argon2id$x", created_at=at, updated_at=at)


def session(id_hash: str, name: str, *, expires_at: float = 100.0) -> SessionRecord:
    return SessionRecord(
        id_hash=id_hash,
        user=name,
        role="editor",
        csrf="c",
        source="password",
        created_at=1.0,
        last_seen_at=1.0,
        expires_at=expires_at,
    )


def token(token_id: str, *, expires_at: float | None = None) -> ApiToken:
    return ApiToken(
        id=token_id,
        name=f"n-{token_id}",
        role="viewer",
        token_hash=f"h-{token_id}",
        created_at=1.0,
        created_by="admin",
        expires_at=expires_at,
    )


async def test_users_round_trip(auth_store: AuthStore) -> None:
    assert not await auth_store.has_credentials(0.0)
    await auth_store.put_user(user("bob"))
    await auth_store.put_user(user("alice", "admin"))
    assert [u.name for u in await auth_store.list_users()] == ["alice", "bob"]
    assert await auth_store.has_credentials(0.0)
    changed = user("bob", "editor", at=1.0)
    changed.updated_at = 5.0
    await auth_store.put_user(changed)
    assert await auth_store.get_user("bob") == changed
    assert await auth_store.get_user("nobody") is None
    await auth_store.put_session(session("s1", "bob"))
    await auth_store.put_session(session("s2", "alice"))
    assert await auth_store.delete_user("bob")
    assert not await auth_store.delete_user("bob")
    assert await auth_store.get_session("s1") is None  # sessions go with their user
    assert await auth_store.get_session("s2") is not None


async def test_tokens_by_hash_touch_and_expiry(auth_store: AuthStore) -> None:
    await auth_store.add_token(token("t1", expires_at=50.0))
    assert await auth_store.has_credentials(10.0)
    assert not await auth_store.has_credentials(60.0)  # only an expired token left
    found = await auth_store.token_by_hash("h-t1")
    assert found is not None and found.id == "t1" and found.expires_at == 50.0
    assert await auth_store.token_by_hash("t1") is None  # looked up by hash only
    await auth_store.touch_token("t1", 7.0)
    touched = await auth_store.token_by_hash("h-t1")
    assert touched is not None and touched.last_used_at == 7.0
    await auth_store.add_token(token("t2"))
    assert [t.id for t in await auth_store.list_tokens()] == ["t1", "t2"]
    assert await auth_store.delete_token("t1")
    assert not await auth_store.delete_token("t1")
    assert [t.id for t in await auth_store.list_tokens()] == ["t2"]


async def test_sessions_touch_delete_and_prune(auth_store: AuthStore) -> None:
    await auth_store.put_session(session("a", "u", expires_at=10.0))
    await auth_store.put_session(session("b", "u", expires_at=30.0))
    await auth_store.put_session(session("c", "v", expires_at=30.0))
    await auth_store.touch_session("b", 9.0)
    found = await auth_store.get_session("b")
    assert found is not None and found.last_seen_at == 9.0 and found.user == "u"
    assert await auth_store.prune_sessions(20.0) == 1
    assert await auth_store.get_session("a") is None
    assert await auth_store.delete_sessions_of("u") == 1
    await auth_store.delete_session("c")
    assert await auth_store.get_session("c") is None


async def test_login_states_are_single_use_and_expire(auth_store: AuthStore) -> None:
    state = LoginState(state="s", nonce="n", verifier="v", next_path="/x", expires_at=10.0)
    await auth_store.put_login_state(state)
    await auth_store.put_login_state(
        LoginState(state="old", nonce="n", verifier="v", next_path="/", expires_at=1.0)
    )
    assert await auth_store.take_login_state("old", 5.0) is None  # expired
    assert await auth_store.take_login_state("s", 5.0) == state
    assert await auth_store.take_login_state("s", 5.0) is None  # used once


async def test_audit_pages_filters_and_retention(auth_store: AuthStore) -> None:
    for index in range(5):
        await auth_store.add_audit(
            AuditEntry(
                at=float(index),
                actor="alice" if index % 2 else "bob",
                role="admin",
                action="user.add",
                target=f"u{index}",
                source="127.0.0.1",
                before=None,
                after={"role": "viewer", "n": index},
            )
        )
    newest = await auth_store.list_audit(limit=2)
    assert [e.target for e in newest] == ["u4", "u3"]
    assert newest[0].after == {"role": "viewer", "n": 4} and newest[0].id is not None
    older = await auth_store.list_audit(limit=10, before_id=newest[-1].id)
    assert [e.target for e in older] == ["u2", "u1", "u0"]
    assert [e.target for e in await auth_store.list_audit(limit=10, actor="alice")] == [
        "u3",
        "u1",
    ]
    assert await auth_store.prune_audit(2.0) == 2
    assert [e.target for e in await auth_store.list_audit(limit=10)] == ["u4", "u3", "u2"]


async def test_concurrent_writers_do_not_lose_records(auth_store: AuthStore) -> None:
    await asyncio.gather(*(auth_store.put_user(user(f"u{i}")) for i in range(20)))
    assert len(await auth_store.list_users()) == 20
