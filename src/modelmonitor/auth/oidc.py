"""OpenID Connect login: authorization code flow with PKCE, state and nonce.

authlib builds the authorization and token requests; joserfc checks the ID
token's signature against the provider's JWKS, and its issuer, audience,
expiry and nonce. Pending logins (state, nonce, PKCE verifier) live in the auth
store, so any API replica can finish a login another one started, once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from modelmonitor.auth.credentials import new_secret
from modelmonitor.auth.models import LoginState
from modelmonitor.auth.roles import Role
from modelmonitor.auth.sso import role_for_groups, split_groups
from modelmonitor.auth.store.base import AuthStore
from modelmonitor.settings import AuthConfig, OIDCConfig
from modelmonitor.types import Clock

__all__ = ["OIDCError", "OIDCIdentity", "OIDCLogin"]

#: How long a browser may take at the provider before the login is void.
_LOGIN_TTL = 600.0
#: Discovery documents and keys are re-read after this long (key rotation).
_METADATA_TTL = 3600.0
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class OIDCError(Exception):
    """The login cannot complete; the message is safe to show."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class OIDCIdentity:
    name: str
    role: Role
    groups: tuple[str, ...]
    next_path: str


def safe_next(path: str | None) -> str:
    """Only paths on this site: never ``//evil.example`` or ``https://...``."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


class OIDCLogin:
    def __init__(
        self, *, config: AuthConfig, store: AuthStore, clock: Clock, http: httpx.AsyncClient
    ) -> None:
        if config.oidc is None:
            raise ValueError("OIDC is not configured")
        self.auth = config
        self.config: OIDCConfig = config.oidc
        self._store = store
        self._clock = clock
        self._http = http
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        from authlib.oidc.discovery import OpenIDProviderMetadata

        if self._metadata is None or time.monotonic() - self._metadata[0] > _METADATA_TTL:
            url = f"{self.config.issuer}/.well-known/openid-configuration"
            document = await self._get_json(url)
            metadata = OpenIDProviderMetadata(document)
            try:
                metadata.validate_issuer()
                metadata.validate_authorization_endpoint()
                metadata.validate_token_endpoint()
                metadata.validate_jwks_uri()
            except ValueError as exc:
                raise OIDCError(
                    f"the provider's discovery document is invalid: {exc}", status=502
                ) from None
            if document["issuer"].rstrip("/") != self.config.issuer.rstrip("/"):
                raise OIDCError("the provider's issuer does not match auth.oidc.issuer", status=502)
            self._metadata = (time.monotonic(), document)
        return self._metadata[1]

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OIDCError(f"the identity provider is unreachable: {exc}", status=502) from None
        if not isinstance(document, dict):
            raise OIDCError(f"{url} did not answer a JSON object", status=502)
        return document

    async def start(self, *, redirect_uri: str, next_path: str | None) -> str:
        """The provider URL to send the browser to."""
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        metadata = await self.metadata()
        state = LoginState(
            state=new_secret(),
            nonce=new_secret(),
            verifier=new_secret() + new_secret(),
            next_path=safe_next(next_path),
            expires_at=self._clock() + _LOGIN_TTL,
        )
        await self._store.put_login_state(state)
        url: str = prepare_grant_uri(
            metadata["authorization_endpoint"],
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=" ".join(self.config.scopes),
            state=state.state,
            nonce=state.nonce,
            code_challenge=create_s256_code_challenge(state.verifier),
            code_challenge_method="S256",
        )
        return url

    async def finish(self, *, code: str, state: str, redirect_uri: str) -> OIDCIdentity:
        """Check the callback, redeem the code, verify the ID token, map groups to a role."""
        pending = await self._store.take_login_state(state, self._clock())
        if pending is None:
            raise OIDCError("this login expired or was already used; start again", status=400)
        metadata = await self.metadata()
        id_token = await self._redeem(metadata, code, pending, redirect_uri)
        claims = await self._verify(metadata, id_token, pending.nonce)
        name = next((str(claims[c]) for c in self.config.username_claims if claims.get(c)), None)
        if name is None:
            raise OIDCError("the ID token names no user (auth.oidc.username_claims)")
        raw_groups = claims.get(self.config.groups_claim, [])
        groups = (
            split_groups(raw_groups)
            if isinstance(raw_groups, str)
            else [str(group) for group in raw_groups if isinstance(group, str | int)]
        )
        role = role_for_groups(self.auth, groups)
        if role is None:
            raise OIDCError(f"{name} is in no group that has access (auth.group_roles)", status=403)
        return OIDCIdentity(
            name=name[:128], role=role, groups=tuple(groups), next_path=pending.next_path
        )

    async def _redeem(
        self, metadata: dict[str, Any], code: str, pending: LoginState, redirect_uri: str
    ) -> str:
        from authlib.oauth2.rfc6749.parameters import prepare_token_request

        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=pending.verifier,
            client_id=self.config.client_id,
        )
        secret = self.config.client_secret
        auth = (self.config.client_id, secret.get_secret_value()) if secret else None
        try:
            response = await self._http.post(
                metadata["token_endpoint"],
                content=body,
                auth=auth,  # type: ignore[arg-type]
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
            )
        except httpx.HTTPError as exc:
            raise OIDCError(f"the identity provider is unreachable: {exc}", status=502) from None
        if response.status_code != 200:
            raise OIDCError(f"the identity provider refused the code (HTTP {response.status_code})")
        try:
            id_token = response.json().get("id_token")
        except ValueError:
            id_token = None
        if not isinstance(id_token, str):
            raise OIDCError("the identity provider sent no ID token")
        return id_token

    async def _key_set(self, metadata: dict[str, Any], *, refresh: bool) -> Any:
        from joserfc.jwk import KeySet

        if refresh or self._keys is None or time.monotonic() - self._keys[0] > _METADATA_TTL:
            document = await self._get_json(metadata["jwks_uri"])
            self._keys = (time.monotonic(), KeySet.import_key_set(document))  # type: ignore[arg-type]
        return self._keys[1]

    async def _verify(self, metadata: dict[str, Any], id_token: str, nonce: str) -> dict[str, Any]:
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwt import JWTClaimsRegistry

        registry = JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=60,
            iss={"essential": True, "value": metadata["issuer"]},
            aud={"essential": True, "value": self.config.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        for refresh in (False, True):  # a new key after rotation: read the JWKS again once
            try:
                token = jwt.decode(
                    id_token, await self._key_set(metadata, refresh=refresh), algorithms=_ALGORITHMS
                )
                registry.validate(token.claims)
            except (JoseError, ValueError) as exc:
                if refresh:
                    raise OIDCError(f"the ID token is not valid: {exc}") from None
                continue
            return dict(token.claims)
        raise OIDCError("the ID token is not valid")
