"""Authentication, roles and the audit log: users, API tokens, sessions, SSO.

See docs/security.md for the model. ``AuthService`` answers "who is this?";
:mod:`modelmonitor.auth.accounts` manages users and tokens for the API and CLI.
"""

from __future__ import annotations

from modelmonitor.auth.roles import AuthMethod, Principal, Role
from modelmonitor.auth.service import AuthService
from modelmonitor.auth.store import AuthStore, create_auth_store

__all__ = ["AuthMethod", "AuthService", "AuthStore", "Principal", "Role", "create_auth_store"]
