"""Per-minute rollups: aggregate a batch of events, and merge into stored rows."""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

from modelmonitor.events import RequestEvent
from modelmonitor.sketch import LatencySketch
from modelmonitor.storage.base import ROLLUP_SECONDS, RollupRow

__all__ = ["RollupKey", "aggregate", "downsample", "merge_rows"]

#: (bucket, service, method, route)
RollupKey = tuple[float, str, str, str]


def aggregate(
    events: Iterable[RequestEvent], *, seconds: int = ROLLUP_SECONDS
) -> dict[RollupKey, RollupRow]:
    """Fold events into one row per bucket (a minute unless ``seconds`` says otherwise),
    service, method and route."""
    rows: dict[RollupKey, RollupRow] = {}
    sketches: dict[RollupKey, LatencySketch] = {}
    for event in events:
        bucket = math.floor(event.start / seconds) * seconds
        key = (float(bucket), event.service, event.method, event.route)
        row = rows.get(key)
        if row is None:
            row = rows[key] = RollupRow(
                bucket=float(bucket),
                service=event.service,
                method=event.method,
                route=event.route,
                requests=0,
                errors=0,
                status_classes={},
                request_bytes=0,
                response_bytes=0,
                latency_sum_seconds=0.0,
                latency_sketch=b"",
            )
            sketches[key] = LatencySketch()
        row.requests += 1
        if event.is_error:
            row.errors += 1
        status_class = event.status_class
        row.status_classes[status_class] = row.status_classes.get(status_class, 0) + 1
        row.request_bytes += event.request_bytes
        row.response_bytes += event.response_bytes
        row.latency_sum_seconds += event.latency_seconds
        sketches[key].add(event.latency_seconds)
    for key, row in rows.items():
        row.latency_sketch = sketches[key].to_bytes()
    return rows


def merge_rows(existing: RollupRow, new: RollupRow) -> RollupRow:
    """The sum of two rows of the same key."""
    sketch = LatencySketch.from_bytes(existing.latency_sketch)
    sketch.merge(LatencySketch.from_bytes(new.latency_sketch))
    classes = dict(existing.status_classes)
    for name, count in new.status_classes.items():
        classes[name] = classes.get(name, 0) + count
    return RollupRow(
        bucket=existing.bucket,
        service=existing.service,
        method=existing.method,
        route=existing.route,
        requests=existing.requests + new.requests,
        errors=existing.errors + new.errors,
        status_classes=classes,
        request_bytes=existing.request_bytes + new.request_bytes,
        response_bytes=existing.response_bytes + new.response_bytes,
        latency_sum_seconds=existing.latency_sum_seconds + new.latency_sum_seconds,
        latency_sketch=sketch.to_bytes(),
    )


def downsample(rows: Iterable[RollupRow], *, seconds: int) -> dict[RollupKey, RollupRow]:
    """Rows of a finer tier summed into buckets of ``seconds`` (filling a coarser tier)."""
    out: dict[RollupKey, RollupRow] = {}
    for row in rows:
        bucket = float(math.floor(row.bucket / seconds) * seconds)
        key = (bucket, row.service, row.method, row.route)
        moved = msgspec.structs.replace(row, bucket=bucket)
        out[key] = merge_rows(out[key], moved) if key in out else moved
    return out
