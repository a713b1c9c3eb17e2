"""Login rate limiting: failed attempts per user name and per source address."""

from __future__ import annotations

import collections

from modelmonitor.types import Clock

__all__ = ["LoginLimiter"]

#: Keys remembered at most (oldest forgotten first), so a flood of names cannot
#: grow memory without bound.
_MAX_KEYS = 10_000


class LoginLimiter:
    """A sliding window of failures; ``attempts`` per key per ``window`` seconds.

    Kept in process memory: with several API replicas each counts its own share,
    which still bounds guessing to ``attempts`` x replicas per window.
    """

    def __init__(self, *, attempts: int, window: float, clock: Clock) -> None:
        self._attempts = attempts
        self._window = window
        self._clock = clock
        self._failures: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def retry_after(self, *keys: str) -> float:
        """Seconds until a login for these keys may be tried again (0: now)."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            recent = [at for at in self._failures.get(key, ()) if at > now - self._window]
            if len(recent) >= self._attempts:
                wait = max(wait, recent[-self._attempts] + self._window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            recent = [at for at in self._failures.pop(key, []) if at > now - self._window]
            recent.append(now)
            self._failures[key] = recent[-self._attempts :]
            while len(self._failures) > _MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
