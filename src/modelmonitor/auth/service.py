"""``AuthService``: who a request is (token, session, trusted proxy), logins and sessions.

Authentication is *off* only while nothing is configured: no user or token in the
store, no ``MODELMONITOR_ADMIN_TOKEN`` and no single sign-on. The API then acts
for everyone as the local admin, which the start-up check allows only on loopback
(or with ``--insecure-no-auth``). Nothing is trusted for its source address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.auth.audit import Actor, record
from modelmonitor.auth.credentials import hash_secret, new_secret, same_secret
from modelmonitor.auth.models import SessionRecord
from modelmonitor.auth.network import ClientInfo
from modelmonitor.auth.passwords import verify_password
from modelmonitor.auth.ratelimit import LoginLimiter
from modelmonitor.auth.roles import AuthMethod, Principal, Role
from modelmonitor.auth.sso import role_for_groups, split_groups
from modelmonitor.auth.store.base import AuthStore
from modelmonitor.settings import AuthConfig
from modelmonitor.types import Clock

if TYPE_CHECKING:
    from modelmonitor.auth.oidc import OIDCLogin

__all__ = [
    "LOCAL_PRINCIPAL",
    "AuthService",
    "Credentials",
    "InvalidCredentials",
    "LoginRefused",
    "RateLimited",
]

log = logging.getLogger("modelmonitor.auth")

LOCAL_PRINCIPAL = Principal(name="local", role=Role.ADMIN, method=AuthMethod.NONE)
#: How long "is authentication on" is cached (a user added by the CLI turns it on).
_ENABLED_TTL = 2.0
#: Last-use times are written at most this often per token or session.
_TOUCH_EVERY = 60.0
_PRUNE_EVERY = 600.0


class InvalidCredentials(Exception):
    """A bearer token or session cookie was sent but is not valid (401)."""


class LoginRefused(Exception):
    """Wrong user name or password (the same message for both)."""


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request carries: a bearer token, a session cookie, proxy headers."""

    bearer: str | None
    session: str | None
    headers: Mapping[str, str]
    client: ClientInfo


class AuthService:
    def __init__(
        self, *, store: AuthStore, config: AuthConfig, admin_token: str | None, clock: Clock
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._admin_token = admin_token
        self.limiter = LoginLimiter(
            attempts=config.login_attempts, window=config.login_window, clock=clock
        )
        self.trusted_networks = [ipaddress.ip_network(n) for n in config.trusted_proxies]
        self._enabled: tuple[float, bool] | None = None
        self._touched: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._http: Any = None
        #: Single sign-on through OpenID Connect, when ``auth.oidc`` is set.
        self.oidc: OIDCLogin | None = None

    # Life cycle: expired sessions and old audit entries are pruned periodically.
    def start(self) -> None:
        self._task = asyncio.create_task(self._prune_loop(), name="auth-prune")
        if self.config.oidc is not None:
            import httpx

            from modelmonitor.auth.oidc import OIDCLogin

            self._http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
            self.oidc = OIDCLogin(
                config=self.config, store=self.store, clock=self.clock, http=self._http
            )

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        if self._http is not None:
            await self._http.aclose()

    async def prune(self) -> None:
        now = self.clock()
        await self.store.prune_sessions(now)
        await self.store.prune_audit(now - self.config.audit_retention)

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune()
            except (OSError, RuntimeError) as exc:  # a database hiccup: try next round
                log.warning("pruning sessions and audit log failed: %s", exc)
            await asyncio.sleep(_PRUNE_EVERY)

    # Is authentication on?
    @property
    def configured_outside_store(self) -> bool:
        return self._admin_token is not None or self.config.sso

    async def enabled(self) -> bool:
        if self.configured_outside_store:
            return True
        now = self.clock()
        if self._enabled is None or now - self._enabled[0] > _ENABLED_TTL:
            self._enabled = (now, await self.store.has_credentials(now))
        return self._enabled[1]

    def forget_enabled(self) -> None:
        self._enabled = None

    # Who is this?
    async def authenticate(self, credentials: Credentials) -> Principal | None:
        """The principal, or None (anonymous). Raises :class:`InvalidCredentials`
        for a token or session that was sent but is not (or no longer) valid."""
        if credentials.bearer is not None:
            return await self._bearer(credentials.bearer)
        if credentials.session:
            principal = await self._session(credentials.session)
            if principal is not None:
                return principal
        if self.config.proxy_auth and credentials.client.via_trusted_proxy:
            principal = self._proxy_user(credentials.headers)
            if principal is not None:
                return principal
        if not await self.enabled():
            return LOCAL_PRINCIPAL
        if credentials.session:
            raise InvalidCredentials("the session has expired; log in again")
        return None

    async def _bearer(self, secret: str) -> Principal:
        if self._admin_token is not None and same_secret(secret, self._admin_token):
            return Principal(name="admin-token", role=Role.ADMIN, method=AuthMethod.ADMIN_TOKEN)
        token = await self.store.token_by_hash(hash_secret(secret))
        now = self.clock()
        if token is None:
            raise InvalidCredentials("invalid token")
        if token.expires_at is not None and token.expires_at <= now:
            raise InvalidCredentials("the token has expired")
        if now - self._touched.get(token.id, 0.0) > _TOUCH_EVERY:
            self._touched[token.id] = now
            await self.store.touch_token(token.id, now)
        return Principal(
            name=f"token:{token.name}",
            role=Role.parse(token.role),
            method=AuthMethod.TOKEN,
            credential_id=token.id,
        )

    async def authenticate_cookie(self, cookie: str) -> Principal | None:
        """The principal of a live session cookie, else None."""
        return await self._session(cookie)

    async def _session(self, cookie: str) -> Principal | None:
        id_hash = hash_secret(cookie)
        session = await self.store.get_session(id_hash)
        now = self.clock()
        if session is None:
            return None
        if session.expires_at <= now or now - session.last_seen_at > self.idle_timeout:
            await self.store.delete_session(id_hash)
            return None
        if now - session.last_seen_at > min(_TOUCH_EVERY, self.idle_timeout / 10):
            await self.store.touch_session(id_hash, now)
        return Principal(
            name=session.user,
            role=Role.parse(session.role),
            method=AuthMethod.SESSION,
            csrf=session.csrf,
            credential_id=id_hash,
        )

    @property
    def idle_timeout(self) -> float:
        return self.config.session_idle_timeout

    def _proxy_user(self, headers: Mapping[str, str]) -> Principal | None:
        config = self.config
        name = headers.get(config.proxy_user_header.lower()) or headers.get(
            config.proxy_email_header.lower()
        )
        if not name:
            return None
        groups = split_groups(headers.get(config.proxy_groups_header.lower(), ""))
        role = role_for_groups(config, groups)
        if role is None:
            return None
        return Principal(name=name.strip()[:128], role=role, method=AuthMethod.PROXY)

    # Logins and sessions.
    async def login(self, *, username: str, password: str, client: ClientInfo) -> str:
        """Check a password and open a session; returns the cookie value."""
        keys = (f"user:{username.lower()}", f"address:{client.address}")
        wait = self.limiter.retry_after(*keys)
        actor = Actor(name=username[:128], role="", source=client.address)
        if wait > 0:
            await record(
                store=self.store,
                clock=self.clock,
                actor=actor,
                action="login",
                target=username[:128],
                outcome="rate-limited",
            )
            raise RateLimited(wait)
        user = await self.store.get_user(username)
        if not await verify_password(user.password_hash if user else None, password):
            self.limiter.failed(*keys)
            await record(
                store=self.store,
                clock=self.clock,
                actor=actor,
                action="login",
                target=username[:128],
                outcome="failed",
            )
            raise LoginRefused("wrong user name or password")
        assert user is not None
        self.limiter.succeeded(keys[0])
        cookie = await self.open_session(
            user=user.name, role=Role.parse(user.role), source="password"
        )
        await record(
            store=self.store,
            clock=self.clock,
            actor=Actor(name=user.name, role=user.role, source=client.address),
            action="login",
            target=user.name,
        )
        return cookie

    async def open_session(self, *, user: str, role: Role, source: str) -> str:
        cookie = new_secret()
        now = self.clock()
        await self.store.put_session(
            SessionRecord(
                id_hash=hash_secret(cookie),
                user=user,
                role=role.label,
                csrf=new_secret(),
                source=source,
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.config.session_ttl,
            )
        )
        return cookie

    async def logout(self, principal: Principal, client: ClientInfo) -> None:
        if principal.method is AuthMethod.SESSION:
            await self.store.delete_session(principal.credential_id)
        await record(
            store=self.store,
            clock=self.clock,
            actor=Actor(name=principal.name, role=principal.role.label, source=client.address),
            action="logout",
            target=principal.name,
        )
