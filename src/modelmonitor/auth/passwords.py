"""Password hashing (argon2id through argon2-cffi) and the password policy."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MIN_PASSWORD_LENGTH", "check_password_policy", "hash_password", "verify_password"]

#: OWASP ASVS 2.1.1: at least 12 characters; 2.1.2: at least 64 allowed.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (64 MiB, t=3)
#: Verified when the user does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("modelmonitor-no-such-user")


def check_password_policy(password: str, *, username: str) -> None:
    """Raise ValueError saying what is wrong with a new password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().lower() == username.strip().lower():
        raise ValueError("password must not be the user name")


async def hash_password(password: str) -> str:
    """An argon2id hash (computed off the event loop: it takes tens of milliseconds)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no such user) costs the same and fails."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)
