"""The members of the detector: each turns a (transformed) value into a raw score.

- :class:`Grid` (value novelty): distance from the value to the nearest value seen
  before, in cells of 1/100 of the learned range, over the span of cells seen.
- :class:`Baseline` (pattern): the z-score of a short mean of residuals against a
  seasonal profile (a day or a week) or, without a cycle, against the level.
- :class:`Spread` (robust level): ``|x - median| / (IQR / 1.349)`` over a sliding
  window, the streaming median/IQR z-score.

Raw scores have no common scale; :class:`~modelmonitor.anomaly._tail.Tail` turns
each into a tail probability.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left, insort

import msgspec

__all__ = ["Baseline", "Grid", "Spread", "find_season", "level"]

#: A grid holding more than this many cells per unit of resolution is coarsened.
_CELL_CAP = 8
#: Largest cell index kept (well inside int64 for serialisation).
_MAX_CELL = 2**40
#: Candidate periods of the seasonal member, in seconds (a day, a week).
_PERIODS = (86_400.0, 604_800.0)
#: Lag correlation above which a period is used (half the variance explained... by
#: the same time one period earlier: r >= 0.5 is the usual "strong" correlation).
_MIN_SEASONAL_CORRELATION = 0.5
#: Short means needed before the baseline member scores.
_MIN_HISTORY = 20
#: The IQR of a normal distribution in standard deviations.
_IQR_TO_SD = 1.349


class Grid(msgspec.Struct, gc=False):
    """Cells of width ``width`` from ``origin`` that have held a value, kept sorted."""

    resolution: int
    origin: float
    width: float
    cells: list[int]

    def cell(self, x: float) -> int:
        """The index of the cell holding ``x``, coarsening first when it would be too large."""
        q = (x - self.origin) / self.width
        while not -_MAX_CELL < q < _MAX_CELL:
            ratio = abs(q) / _MAX_CELL
            exponent = min(64, math.ceil(math.log2(ratio))) if math.isfinite(ratio) else 64
            self._coarsen(2 ** max(1, exponent))
            q = (x - self.origin) / self.width
        return math.floor(q)

    def _coarsen(self, factor: int) -> None:
        self.width *= factor
        self.cells = sorted({c // factor for c in self.cells})

    def span(self) -> float:
        """Width of the seen cells, in the series' (transformed) units."""
        return (self.cells[-1] - self.cells[0] + 1) * self.width if self.cells else self.width

    def bounds(self) -> tuple[float, float]:
        """The seen range: start of the lowest seen cell, end of the highest."""
        if not self.cells:
            return self.origin, self.origin + self.width
        return (
            self.origin + self.cells[0] * self.width,
            self.origin + (self.cells[-1] + 1) * self.width,
        )

    def novelty(self, x: float) -> float:
        """Distance from ``x`` to the nearest seen cell over the seen span; marks ``x`` seen."""
        q = (x - self.origin) / self.width
        b = math.floor(q) if -_MAX_CELL < q < _MAX_CELL else self.cell(x)
        cells = self.cells
        i = bisect_left(cells, b)
        n = len(cells)
        if i < n and cells[i] == b:
            return 0.0
        if n == 0:
            cells.append(b)
            return 0.0
        span = cells[-1] - cells[0] + 1
        if i == 0:
            gap = cells[0] - b
        elif i == n:
            gap = b - cells[-1]
        else:
            gap = min(b - cells[i - 1], cells[i] - b)
        cells.insert(i, b)
        if n >= _CELL_CAP * self.resolution:
            self._coarsen(2)
        return gap / span


class Baseline(msgspec.Struct, gc=False):
    """Residual against a baseline, its short mean, and that mean's |z|.

    Seasonal (``lag`` > 1): ``profile`` holds one exponentially weighted mean (weight
    ``alpha``) per point of the period, ``pos`` the slot of the next point. Level
    (``lag`` 1, ``alpha`` 0): the profile is 0, so the residual is the value itself.
    ``recent`` holds the last residuals (up to ``window``); ``n``, ``mean`` and ``m2``
    are Welford statistics of the short means seen so far.
    """

    lag: int
    window: int
    alpha: float
    floor: float
    profile: list[float]
    pos: int = 0
    recent: list[float] = []
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def forecast(self) -> float:
        """The value expected next: the profile, shifted by the mean residual."""
        return self.profile[self.pos] + self.mean

    def z(self, x: float) -> float:
        """|z| of the short mean of residuals including ``x`` (0 while history is short)."""
        profile = self.profile
        residual = x - profile[self.pos]
        profile[self.pos] += self.alpha * residual
        self.pos = (self.pos + 1) % self.lag
        recent = self.recent
        recent.append(residual)
        if len(recent) > self.window:
            del recent[0]
        elif len(recent) < self.window:
            return 0.0
        short = sum(recent) / self.window
        z = 0.0
        if self.n > _MIN_HISTORY:
            sd = max(math.sqrt(self.m2 / (self.n - 1)), self.floor)
            z = abs(short - self.mean) / sd
        self.n += 1
        d = short - self.mean
        self.mean += d / self.n
        self.m2 += d * (short - self.mean)
        return z


class Spread(msgspec.Struct, gc=False):
    """The last ``size`` values (ring and sorted); scores ``|x - median| / (IQR/1.349)``."""

    size: int
    floor: float
    ring: list[float] = []
    ordered: list[float] = []
    pos: int = 0

    def median(self) -> float:
        o = self.ordered
        return o[len(o) // 2] if o else math.nan

    def scale(self) -> float:
        o = self.ordered
        n = len(o)
        if n < 4:
            return self.floor
        return max((o[(3 * n) // 4] - o[n // 4]) / _IQR_TO_SD, self.floor)

    def z(self, x: float) -> float:
        """Robust |z| of ``x`` against the window; then ``x`` joins it."""
        z = abs(x - self.median()) / self.scale() if self.ordered else 0.0
        ring = self.ring
        if len(ring) < self.size:
            ring.append(x)
        else:
            old = ring[self.pos]
            ring[self.pos] = x
            self.pos = (self.pos + 1) % self.size
            del self.ordered[bisect_left(self.ordered, old)]
        insort(self.ordered, x)
        return z


def find_season(
    values: list[float], stamps: list[float], span: float, window: int, alpha: float
) -> Baseline | None:
    """The seasonal member for the best of a day or a week, if one correlates well enough.

    The lag in points comes from the median sampling interval; a lag needs two whole
    periods in the learning data. The profile starts from the first period.
    """
    if len(stamps) < 2 or len(stamps) != len(values) or min(values) == max(values):
        return None
    steps = sorted(b - a for a, b in itertools.pairwise(stamps))
    step = steps[len(steps) // 2]
    if not step > 0.0:
        return None
    best, best_lag = _MIN_SEASONAL_CORRELATION, 0
    for seconds in _PERIODS:
        lag = round(seconds / step)
        if lag < 2 or 2 * lag > len(values):
            continue
        r = _correlation(values[lag:], values[:-lag])
        if r >= best:
            best, best_lag = r, lag
    if not best_lag:
        return None
    return Baseline(best_lag, window, alpha, 1e-9 * span, values[:best_lag])


def level(span: float, window: int) -> Baseline:
    """The level member (no cycle): residual = value."""
    return Baseline(1, window, 0.0, 1e-9 * span, [0.0])


def _correlation(a: list[float], b: list[float]) -> float:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    saa = sum((x - ma) ** 2 for x in a)
    sbb = sum((y - mb) ** 2 for y in b)
    if saa <= 0.0 or sbb <= 0.0:
        return 0.0
    return sab / math.sqrt(saa * sbb)
