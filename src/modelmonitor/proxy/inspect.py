"""Per-exchange body inspection: a small hook the proxy feeds body chunks as they pass.

A service may start a :class:`BodyHook` for a request (``Service.start_hook``). The
proxy then hands it every request-body chunk and every response-body chunk (after
de-chunking, in order, as they arrive) and, when the exchange ends however it ends,
lets it complete the recorded event. The contract, for whoever writes a hook
(model-aware measurement, payload sampling):

- Never block and never buffer the stream: copy at most a fixed byte budget per
  exchange (:class:`Capped` does that) and do per-chunk work that is a few C-level
  scans, not parsing of everything that passes.
- ``finish`` runs once, on the event loop, with the event the proxy built; return it
  (or a copy with fields filled in via ``msgspec.structs.replace``). Hand anything
  bigger (a sampled body) to your own off-loop sink there.
- No hook is created unless a service needs one: exchanges without a hook cost one
  ``is None`` test per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from modelmonitor.events import RequestEvent

__all__ = ["BodyHook", "Capped", "HookChain", "HookFactory", "chain"]


class BodyHook(Protocol):
    """Sees one exchange's bodies as they pass and completes its event."""

    def request_body(self, chunk: bytes) -> None: ...

    def response_body(self, chunk: bytes) -> None: ...

    def finish(self, event: RequestEvent) -> RequestEvent: ...


#: ``(method, path, t0) -> hook or None``: decides per request whether to inspect.
#: ``path`` is the service-relative path without the query; ``t0`` is the
#: ``perf_counter()`` at which the request head was parsed.
HookFactory = Callable[[str, str, float], BodyHook | None]


class Capped:
    """At most ``limit`` bytes of a body, and whether more was cut off."""

    __slots__ = ("data", "limit", "seen")

    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self.limit = limit
        self.seen = 0

    def add(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room] if len(chunk) > room else chunk

    @property
    def truncated(self) -> bool:
        return self.seen > len(self.data)


class HookChain:
    """Several hooks on one exchange, fed in order."""

    __slots__ = ("hooks",)

    def __init__(self, hooks: Sequence[BodyHook]) -> None:
        self.hooks = tuple(hooks)

    def request_body(self, chunk: bytes) -> None:
        for hook in self.hooks:
            hook.request_body(chunk)

    def response_body(self, chunk: bytes) -> None:
        for hook in self.hooks:
            hook.response_body(chunk)

    def finish(self, event: RequestEvent) -> RequestEvent:
        for hook in self.hooks:
            event = hook.finish(event)
        return event


def chain(factories: Sequence[HookFactory]) -> HookFactory | None:
    """One factory starting every hook of ``factories`` that wants the exchange."""
    if not factories:
        return None
    if len(factories) == 1:
        return factories[0]

    def start(method: str, path: str, t0: float) -> BodyHook | None:
        hooks = [hook for f in factories if (hook := f(method, path, t0)) is not None]
        if not hooks:
            return None
        return hooks[0] if len(hooks) == 1 else HookChain(hooks)

    return start
