"""Random secrets (API tokens, session ids, CSRF tokens), their hashes and comparison."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_PREFIX", "hash_secret", "new_secret", "new_token", "same_secret"]

#: API tokens start with this, so secret scanners and people can recognise them.
TOKEN_PREFIX = "mmt_"


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_token() -> str:
    return TOKEN_PREFIX + new_secret()


def hash_secret(secret: str) -> str:
    """SHA-256, hex. The secrets are 256 random bits, so no slow hash is needed to
    make a copy of the table useless; the store never sees the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (no early exit on the first differing byte)."""
    return hmac.compare_digest(given.encode(), expected.encode())
