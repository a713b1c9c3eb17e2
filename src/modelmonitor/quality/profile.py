"""Mergeable per-feature summaries of one window: numbers, categories, missing values.

A :class:`WindowProfile` holds, for one service and one time bucket, a
:class:`FeatureProfile` per input feature and per output (prediction). Profiles
of the same service merge by adding, so minute buckets combine into any range.

Numbers keep a signed quantile sketch (two :class:`~modelmonitor.sketch.LatencySketch`
halves), Welford's mean and variance, the exact minimum and maximum, the exact
values while there are at most ``EXACT_LIMIT`` of them, and exact counts while a
feature has at most ``DISTINCT_LIMIT`` distinct numbers. Categories keep exact
counts of the ``TOP_K`` most frequent values; the rest fold into ``other``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import msgspec
import numpy as np

from modelmonitor.sketch import LatencySketch

__all__ = [
    "DISTINCT_LIMIT",
    "EXACT_LIMIT",
    "TOP_K",
    "FeatureProfile",
    "NumberSummary",
    "Scalar",
    "WindowProfile",
    "decode_profile",
    "encode_profile",
]

#: Exact values are kept while a summary has at most this many (scipy's own
#: limit for an exact Kolmogorov-Smirnov p-value).
EXACT_LIMIT = 10_000
#: Exact counts per distinct number are kept while there are at most this many.
DISTINCT_LIMIT = 64
#: Distinct categories counted exactly; less frequent ones fold into ``other``.
TOP_K = 256
#: Relative accuracy of the number sketches.
SKETCH_ACCURACY = 0.001

#: A feature's value after extraction: a number, a category, or missing.
Scalar = float | str | None


class NumberSummary:
    """Numbers of one feature: exact moments and extremes, a sketch, values while few."""

    __slots__ = (
        "count",
        "distinct",
        "m2",
        "maximum",
        "mean",
        "minimum",
        "negative",
        "positive",
        "values",
    )

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.positive = LatencySketch(SKETCH_ACCURACY)
        self.negative = LatencySketch(SKETCH_ACCURACY)
        self.values: list[float] | None = []
        self.distinct: dict[float, int] | None = {}

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        if value < 0:
            self.negative.add(-value)
        else:
            self.positive.add(value)
        if self.values is not None:
            self.values.append(value)
            if len(self.values) > EXACT_LIMIT:
                self.values = None
        if self.distinct is not None:
            self.distinct[value] = self.distinct.get(value, 0) + 1
            if len(self.distinct) > DISTINCT_LIMIT:
                self.distinct = None

    def extend(self, values: list[float]) -> None:
        """Add many values at once (vectorised; the same result as ``add`` one by one)."""
        if len(values) < 8:
            for value in values:
                self.add(value)
            return
        array = np.asarray(values, dtype=np.float64)
        batch = NumberSummary()
        batch.count = int(array.size)
        batch.mean = float(array.mean())
        batch.m2 = float(((array - batch.mean) ** 2).sum())
        batch.minimum, batch.maximum = float(array.min()), float(array.max())
        batch.positive.extend_array(array[array >= 0])
        batch.negative.extend_array(-array[array < 0])
        batch.values = values if len(values) <= EXACT_LIMIT else None
        if self.distinct is not None:
            keys, counts = np.unique(array, return_counts=True)
            batch.distinct = (
                dict(zip(keys.tolist(), counts.tolist(), strict=True))
                if keys.size <= DISTINCT_LIMIT
                else None
            )
        else:
            batch.distinct = None
        self.merge(batch)

    def merge(self, other: NumberSummary) -> None:
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.mean += delta * other.count / total
        self.count = total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        self.positive.merge(other.positive)
        self.negative.merge(other.negative)
        if self.values is not None and other.values is not None:
            self.values.extend(other.values)
            if len(self.values) > EXACT_LIMIT:
                self.values = None
        else:
            self.values = None
        if self.distinct is not None and other.distinct is not None:
            for value, n in other.distinct.items():
                self.distinct[value] = self.distinct.get(value, 0) + n
            if len(self.distinct) > DISTINCT_LIMIT:
                self.distinct = None
        else:
            self.distinct = None

    @property
    def std(self) -> float:
        """Population standard deviation (numpy's ``std`` with ``ddof=0``)."""
        return math.sqrt(max(self.m2, 0.0) / self.count) if self.count else 0.0


class FeatureProfile:
    """One feature in one window: numbers, categories, and what was missing."""

    __slots__ = ("categories", "missing", "numbers", "other")

    def __init__(self) -> None:
        self.numbers = NumberSummary()
        self.categories: dict[str, int] = {}
        #: Categories beyond the ``TOP_K`` most frequent.
        self.other = 0
        #: Rows where the feature was absent or null.
        self.missing = 0

    @property
    def categorical_count(self) -> int:
        return sum(self.categories.values()) + self.other

    @property
    def present(self) -> int:
        return self.numbers.count + self.categorical_count

    def add(self, value: Scalar) -> None:
        if value is None:
            self.missing += 1
        elif isinstance(value, str):
            self.categories[value] = self.categories.get(value, 0) + 1
            if len(self.categories) > 2 * TOP_K:
                self._fold()
        elif math.isfinite(value):
            self.numbers.add(float(value))
        else:
            self.missing += 1

    def extend(self, values: list[Scalar]) -> None:
        """Add a column of values (numbers vectorised)."""
        numbers: list[float] = []
        for value in values:
            if value is None:
                self.missing += 1
            elif isinstance(value, str):
                self.categories[value] = self.categories.get(value, 0) + 1
            elif math.isfinite(value):
                numbers.append(float(value))
            else:
                self.missing += 1
        if len(self.categories) > 2 * TOP_K:
            self._fold()
        if numbers:
            self.numbers.extend(numbers)

    def merge(self, other: FeatureProfile) -> None:
        self.numbers.merge(other.numbers)
        for key, n in other.categories.items():
            self.categories[key] = self.categories.get(key, 0) + n
        self.other += other.other
        self.missing += other.missing
        if len(self.categories) > TOP_K:
            self._fold()

    def _fold(self) -> None:
        ranked = sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))
        self.categories = dict(ranked[:TOP_K])
        self.other += sum(n for _, n in ranked[TOP_K:])

    @property
    def is_numerical(self) -> bool:
        """Most present values are numbers."""
        return self.numbers.count >= self.categorical_count and self.numbers.count > 0

    @classmethod
    def of(cls, values: Iterable[Scalar]) -> FeatureProfile:
        profile = cls()
        for value in values:
            profile.add(value)
        return profile


class WindowProfile:
    """A service's inputs and outputs over one time bucket."""

    __slots__ = ("features", "outputs", "rows")

    def __init__(self) -> None:
        self.rows = 0
        self.features: dict[str, FeatureProfile] = {}
        self.outputs: dict[str, FeatureProfile] = {}

    def add_row(self, features: Mapping[str, Scalar], *, seen: Iterable[str] = ()) -> None:
        """One input row; features in ``seen`` but absent here count as missing."""
        self.rows += 1
        _add(self.features, features, seen)

    def add_outputs(self, outputs: Mapping[str, Scalar]) -> None:
        _add(self.outputs, outputs, ())

    def add_rows(self, rows: list[dict[str, Scalar]], *, seen: Iterable[str] = ()) -> None:
        """Many input rows at once; a feature absent from a row counts as missing there."""
        self.rows += len(rows)
        _add_columns(self.features, rows, seen)

    def add_output_rows(self, rows: list[dict[str, Scalar]]) -> None:
        _add_columns(self.outputs, rows, ())

    def merge(self, other: WindowProfile) -> None:
        self.rows += other.rows
        for mine, theirs in ((self.features, other.features), (self.outputs, other.outputs)):
            for name, profile in theirs.items():
                if name in mine:
                    mine[name].merge(profile)
                else:
                    mine[name] = copy_feature(profile)

    @property
    def empty(self) -> bool:
        return self.rows == 0 and not self.outputs


def _add(
    target: dict[str, FeatureProfile], values: Mapping[str, Scalar], seen: Iterable[str]
) -> None:
    for name, value in values.items():
        profile = target.get(name)
        if profile is None:
            profile = target[name] = FeatureProfile()
        profile.add(value)
    for name in seen:
        if name not in values and name in target:
            target[name].missing += 1


def _add_columns(
    target: dict[str, FeatureProfile], rows: list[dict[str, Scalar]], seen: Iterable[str]
) -> None:
    if not rows:
        return
    names: set[str] = set()
    for row in rows:
        names.update(row)
    names.update(name for name in seen if name in target)
    for name in names:
        profile = target.get(name)
        if profile is None:
            profile = target[name] = FeatureProfile()
        profile.extend([row.get(name) for row in rows])


def copy_feature(profile: FeatureProfile) -> FeatureProfile:
    clone = FeatureProfile()
    clone.merge(profile)
    return clone


# Wire format (MessagePack): sketches as their own bytes, everything else plain.


class _NumbersWire(msgspec.Struct, array_like=True):
    count: int
    mean: float
    m2: float
    minimum: float
    maximum: float
    positive: bytes
    negative: bytes
    values: list[float] | None
    distinct_keys: list[float] | None
    distinct_counts: list[int] | None


class _FeatureWire(msgspec.Struct, array_like=True):
    numbers: _NumbersWire
    categories: dict[str, int]
    other: int
    missing: int


class _WindowWire(msgspec.Struct, array_like=True):
    version: int
    rows: int
    features: dict[str, _FeatureWire]
    outputs: dict[str, _FeatureWire]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_WindowWire)


def _numbers_wire(numbers: NumberSummary) -> _NumbersWire:
    distinct = numbers.distinct
    return _NumbersWire(
        numbers.count,
        numbers.mean,
        numbers.m2,
        numbers.minimum if numbers.count else 0.0,
        numbers.maximum if numbers.count else 0.0,
        numbers.positive.to_bytes(),
        numbers.negative.to_bytes(),
        numbers.values,
        list(distinct) if distinct is not None else None,
        list(distinct.values()) if distinct is not None else None,
    )


def _numbers_from(wire: _NumbersWire) -> NumberSummary:
    numbers = NumberSummary()
    numbers.count, numbers.mean, numbers.m2 = wire.count, wire.mean, wire.m2
    if wire.count:
        numbers.minimum, numbers.maximum = wire.minimum, wire.maximum
    numbers.positive = LatencySketch.from_bytes(wire.positive)
    numbers.negative = LatencySketch.from_bytes(wire.negative)
    numbers.values = wire.values
    if wire.distinct_keys is not None and wire.distinct_counts is not None:
        numbers.distinct = dict(zip(wire.distinct_keys, wire.distinct_counts, strict=True))
    else:
        numbers.distinct = None
    return numbers


def _feature_wire(profile: FeatureProfile) -> _FeatureWire:
    return _FeatureWire(
        _numbers_wire(profile.numbers), profile.categories, profile.other, profile.missing
    )


def _feature_from(wire: _FeatureWire) -> FeatureProfile:
    profile = FeatureProfile()
    profile.numbers = _numbers_from(wire.numbers)
    profile.categories = wire.categories
    profile.other = wire.other
    profile.missing = wire.missing
    return profile


def encode_profile(profile: WindowProfile) -> bytes:
    """The profile as MessagePack bytes (what the stores keep)."""
    return _encoder.encode(
        _WindowWire(
            1,
            profile.rows,
            {k: _feature_wire(v) for k, v in profile.features.items()},
            {k: _feature_wire(v) for k, v in profile.outputs.items()},
        )
    )


def decode_profile(data: bytes) -> WindowProfile:
    wire = _decoder.decode(data)
    profile = WindowProfile()
    profile.rows = wire.rows
    profile.features = {k: _feature_from(v) for k, v in wire.features.items()}
    profile.outputs = {k: _feature_from(v) for k, v in wire.outputs.items()}
    return profile
