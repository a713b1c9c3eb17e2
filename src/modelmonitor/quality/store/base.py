"""The quality store contract: redacted samples, window profiles, drift references."""

from __future__ import annotations

from typing import Protocol

import msgspec

from modelmonitor.events import RequestEvent

__all__ = ["QualityStore", "Reference", "SampleFilter", "StoredSample"]


class StoredSample(msgspec.Struct, kw_only=True):
    """A sampled exchange after redaction, with its event's timing."""

    event: RequestEvent
    request: str
    response: str
    request_truncated: bool = False
    response_truncated: bool = False
    #: Features and outputs read from this exchange (first row), for the viewer.
    features: dict[str, float | str | None] = {}
    outputs: dict[str, float | str | None] = {}


class SampleFilter(msgspec.Struct, kw_only=True):
    service: str | None = None
    start: float | None = None
    end: float | None = None
    #: Text the (redacted) request or response must contain.
    contains: str | None = None
    #: Newest-first paging: only samples strictly before ``(start, event_id)``.
    before: tuple[float, str] | None = None
    limit: int = 100


class Reference(msgspec.Struct, kw_only=True):
    """A named reference of a service: where it came from, and its profile bytes."""

    service: str
    name: str
    created_at: float
    #: ``file``, ``range`` or ``version``, with details (file name, bounds, version).
    source: dict[str, str | float]
    profile: bytes


class QualityStore(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def write_samples(self, samples: list[StoredSample]) -> int:
        """Store samples (idempotent on event id); return how many were new."""
        ...

    async def get_sample(self, event_id: str) -> StoredSample | None: ...

    async def samples(self, query: SampleFilter) -> list[StoredSample]: ...

    async def write_profiles(self, rows: list[tuple[str, float, bytes]]) -> None:
        """Append ``(service, bucket_start, profile)`` rows; readers merge rows of a bucket."""
        ...

    async def profiles(self, service: str, start: float, end: float) -> list[tuple[float, bytes]]:
        """``(bucket_start, profile)`` rows with ``start <= bucket < end``, oldest first."""
        ...

    async def profiled_services(self) -> list[str]: ...

    async def first_profile(self, service: str) -> float | None:
        """The oldest profiled bucket of ``service`` (when its traffic was first sampled)."""
        ...

    async def put_reference(self, reference: Reference) -> None: ...

    async def get_reference(self, service: str, name: str) -> Reference | None: ...

    async def references(self, service: str) -> list[Reference]: ...

    async def delete_reference(self, service: str, name: str) -> bool: ...

    async def delete_before(
        self, *, samples_before: float, profiles_before: float
    ) -> tuple[int, int]: ...
