"""Drift statistics between two samples, computed the way Evidently computes them.

Each side is a :class:`Sample`: exact values with multiplicities, or a sketch's
buckets (a representative value per bucket plus the bucket's bounds). Metrics on
two exact samples equal Evidently's (PSI, Jensen-Shannon, Kolmogorov-Smirnov
p-value, normed Wasserstein, chi-square p-value); where a side is sketched each
metric also states an error: how far the figure can move when the sketched values
sit anywhere inside their buckets (see docs/drift.md).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.spatial import distance

from modelmonitor.quality.profile import FeatureProfile, NumberSummary

__all__ = [
    "Histogram",
    "Sample",
    "categorical_percents",
    "chisquare_pvalue",
    "jensenshannon",
    "ks_pvalue",
    "numerical_percents",
    "psi",
    "wasserstein_norm",
]

Array = NDArray[np.float64]

#: Evidently switches to value counts when the reference has at most this many
#: distinct numbers.
_BINNING_MIN_DISTINCT = 20
_KS_EXACT_MAX_N = 10_000


@dataclass(frozen=True)
class Sample:
    """Values with multiplicities; ``low``/``high`` bound each value when sketched."""

    points: Array
    weights: Array
    low: Array
    high: Array
    exact: bool
    minimum: float
    maximum: float

    @property
    def n(self) -> float:
        return float(self.weights.sum())

    @classmethod
    def of_values(cls, values: Array) -> Sample:
        points = np.asarray(values, dtype=np.float64)
        return cls(
            points,
            np.ones_like(points),
            points,
            points,
            True,
            float(points.min(initial=math.inf)),
            float(points.max(initial=-math.inf)),
        )

    @classmethod
    def of_numbers(cls, numbers: NumberSummary) -> Sample:
        """Exact when the summary kept its values or distinct counts, else its sketch."""
        if numbers.values is not None:
            return cls.of_values(np.asarray(numbers.values, dtype=np.float64))
        if numbers.distinct is not None:
            keys = np.fromiter(numbers.distinct.keys(), dtype=np.float64)
            counts = np.fromiter(numbers.distinct.values(), dtype=np.float64)
            return cls(keys, counts, keys, keys, True, numbers.minimum, numbers.maximum)
        rows: list[tuple[float, float, float, int]] = []
        for low, high, n in numbers.negative.buckets():
            rows.append((-_rep(low, high), -high, -low, n))
        for low, high, n in numbers.positive.buckets():
            rows.append((_rep(low, high), low, high, n))
        table = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
        order = np.argsort(table[:, 0], kind="stable")
        table = table[order]
        lo, hi = numbers.minimum, numbers.maximum
        return cls(
            np.clip(table[:, 0], lo, hi),
            table[:, 3],
            np.clip(table[:, 1], lo, hi),
            np.clip(table[:, 2], lo, hi),
            False,
            lo,
            hi,
        )

    def shifted(self, to_high: bool) -> Sample:
        """Every sketched value moved to one end of its bucket."""
        points = self.high if to_high else self.low
        return Sample(
            points, self.weights, self.low, self.high, self.exact, self.minimum, self.maximum
        )

    def distinct_count(self) -> int:
        return int(np.unique(self.points).size)


def _rep(low: float, high: float) -> float:
    # The sketch's own estimate for a bucket (relative midpoint).
    return 0.0 if high == 0.0 else 2.0 * low * high / (low + high)


@dataclass(frozen=True)
class Histogram:
    """Shares per bin (numbers) or per category; what PSI and Jensen-Shannon compare."""

    labels: list[str]
    edges: list[float] | None
    reference: Array
    current: Array


def numerical_percents(ref: Sample, cur: Sample) -> Histogram:
    """Evidently's binning: Sturges bins over both samples, or value counts when few values."""
    if ref.distinct_count() > _BINNING_MIN_DISTINCT or not ref.exact:
        lo, hi = min(ref.minimum, cur.minimum), max(ref.maximum, cur.maximum)
        edges = _sturges_edges(lo, hi, round(ref.n + cur.n))
        r = np.histogram(ref.points, edges, weights=ref.weights)[0] / ref.n
        c = np.histogram(cur.points, edges, weights=cur.weights)[0] / cur.n
        labels = [f"{a:.4g}..{b:.4g}" for a, b in itertools.pairwise(edges)]
        return Histogram(labels, [float(e) for e in edges], r, c)
    keys = sorted(set(ref.points.tolist()) | set(cur.points.tolist()))
    r = _counts_for(ref, keys) / ref.n
    c = _counts_for(cur, keys) / cur.n
    return Histogram([_number_label(k) for k in keys], None, r, c)


def _number_label(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


def _counts_for(sample: Sample, keys: list[float]) -> Array:
    index = {k: i for i, k in enumerate(keys)}
    out = np.zeros(len(keys))
    for point, weight in zip(sample.points.tolist(), sample.weights.tolist(), strict=True):
        out[index[point]] += weight
    return out


def _sturges_edges(lo: float, hi: float, n: int) -> Array:
    # numpy.histogram_bin_edges(..., bins="sturges") from the range and count alone.
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, 2)
    width = (hi - lo) / (np.log2(n) + 1.0)
    bins = max(int(np.ceil((hi - lo) / width)), 1)
    return np.linspace(lo, hi, bins + 1, endpoint=True)


def categorical_percents(ref: FeatureProfile, cur: FeatureProfile) -> Histogram:
    """Value counts over the categories either side saw (folded ones as ``other``)."""
    keys = sorted(set(ref.categories) | set(cur.categories))
    r = np.array([ref.categories.get(k, 0) for k in keys], dtype=np.float64)
    c = np.array([cur.categories.get(k, 0) for k in keys], dtype=np.float64)
    if ref.other or cur.other:
        keys.append("other")
        r = np.append(r, ref.other)
        c = np.append(c, cur.other)
    return Histogram(keys, None, r / max(r.sum(), 1.0), c / max(c.sum(), 1.0))


def _fill_zeroes(percents: Array) -> Array:
    filled = percents.copy()
    nonzero = filled[filled != 0]
    if nonzero.size == 0:
        return filled
    smallest = float(nonzero.min())
    filled[filled == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return filled


def psi(histogram: Histogram) -> float:
    """Population stability index (Evidently fills empty bins the same way)."""
    r, c = _fill_zeroes(histogram.reference), _fill_zeroes(histogram.current)
    return float(np.sum((r - c) * np.log(r / c)))


def jensenshannon(histogram: Histogram) -> float:
    """Jensen-Shannon distance, natural logarithm."""
    return float(distance.jensenshannon(histogram.reference, histogram.current))


def chisquare_pvalue(histogram: Histogram, ref_n: float, cur_n: float) -> float:
    """Chi-square goodness of fit of the current counts to the scaled reference counts."""
    observed = histogram.current * cur_n
    expected = histogram.reference * ref_n * (cur_n / ref_n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.chisquare(observed, expected)[1])


def ks_statistic(ref: Sample, cur: Sample) -> tuple[float, float]:
    """The two-sided KS statistic and its error (the largest bucket mass of a sketched side)."""
    grid = np.union1d(ref.points, cur.points)
    d = float(np.max(np.abs(_ecdf(ref, grid) - _ecdf(cur, grid)), initial=0.0))
    error = 0.0
    for side in (ref, cur):
        if not side.exact and side.weights.size:
            error = max(error, float(side.weights.max() / side.n))
    return d, error


def _ecdf(sample: Sample, grid: Array) -> Array:
    cumulative = np.cumsum(sample.weights)
    index = np.searchsorted(sample.points, grid, side="right")
    values = np.concatenate([[0.0], cumulative])[index]
    return np.asarray(values / sample.n, dtype=np.float64)


def ks_pvalue(ref: Sample, cur: Sample) -> tuple[float, float]:
    """The two-sided KS p-value (scipy's exact method up to 10,000 per side) and its error."""
    if ref.exact and cur.exact and max(ref.n, cur.n) <= _KS_EXACT_MAX_N:
        a = np.repeat(ref.points, ref.weights.astype(np.int64))
        b = np.repeat(cur.points, cur.weights.astype(np.int64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(a, b)[1]), 0.0
    d, error = ks_statistic(ref, cur)
    n1, n2 = round(ref.n), round(cur.n)
    p = _ks_p_from_d(d, n1, n2)
    if error == 0.0:
        return p, 0.0
    spread = max(
        abs(_ks_p_from_d(min(d + error, 1.0), n1, n2) - p),
        abs(_ks_p_from_d(max(d - error, 0.0), n1, n2) - p),
    )
    return p, spread


def _ks_p_from_d(d: float, n1: int, n2: int) -> float:
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(min(max(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0.0), 1.0))


def wasserstein_norm(ref: Sample, cur: Sample, ref_std: float) -> tuple[float, float]:
    """First Wasserstein distance over the reference's standard deviation (at least 0.001)."""
    norm = max(ref_std, 0.001)
    value = stats.wasserstein_distance(ref.points, cur.points, ref.weights, cur.weights) / norm
    error = 0.0
    for side in (ref, cur):
        if not side.exact:
            # Each value lies in its bucket, so it is at most the larger of the two
            # distances from the representative to the bucket's ends away from it.
            reach = np.maximum(side.points - side.low, side.high - side.points)
            error += float(np.sum(reach * side.weights) / side.n)
    return float(value), error / norm
