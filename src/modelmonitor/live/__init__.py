"""Live state: pick a backend by URL scheme (``memory://``, ``redis://``)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from modelmonitor.live.base import WINDOWS, LiveSnapshot, LiveState, ServiceLive, WindowStats
from modelmonitor.types import Clock

__all__ = ["WINDOWS", "LiveSnapshot", "LiveState", "ServiceLive", "WindowStats", "create_live"]


def create_live(url: str, *, clock: Clock = time.time) -> LiveState:
    """Build (not connect) the live state for ``url``; drivers are imported only when used."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from modelmonitor.live.memory import MemoryLiveState

        return MemoryLiveState(url, clock=clock)
    if scheme in ("redis", "rediss"):
        from modelmonitor.live.redis import RedisLiveState  # type: ignore[import-not-found,unused-ignore]

        live: LiveState = RedisLiveState(url, clock=clock)
        return live
    raise ValueError(f"unsupported cache URL scheme {scheme!r}: use memory:// or redis://")
