"""A small but real OpenID Connect provider for the SSO tests: discovery, JWKS,
an authorization endpoint that signs the configured person in at once, and a
token endpoint that checks the client secret and the PKCE verifier and issues
an RS256-signed ID token (joserfc)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

__all__ = ["OIDCProvider"]


@dataclass
class OIDCProvider:
    client_id: str = "modelmonitor"
    client_secret: str = "provider-secret-123"
    #: Claims of the person who signs in next (``sub`` and friends).
    person: dict[str, Any] = field(
        default_factory=lambda: {"sub": "u-1", "email": "carol@example.com", "groups": ["ml"]}
    )
    #: Misbehaviour for negative tests.
    wrong_nonce: bool = False
    audience: str | None = None
    sign_with_other_key: bool = False
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery(request: Request) -> dict[str, Any]:
            issuer = str(request.base_url).rstrip("/")
            return {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False, kid="k1", use="sig", alg="RS256")]}

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            query = request.query_params
            if query.get("client_id") != self.client_id or query.get("response_type") != "code":
                raise HTTPException(400, "bad client or response type")
            if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                raise HTTPException(400, "PKCE is required")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": query["code_challenge"],
                "nonce": query.get("nonce"),
                "redirect_uri": query["redirect_uri"],
                "issuer": str(request.base_url).rstrip("/"),
            }
            target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            return RedirectResponse(target, status_code=302)

        @app.post("/token")
        async def token(request: Request) -> dict[str, Any]:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            grant_type, code = form.get("grant_type", ""), form.get("code", "")
            redirect_uri, code_verifier = form.get("redirect_uri"), form.get("code_verifier", "")
            self.token_requests.append({"code": code, "verifier": code_verifier})
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                raise HTTPException(401, "bad client credentials")
            pending = self.codes.pop(code, None)
            if grant_type != "authorization_code" or pending is None:
                raise HTTPException(400, "invalid_grant")
            digest = hashlib.sha256(code_verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if challenge != pending["challenge"] or redirect_uri != pending["redirect_uri"]:
                raise HTTPException(400, "PKCE or redirect_uri mismatch")
            now = int(time.time())
            claims = {
                **self.person,
                "iss": pending["issuer"],
                "aud": self.audience or self.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": "not-the-nonce" if self.wrong_nonce else pending["nonce"],
            }
            key = RSAKey.generate_key(2048) if self.sign_with_other_key else self.key
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
            return {"access_token": "at", "token_type": "Bearer", "id_token": id_token}

        return app
