"""Per-minute rollups by model and consumer, and the cardinality caps that bound them.

Beside the route rollups, each minute keeps one :class:`~modelmonitor.aggregate.Aggregate`
per service, model and consumer (events naming neither are left out). A service
tracks at most ``max_models`` models and ``max_consumers`` consumers; values past
the cap fold into ``other`` and are counted in :attr:`DimensionCaps.folded`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from modelmonitor.aggregate import ROW_COLUMNS, Aggregate, Columns, aggregate_batch, floor_seconds
from modelmonitor.events import RequestEvent
from modelmonitor.storage.base import ROLLUP_SECONDS

__all__ = [
    "MODEL_ROLLUP_COLUMNS",
    "OTHER",
    "DimensionCaps",
    "ModelRollup",
    "ModelRollupKey",
    "aggregate_model_rollups",
    "model_rollup_from_row",
    "model_rollup_values",
]

OTHER = "other"
#: (bucket, service, model, consumer)
ModelRollupKey = tuple[float, str, str, str]
MODEL_ROLLUP_COLUMNS: tuple[str, ...] = ("bucket", "service", "model", "consumer", *ROW_COLUMNS)
_by_minute = floor_seconds(ROLLUP_SECONDS)
_classes = msgspec.json.Decoder(dict[str, int])


class ModelRollup(msgspec.Struct, frozen=True):
    """One minute of one service's requests to one model from one consumer."""

    bucket: float
    service: str
    model: str
    consumer: str
    values: tuple[Any, ...]  # Aggregate.to_columns() order

    def aggregate(self) -> Aggregate:
        return Aggregate.from_columns(self.values)


class DimensionCaps:
    """Distinct models and consumers admitted per service; the rest fold into ``other``."""

    def __init__(self, *, max_models: int = 50, max_consumers: int = 200) -> None:
        self.max_models = max_models
        self.max_consumers = max_consumers
        self._models: dict[str, set[str]] = {}
        self._consumers: dict[str, set[str]] = {}
        #: service -> events whose model or consumer was folded into ``other``.
        self.folded: dict[str, int] = {}

    def seed(self, seen: Iterable[tuple[str, str, str]]) -> None:
        """Admit values stored before (``(service, model, consumer)``), so a restart
        keeps the same ones."""
        for service, model, consumer in seen:
            self._admit(self._models, service, model, self.max_models)
            self._admit(self._consumers, service, consumer, self.max_consumers)

    @staticmethod
    def _admit(known: dict[str, set[str]], service: str, value: str, cap: int) -> bool:
        if not value or value == OTHER:
            return True
        values = known.setdefault(service, set())
        if value in values:
            return True
        if len(values) >= cap:
            return False
        values.add(value)
        return True

    def fold(self, service: str, model: str, consumer: str) -> tuple[str, str]:
        """The model and consumer to count this event under."""
        folded = False
        if not self._admit(self._models, service, model, self.max_models):
            model, folded = OTHER, True
        if not self._admit(self._consumers, service, consumer, self.max_consumers):
            consumer, folded = OTHER, True
        if folded:
            self.folded[service] = self.folded.get(service, 0) + 1
        return model, consumer


def aggregate_model_rollups(
    events: Sequence[RequestEvent], caps: DimensionCaps
) -> dict[ModelRollupKey, Aggregate]:
    """One aggregate per minute, service, model and consumer (bulk), after the caps."""
    named = []
    for event in events:
        if event.model or event.consumer:
            model, consumer = caps.fold(event.service, event.model, event.consumer)
            if model is not event.model or consumer is not event.consumer:
                event = msgspec.structs.replace(event, model=model, consumer=consumer)
            named.append(event)
    if not named:
        return {}
    grouped = aggregate_batch(
        Columns(named), dims=("service", "model", "consumer"), bucket=_by_minute
    )
    return {
        (float(bucket), str(service), str(model), str(consumer)): aggregate  # type: ignore[arg-type]
        for (bucket, service, model, consumer), aggregate in grouped.items()
    }


def model_rollup_values(key: ModelRollupKey, aggregate: Aggregate) -> tuple[Any, ...]:
    """Database values in :data:`MODEL_ROLLUP_COLUMNS` order."""
    values = list(aggregate.to_columns())
    values[2] = msgspec.json.encode(values[2]).decode()  # status classes as JSON text
    return (*key, *values)


def model_rollup_from_row(row: Sequence[Any]) -> ModelRollup:
    """A stored row (``MODEL_ROLLUP_COLUMNS`` order) as a :class:`ModelRollup`."""
    values = list(row[4:])
    if isinstance(values[2], str):
        values[2] = _classes.decode(values[2])
    values[7] = bytes(values[7] or b"")
    return ModelRollup(row[0], row[1], row[2], row[3], tuple(values))
