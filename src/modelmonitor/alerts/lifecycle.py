"""The alert lifecycle as one pure function: inactive -> pending -> firing -> resolved.

``step`` takes the stored state, whether the rule's condition holds now, and
whether the alert is silenced, and returns the next state plus the notification
to send ("firing", "repeat", "resolved" or none). It never touches the store or
the clock, so the rules of the lifecycle are tested without either.

- inactive/resolved + condition holds: pending (or firing at once when ``for`` is 0)
- pending + holds for ``for`` seconds: firing, notify "firing"
- pending + stops holding: inactive (no notification)
- firing + holds: notify "repeat" every ``repeat_interval`` (0 = never)
- firing + not holding: resolved once ``keep_firing_for`` seconds have passed since the
  first evaluation that found it not holding (0: at once); notify "resolved" (only
  when the firing notification went out). Holding again meanwhile keeps it firing.
- a silenced alert changes state but sends nothing; when the silence ends while it
  still fires, the firing notification goes out then.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from modelmonitor.alerts.models import AlertState
from modelmonitor.alerts.rules import RuleBase

__all__ = ["Reason", "Step", "step"]

Reason = Literal["firing", "repeat", "resolved"]


class Step(msgspec.Struct, kw_only=True):
    state: AlertState
    #: The notification to send, if any.
    reason: Reason | None = None
    #: True when the status changed (a history entry is due).
    transition: bool = False
    #: True when anything worth storing changed.
    changed: bool = False


def _fire(state: AlertState, *, now: float, silenced: bool) -> tuple[AlertState, Reason | None]:
    fired = msgspec.structs.replace(
        state,
        status="firing",
        firing_since=now,
        resolved_at=None,
        notified=not silenced,
        last_notified_at=None if silenced else now,
    )
    return fired, None if silenced else "firing"


def step(
    state: AlertState,
    rule: RuleBase,
    *,
    active: bool,
    value: float | None,
    now: float,
    silenced: bool = False,
) -> Step:
    """The next state of one alert after one evaluation."""
    status = state.status
    new = msgspec.structs.replace(state, value=value)
    reason: Reason | None = None
    if status in ("inactive", "resolved"):
        if not active:
            return Step(state=state)
        new = msgspec.structs.replace(
            new,
            status="pending",
            active_since=now,
            firing_since=None,
            resolved_at=None,
            last_active_at=now,
            notified=False,
            last_notified_at=None,
        )
        if rule.for_seconds <= 0:
            new, reason = _fire(new, now=now, silenced=silenced)
    elif status == "pending":
        if not active:
            new = msgspec.structs.replace(new, status="inactive", active_since=None)
        else:
            new = msgspec.structs.replace(new, last_active_at=now)
            since = state.active_since if state.active_since is not None else now
            if now - since >= rule.for_seconds:
                new, reason = _fire(new, now=now, silenced=silenced)
    elif status == "firing":
        if active:
            new = msgspec.structs.replace(new, last_active_at=now, cleared_at=None)
        else:
            cleared = state.cleared_at if state.cleared_at is not None else now
            new = msgspec.structs.replace(new, cleared_at=cleared)
        if not active and now - (new.cleared_at or now) >= rule.keep_firing_for:
            new = msgspec.structs.replace(new, status="resolved", resolved_at=now, cleared_at=None)
            if state.notified and not silenced:
                reason = "resolved"
        elif not silenced:
            if not state.notified:
                new = msgspec.structs.replace(new, notified=True, last_notified_at=now)
                reason = "firing"
            elif rule.repeat_interval > 0 and (
                state.last_notified_at is None
                or now - state.last_notified_at >= rule.repeat_interval
            ):
                new = msgspec.structs.replace(new, last_notified_at=now)
                reason = "repeat"
    transition = new.status != state.status
    changed = transition or reason is not None or _differs(state, new)
    if changed:
        new = msgspec.structs.replace(new, updated_at=now)
    return Step(state=new, reason=reason, transition=transition, changed=changed)


def _differs(old: AlertState, new: AlertState) -> bool:
    """Worth a write while pending or firing: the value (shown by the API), the last
    time the condition held, or when it stopped holding (``keep_firing_for``)."""
    if new.status not in ("pending", "firing"):
        return False
    return (
        old.value != new.value
        or old.last_active_at != new.last_active_at
        or old.cleared_at != new.cleared_at
    )
