"""The audit log: who changed what, from where, and what it was before and after."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelmonitor.auth.models import AuditEntry
from modelmonitor.auth.store.base import AuthStore
from modelmonitor.types import Clock

__all__ = ["Actor", "mask_secrets", "record", "summarise"]

#: Keys whose values are secrets wherever they appear in a summary.
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|credential|webhook_url|"
    r"private[_-]?key|signature",
    re.IGNORECASE,
)
_MAX_TEXT = 500
_MAX_ITEMS = 50


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a principal's name and role, and the source address."""

    name: str
    role: str
    source: str


def mask_secrets(value: Any, *, depth: int = 0) -> Any:
    """A copy with secret-looking keys masked, header values masked, long text cut."""
    if depth > 6:
        return "..."
    if isinstance(value, dict):
        masked: dict[str, Any] = {}
        for key, item in list(value.items())[:_MAX_ITEMS]:
            text = str(key)
            if _SECRET_KEY.search(text):
                masked[text] = "***" if item not in (None, "", {}) else item
            elif text.lower() == "headers" and isinstance(item, dict):
                masked[text] = dict.fromkeys(item, "***")
            else:
                masked[text] = mask_secrets(item, depth=depth + 1)
        return masked
    if isinstance(value, list):
        return [mask_secrets(item, depth=depth + 1) for item in value[:_MAX_ITEMS]]
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return value[:_MAX_TEXT] + "..."
    return value


def summarise(value: Any) -> dict[str, Any] | None:
    """A masked summary of a JSON document for the before/after columns."""
    if value is None:
        return None
    masked = mask_secrets(value)
    return masked if isinstance(masked, dict) else {"value": masked}


async def record(
    *,
    store: AuthStore,
    clock: Clock,
    actor: Actor,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    outcome: str = "ok",
) -> None:
    await store.add_audit(
        AuditEntry(
            at=clock(),
            actor=actor.name,
            role=actor.role,
            action=action,
            target=target,
            source=actor.source,
            outcome=outcome,
            before=summarise(before),
            after=summarise(after),
        )
    )
