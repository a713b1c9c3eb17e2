"""The worker's side of sampling: redact, extract, profile, and store, off the proxy's path.

Registered as a worker batch hook. Each sampled exchange is redacted first; only
the redacted text and the features read from it are kept. Profiles accumulate in
memory per service and minute bucket and are appended to the store every few
seconds (readers merge the rows of a bucket).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.events import EventBatch, PayloadSample, RequestEvent
from modelmonitor.quality.config import SamplingConfig
from modelmonitor.quality.extract import extract_predictions, extract_rows, mapped_rows
from modelmonitor.quality.llm import extract_llm
from modelmonitor.quality.profile import Scalar, WindowProfile, encode_profile
from modelmonitor.quality.redact import Pattern, Redactor
from modelmonitor.quality.store.base import QualityStore, StoredSample
from modelmonitor.types import Clock

__all__ = ["BUCKET_SECONDS", "QualityProcessor", "QualityStats"]

Row = dict[str, Scalar]

log = logging.getLogger("modelmonitor.quality")

#: Profiles are kept per minute and merged into any longer window when read.
BUCKET_SECONDS = 60.0
_MAX_FEATURES = 512


class QualityStats(msgspec.Struct, kw_only=True):
    samples_total: int = 0
    samples_stored_total: int = 0
    unparsed_total: int = 0
    rows_total: int = 0
    flush_failures_total: int = 0
    last_error: str = ""


class _Service:
    __slots__ = ("config", "redactor", "seen")

    def __init__(self, config: SamplingConfig) -> None:
        self.config = config
        self.redactor = Redactor(
            patterns=[Pattern(p) for p in config.redact],
            custom=config.redact_patterns,
            allow_fields=config.allow_fields,
            deny_fields=config.deny_fields,
        )
        self.seen: set[str] = set()


class QualityProcessor:
    def __init__(
        self,
        *,
        store: QualityStore,
        services: Mapping[str, SamplingConfig],
        flush_every_seconds: float = 5.0,
        retention_every_seconds: float = 600.0,
        profile_retention_seconds: float | None = None,
        bucket_seconds: float = BUCKET_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._services = {name: _Service(cfg) for name, cfg in services.items() if cfg.enabled}
        self._flush_every = flush_every_seconds
        self._retention_every = retention_every_seconds
        self._profile_retention = profile_retention_seconds
        self._clock = clock
        self._bucket = bucket_seconds
        self._profiles: dict[tuple[str, float], WindowProfile] = {}
        self._rows: dict[tuple[str, float], tuple[list[Row], list[Row]]] = {}
        self._pending: list[StoredSample] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock = asyncio.Lock()
        self.stats = QualityStats()

    @property
    def enabled(self) -> bool:
        return bool(self._services)

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="quality-flush"))
        self._tasks.append(asyncio.create_task(self._retain(), name="quality-retention"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self.flush()

    async def __call__(self, batch: EventBatch) -> None:
        """The worker hook: profile a stored batch's samples."""
        if batch.samples:
            self.process(batch)

    def process(self, batch: EventBatch) -> None:
        events = {event.id: event for event in batch.events}
        for sample in batch.samples:
            event = events.get(sample.event_id)
            if event is None or event.service not in self._services:
                continue
            self.stats.samples_total += 1
            self._pending.append(self._profile(self._services[event.service], event, sample))

    def _profile(
        self, service: _Service, event: RequestEvent, sample: PayloadSample
    ) -> StoredSample:
        redactor = service.redactor
        request_text, request = redactor.body(sample.request) if sample.request else ("", None)
        response_text, response = redactor.body(sample.response) if sample.response else ("", None)
        bucket = event.start - event.start % self._bucket
        rows, outputs = _read(service.config, request, response, ok=event.status < 400)
        if not rows and not outputs and request is None:
            self.stats.unparsed_total += 1
        for row in rows:
            if len(service.seen) >= _MAX_FEATURES:
                break
            service.seen.update(row)
        # Profiled in bulk at the next flush: numbers are summarised a column at a time.
        pending = self._rows.get((event.service, bucket))
        if pending is None:
            pending = self._rows[(event.service, bucket)] = ([], [])
        pending[0].extend(rows)
        pending[1].extend(outputs)
        self.stats.rows_total += len(rows)
        return StoredSample(
            event=event,
            request=request_text,
            response=response_text,
            request_truncated=sample.request_truncated,
            response_truncated=sample.response_truncated,
            features=rows[0] if rows else {},
            outputs=outputs[0] if outputs else {},
        )

    async def flush(self) -> None:
        """Append accumulated profiles and samples to the store."""
        async with self._flush_lock:
            self._summarise()
            profiles, self._profiles = self._profiles, {}
            samples, self._pending = self._pending, []
            rows = [(svc, bucket, encode_profile(p)) for (svc, bucket), p in profiles.items()]
            try:
                await self._store.write_profiles(rows)
                self.stats.samples_stored_total += await self._store.write_samples(samples)
            except Exception as exc:  # noqa: BLE001 - keep the data for the next round
                self.stats.flush_failures_total += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("quality store write failed, retrying: %s", exc)
                for key, profile in profiles.items():
                    self._profiles.setdefault(key, WindowProfile()).merge(profile)
                self._pending[:0] = samples

    def _summarise(self) -> None:
        pending, self._rows = self._rows, {}
        for (name, bucket), (rows, outputs) in pending.items():
            window = self._profiles.get((name, bucket))
            if window is None:
                window = self._profiles[(name, bucket)] = WindowProfile()
            service = self._services.get(name)
            window.add_rows(rows, seen=service.seen if service else ())
            window.add_output_rows(outputs)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every)
            await self.flush()

    async def _retain(self) -> None:
        samples_keep = max((s.config.retention for s in self._services.values()), default=0.0)
        while True:
            now = self._clock()
            try:
                await self._store.delete_before(
                    samples_before=now - samples_keep if samples_keep else 0.0,
                    profiles_before=now - self._profile_retention
                    if self._profile_retention
                    else 0.0,
                )
            except Exception as exc:  # noqa: BLE001 - retention retries on its next round
                log.warning("quality retention failed: %s", exc)
            await asyncio.sleep(self._retention_every)


def _read(
    config: SamplingConfig, request: Any, response: Any, *, ok: bool
) -> tuple[list[dict[str, Scalar]], list[dict[str, Scalar]]]:
    """Feature rows and outputs of one redacted exchange."""
    llm = extract_llm(request, response if ok else None)
    if llm is not None:
        features, answer = llm
        return ([features] if features else []), ([answer] if answer else [])
    rows = mapped_rows(request, config.features) if config.features else extract_rows(request)
    return rows, extract_predictions(response, kind=config.prediction) if ok else []
