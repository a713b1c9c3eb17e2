"""Per-model and per-consumer summaries over a range, from the model rollups."""

from __future__ import annotations

from typing import Literal

import msgspec

from modelmonitor.aggregate import Aggregate, WindowStats
from modelmonitor.storage.base import ROLLUP_SECONDS, EventStore

__all__ = ["DimensionList", "DimensionSummary", "dimension_summaries", "dimension_window"]


class DimensionSummary(msgspec.Struct, kw_only=True):
    """One model's (or consumer's) requests over a range. ``other`` holds the values
    past the service's cardinality cap."""

    name: str
    requests: int
    errors: int
    error_rate: float
    p50_seconds: float | None
    p95_seconds: float | None
    ttft_p95_seconds: float | None
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: int
    tokens_per_second: float | None
    cost_usd: float
    finish_reasons: dict[str, int]


class DimensionList(msgspec.Struct, kw_only=True):
    service: str
    start: float
    end: float
    by: str
    items: list[DimensionSummary]
    #: Requests counted under ``other`` because the cap was reached (this process).
    folded_requests: int


def _summary(name: str, slot: Aggregate) -> DimensionSummary:
    return DimensionSummary(
        name=name,
        requests=slot.requests,
        errors=slot.errors,
        error_rate=slot.errors / slot.requests if slot.requests else 0.0,
        p50_seconds=slot.latency.quantile(0.5),
        p95_seconds=slot.latency.quantile(0.95),
        ttft_p95_seconds=slot.ttft.quantile(0.95) if slot.ttft.count else None,
        prompt_tokens=slot.prompt_tokens,
        completion_tokens=slot.completion_tokens,
        tokens_estimated=slot.tokens_estimated,
        tokens_per_second=(
            slot.completion_tokens / slot.output_seconds if slot.output_seconds else None
        ),
        cost_usd=slot.cost_usd,
        finish_reasons=dict(slot.finish_reasons),
    )


async def dimension_summaries(
    store: EventStore,
    *,
    service: str,
    start: float,
    end: float,
    by: Literal["model", "consumer"],
    model: str | None = None,
    consumer: str | None = None,
) -> DimensionList:
    """One summary per model (or consumer), busiest first; optionally within one
    consumer (or model)."""
    rows = await store.model_rollups(
        start=start, end=end, service=service, model=model, consumer=consumer
    )
    slots: dict[str, Aggregate] = {}
    for row in rows:
        name = row.model if by == "model" else row.consumer
        slot = slots.get(name)
        if slot is None:
            slot = slots[name] = Aggregate()
        slot.merge(row.aggregate())
    items = [_summary(name, slot) for name, slot in slots.items()]
    items.sort(key=lambda item: item.requests, reverse=True)
    return DimensionList(
        service=service,
        start=start,
        end=end,
        by=by,
        items=items,
        folded_requests=store.caps.folded.get(service, 0),
    )


async def dimension_window(
    store: EventStore,
    service: str,
    seconds: int,
    model: str | None,
    consumer: str | None,
    now: float,
) -> WindowStats:
    """The last ``seconds`` of one model's or consumer's requests, in whole minutes
    (from the minute that holds ``now - seconds``)."""
    first = (now - seconds) // ROLLUP_SECONDS * ROLLUP_SECONDS
    rows = await store.model_rollups(
        start=first, end=now + ROLLUP_SECONDS, service=service, model=model, consumer=consumer
    )
    total = Aggregate.total(row.aggregate() for row in rows)
    return total.to_stats(window_seconds=seconds, covered=max(now - first, 1.0))
