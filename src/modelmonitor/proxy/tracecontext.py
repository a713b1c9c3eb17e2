"""W3C trace context (``traceparent``) for services that propagate traces.

The proxy continues the caller's trace, or starts one, and forwards its own span as
the parent of the model server's. Only services with ``propagate_trace: true`` pay for
this; for the others ``traceparent`` passes through untouched like any header.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

__all__ = ["TRACEPARENT", "Trace", "continue_trace", "with_traceparent"]

#: The header's name, lower-case (as the proxy's header tables key it).
TRACEPARENT = b"traceparent"
_VALID = re.compile(rb"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
_EXISTING = re.compile(rb"(?im)^traceparent:[^\r\n]*\r\n")


class Trace(NamedTuple):
    trace_id: str
    span_id: str  # the proxy's own span
    parent_span_id: str  # the caller's span, "" when the proxy started the trace
    flags: str

    @property
    def header(self) -> bytes:
        return f"traceparent: 00-{self.trace_id}-{self.span_id}-{self.flags}\r\n".encode()


def continue_trace(incoming: bytes | None) -> Trace:
    """The proxy's span: a child of ``incoming`` when that is a valid ``traceparent``
    (version 00 or a later one read as 00, as the spec says), else a new trace."""
    match = _VALID.match(incoming.strip().lower()) if incoming else None
    span = os.urandom(8).hex()
    if match is not None:
        version, trace_id, parent, flags = match.groups()
        if version != b"ff" and trace_id != _ZERO_TRACE and parent != _ZERO_SPAN:
            return Trace(trace_id.decode(), span, parent.decode(), flags.decode())
    return Trace(os.urandom(16).hex(), span, "", "01")


def with_traceparent(head: bytes, trace: Trace | None) -> bytes:
    """A request head with any ``traceparent`` replaced by the proxy's span (``None``:
    the head as it is)."""
    if trace is None:
        return head
    head = _EXISTING.sub(b"", head)
    return head[:-2] + trace.header + b"\r\n"
