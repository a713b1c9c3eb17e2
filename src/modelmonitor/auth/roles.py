"""Roles and the principal a request acts as."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["USER_ROLES", "AuthMethod", "Principal", "Role"]


class Role(enum.IntEnum):
    """What a principal may do; each role includes the ones below it.

    ``metrics`` is for scrape tokens only: it reads ``/metrics`` and nothing else.
    """

    METRICS = 1
    VIEWER = 2
    EDITOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {text!r}: use one of {choices}") from None


#: Roles a person (a user or an SSO login) may hold; ``metrics`` is for tokens.
USER_ROLES = (Role.VIEWER, Role.EDITOR, Role.ADMIN)


class AuthMethod(enum.StrEnum):
    """How a principal proved who it is."""

    #: Authentication is off (loopback with no users, or ``--insecure-no-auth``).
    NONE = "none"
    SESSION = "session"
    TOKEN = "token"
    ADMIN_TOKEN = "admin-token"
    PROXY = "proxy"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    method: AuthMethod
    #: The session's CSRF token (cookie-authenticated requests only).
    csrf: str = ""
    #: The session or token id, for logout and audit.
    credential_id: str = ""

    @property
    def cookie_based(self) -> bool:
        return self.method is AuthMethod.SESSION
