"""A mergeable latency quantile sketch (DDSketch, Masson et al., VLDB 2019).

Values are bucketed on a logarithmic grid with ratio ``gamma = (1 + a) / (1 - a)``;
every quantile it returns is within relative error ``a`` of the exact sample
quantile (the sample at rank ``floor(q * (n - 1))``). Sketches of the same
accuracy merge by adding bucket counts, so per-second, per-minute and per-hour
rollups combine exactly. The default accuracy is 0.5 %, half the 1 % promised.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = ["DEFAULT_RELATIVE_ACCURACY", "MIN_VALUE", "LatencySketch"]

DEFAULT_RELATIVE_ACCURACY = 0.005
#: Values at or below this (seconds) go to the zero bucket: 1 ns.
MIN_VALUE = 1e-9


class _Wire(msgspec.Struct, array_like=True):
    accuracy: float
    zero: int
    keys: list[int]
    counts: list[int]
    total: float
    minimum: float
    maximum: float


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Wire)


class LatencySketch:
    """Live sketch: ``add`` values, ``quantile`` them, ``merge`` others, ``to_bytes`` it."""

    __slots__ = ("_gamma_ln", "_zero", "accuracy", "bins", "count", "maximum", "minimum", "total")

    def __init__(self, accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0.0 < accuracy < 1.0:
            raise ValueError("accuracy must be in (0, 1)")
        self.accuracy = accuracy
        self._gamma_ln = math.log((1.0 + accuracy) / (1.0 - accuracy))
        self.bins: dict[int, int] = {}
        self._zero = 0
        self.count = 0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf

    def add(self, value: float) -> None:
        """Add one non-negative value (negative values count as zero)."""
        self.count += 1
        self.total += value
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        if value <= MIN_VALUE:
            self._zero += 1
            return
        key = math.ceil(math.log(value) / self._gamma_ln)
        bins = self.bins
        bins[key] = bins.get(key, 0) + 1

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    def extend_array(self, values: Any) -> None:
        """Add a numpy array of values at once (same buckets as :meth:`add`)."""
        import numpy as np

        array = np.asarray(values, dtype=np.float64)
        if array.size == 0:
            return
        self.count += int(array.size)
        self.total += float(array.sum())
        self.minimum = min(self.minimum, float(array.min()))
        self.maximum = max(self.maximum, float(array.max()))
        positive = array[array > MIN_VALUE]
        self._zero += int(array.size - positive.size)
        if positive.size:
            keys, counts = np.unique(
                np.ceil(np.log(positive) / self._gamma_ln).astype(np.int64), return_counts=True
            )
            bins = self.bins
            for key, n in zip(keys.tolist(), counts.tolist(), strict=True):
                bins[key] = bins.get(key, 0) + n

    @property
    def zero_count(self) -> int:
        """How many values went to the zero bucket (at or below 1 ns)."""
        return self._zero

    def absorb(
        self,
        *,
        zero: int,
        bins: dict[int, int],
        total: float,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> None:
        """Add values already bucketed (by :func:`bin_keys` or a stored sketch).

        Without ``minimum``/``maximum`` (a store that keeps only bins) the outer bin
        edges stand in, so quantiles stay within the sketch's relative accuracy."""
        count = zero + sum(bins.values())
        if count == 0:
            return
        if minimum is None:
            minimum = 0.0 if zero else math.exp((min(bins) - 1) * self._gamma_ln)
        if maximum is None:
            maximum = math.exp(max(bins) * self._gamma_ln) if bins else 0.0
        mine = self.bins
        if mine:
            for key, n in bins.items():
                mine[key] = mine.get(key, 0) + n
        else:
            mine.update(bins)
        self._zero += zero
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)

    @property
    def gamma_ln(self) -> float:
        """``log(gamma)``: a value ``v`` goes to bin ``ceil(log(v) / gamma_ln)``."""
        return self._gamma_ln

    def merge(self, other: LatencySketch) -> None:
        """Add another sketch of the same accuracy into this one."""
        if other.accuracy != self.accuracy:
            raise ValueError("cannot merge sketches of different accuracy")
        if other.count == 0:
            return
        bins = self.bins
        for key, n in other.bins.items():
            bins[key] = bins.get(key, 0) + n
        self._zero += other._zero
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1), or None when empty."""
        if self.count == 0:
            return None
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        rank = math.floor(q * (self.count - 1))
        if rank < self._zero:
            return max(self.minimum, 0.0)
        seen = self._zero
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen > rank:
                # Midpoint of (gamma^(k-1), gamma^k] in the relative sense.
                estimate = 2.0 * math.exp(key * self._gamma_ln) / (1.0 + math.exp(self._gamma_ln))
                return min(max(estimate, self.minimum), self.maximum)
        return self.maximum

    def buckets(self) -> list[tuple[float, float, int]]:
        """``(low, high, count)`` per non-empty bucket, ascending; values lie in ``(low, high]``.

        The zero bucket is ``(0.0, 0.0, n)``. Counts are exact; a value's position
        inside its bucket is known to within the sketch's relative accuracy.
        """
        out: list[tuple[float, float, int]] = []
        if self._zero:
            out.append((0.0, 0.0, self._zero))
        for key in sorted(self.bins):
            out.append(
                (
                    math.exp((key - 1) * self._gamma_ln),
                    math.exp(key * self._gamma_ln),
                    self.bins[key],
                )
            )
        return out

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        return [self.quantile(q) for q in qs]

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def to_bytes(self) -> bytes:
        keys = sorted(self.bins)
        return _encoder.encode(
            _Wire(
                self.accuracy,
                self._zero,
                keys,
                [self.bins[k] for k in keys],
                self.total,
                self.minimum if self.count else 0.0,
                self.maximum if self.count else 0.0,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LatencySketch:
        wire = _decoder.decode(data)
        sketch = cls(wire.accuracy)
        sketch.bins = dict(zip(wire.keys, wire.counts, strict=True))
        sketch._zero = wire.zero
        sketch.count = wire.zero + sum(wire.counts)
        sketch.total = wire.total
        if sketch.count:
            sketch.minimum = wire.minimum
            sketch.maximum = wire.maximum
        return sketch

    def copy(self) -> LatencySketch:
        clone = LatencySketch(self.accuracy)
        clone.merge(self)
        return clone
