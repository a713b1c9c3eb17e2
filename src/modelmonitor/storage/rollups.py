"""Rollups: a batch's :class:`~modelmonitor.aggregate.Aggregate` per bucket (a minute,
or an hour or a day for the coarser tiers), service, method and route, and their
database rows (the stores' shared arithmetic)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from modelmonitor.aggregate import Aggregate, Columns, aggregate_batch, floor_seconds
from modelmonitor.events import RequestEvent
from modelmonitor.storage.base import ROLLUP_SECONDS, RollupRow

__all__ = [
    "ROLLUP_COLUMNS",
    "ROLLUP_KEY",
    "RollupKey",
    "aggregate_rollups",
    "downsample",
    "merge_row",
    "rollup_from_row",
    "rollup_values",
]

#: (bucket, service, method, route)
RollupKey = tuple[float, str, str, str]
#: The key columns of a rollup row, then its value columns.
ROLLUP_KEY = ("bucket", "service", "method", "route")
ROLLUP_COLUMNS: tuple[str, ...] = (*ROLLUP_KEY, *RollupRow.__struct_fields__[4:])
_DIMS = ROLLUP_KEY[1:]
_by_bucket = {seconds: floor_seconds(seconds) for seconds in (ROLLUP_SECONDS, 3600, 86400)}
_classes_decoder = msgspec.json.Decoder(dict[str, int])


def aggregate_rollups(
    events: Sequence[RequestEvent], *, seconds: int = ROLLUP_SECONDS
) -> dict[RollupKey, Aggregate]:
    """Fold events into one aggregate per bucket of ``seconds`` (a minute by default),
    service, method and route (bulk)."""
    by_bucket = _by_bucket.get(seconds) or floor_seconds(seconds)
    grouped = aggregate_batch(Columns(events), dims=_DIMS, bucket=by_bucket)
    rows: dict[RollupKey, Aggregate] = {}
    for (bucket, service, method, route), aggregate in grouped.items():
        rows[(float(bucket), str(service), str(method), str(route))] = aggregate  # type: ignore[arg-type]
    return rows


def to_row(key: RollupKey, aggregate: Aggregate) -> RollupRow:
    bucket, service, method, route = key
    values = dict(zip(RollupRow.__struct_fields__[4:], aggregate.to_columns(), strict=True))
    return RollupRow(bucket=bucket, service=service, method=method, route=route, **values)


def merge_row(existing: RollupRow | None, key: RollupKey, new: Aggregate) -> RollupRow:
    """The stored row plus a batch's aggregate of the same key."""
    if existing is None or not existing.requests:
        return to_row(key, new)
    total = existing.aggregate()
    total.merge(new)
    return to_row(key, total)


def downsample(rows: Iterable[RollupRow], *, seconds: int) -> dict[RollupKey, Aggregate]:
    """Rows of a finer tier summed into buckets of ``seconds`` (filling a coarser tier)."""
    out: dict[RollupKey, Aggregate] = {}
    for row in rows:
        key = (float(row.bucket // seconds * seconds), row.service, row.method, row.route)
        found = out.get(key)
        if found is None:
            out[key] = row.aggregate()
        else:
            found.merge(row.aggregate())
    return out


def rollup_from_row(row: Sequence[Any]) -> RollupRow:
    """A rollup from a database row in :data:`ROLLUP_COLUMNS` order (status classes as
    JSON text or a decoded mapping)."""
    classes = row[6]
    return RollupRow(
        bucket=row[0],
        service=row[1],
        method=row[2],
        route=row[3],
        requests=row[4],
        errors=row[5],
        status_classes=_classes_decoder.decode(classes) if isinstance(classes, str) else classes,
        request_bytes=row[7],
        response_bytes=row[8],
        latency_sum_seconds=row[9],
        latency_sketch=bytes(row[10]),
        measures=bytes(row[11] or b""),
    )


def rollup_values(row: RollupRow) -> tuple[Any, ...]:
    """A rollup as database values in :data:`ROLLUP_COLUMNS` order."""
    return (
        row.bucket,
        row.service,
        row.method,
        row.route,
        row.requests,
        row.errors,
        msgspec.json.encode(row.status_classes).decode(),
        row.request_bytes,
        row.response_bytes,
        row.latency_sum_seconds,
        row.latency_sketch,
        row.measures,
    )
