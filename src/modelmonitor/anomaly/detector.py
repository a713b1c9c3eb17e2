"""Streaming anomaly detector: an ensemble of value novelty and a baseline z-score.

Two members score every point after a learning period; the larger evidence wins,
and one refractory period is shared.

1. **Value novelty.** The learning period fixes the range of the series; grids of
   cells (several resolutions, 1/80 .. 1/200 of that range) remember which cells
   have held a value. A new value scores by how far it lies from the nearest value
   seen before, relative to the range seen so far, averaged over the grids. A value
   in a familiar cell scores 0; a new extreme or a value in a never visited gap
   scores up to 1. A series that was non-negative while learning is scored on
   ``log(x + c)``, ``c`` the 90th percentile of the learning values: the usual range
   stays nearly linear and the long tail of counts, latencies and bytes is compressed.
2. **Baseline z-score.** If the learning period covers two days (or two weeks) and
   the series correlates with itself a day (a week) later, the baseline is a seasonal
   profile (an exponentially weighted mean per point of the period); otherwise it is
   the long-run level. The mean residual over a short window (12 points seasonal,
   48 points level) is compared with the distribution of such means seen so far.
   This catches changes of pattern within familiar values: a day that does not rise,
   holiday traffic shapes, a higher density of familiar spikes.

Each member gives evidence in units of its own alarm level (novelty over a margin,
|z| over 6.4 at sensitivity 0.5); ``score = e / (1 + e)``, so ``score >= 0.5`` is an
alarm. After one, alarms are held back for ``refractory`` points unless the
evidence grows beyond the alarm's. Memory per series is bounded: a grid that fills
up is coarsened by merging neighbouring cells, and the profile has one slot per
point of the period (at most half the learning period).

Why this method (measured on NAB, see docs/anomaly.md): most labelled anomalies in
monitoring data are values the series has never taken, and firing once at the first
such value is what NAB rewards; the baseline member adds the pattern changes that
value novelty cannot see, at a high enough z that it costs few false positives.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from typing import Any

import msgspec

__all__ = ["DEFAULT_RESOLUTIONS", "AnomalyDetector", "AnomalyResult"]

#: Cells per learned range of each grid; the novelty is averaged over them.
DEFAULT_RESOLUTIONS = (80, 100, 120, 150, 200)
#: A grid holding more than this many cells per unit of resolution is coarsened.
_CELL_CAP = 8
#: Largest cell index kept (well inside int64 for serialisation).
_MAX_CELL = 2**40
#: Values are clamped to this magnitude before they reach the grids (keeps arithmetic finite).
_MAX_VALUE = 1e300
#: Relative novelty at which the score reaches 0.5 for sensitivity 0.5.
_BASE_MARGIN = 0.018
#: State format: 2 added the seasonal member (version 1 states still load).
_VERSION = 2
#: Evidence is capped here so that scores stay below 1 and finite.
_MAX_EVIDENCE = 1e12
#: Non-negative series are scored as log(x + c), c this quantile of the learning values.
_LOG_QUANTILE = 0.9
#: Smoothing of ``expected`` (an exponentially weighted mean).
_EWMA_ALPHA = 0.05
#: Candidate periods of the seasonal member, in seconds (a day, a week).
_PERIODS = (86_400.0, 604_800.0)
#: Lag correlation over the learning period above which a period is used.
_MIN_SEASONAL_CORRELATION = 0.5
#: Points in the short mean of the seasonal residual.
_SHORT_WINDOW = 12
#: Short means needed before the seasonal member scores.
_MIN_SEASONAL_HISTORY = 20
#: z-score of the short mean at which the seasonal member reaches 0.5 for sensitivity 0.5.
_BASE_Z = 6.4
#: Points in the short mean of the level member (series without a daily or weekly cycle).
_LEVEL_WINDOW = 48
#: Weight of the newest period in the seasonal profile.
_PROFILE_ALPHA = 0.5


class AnomalyResult(msgspec.Struct, frozen=True, gc=False):
    """One scored point: ``score`` in [0, 1] (>= 0.5 is an alarm) and the normal band."""

    score: float
    expected: float
    lower: float
    upper: float


class _Grid(msgspec.Struct, gc=False):
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

    def novelty(self, x: float) -> float:
        """Distance from ``x`` to the nearest seen cell over the seen span; marks ``x`` seen."""
        q = (x - self.origin) / self.width
        b = math.floor(q) if -_MAX_CELL < q < _MAX_CELL else self.cell(x)
        cells = self.cells
        i = bisect_left(cells, b)
        n = len(cells)
        if i < n and cells[i] == b:
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


class _Baseline(msgspec.Struct, gc=False):
    """Baseline member: residual against a baseline, its short mean, and that mean's z-score.

    Seasonal (``lag`` > 1): ``profile`` holds one exponentially weighted mean (weight
    ``alpha``) per point of the period, ``pos`` the slot of the next point. Level
    (``lag`` 1, ``alpha`` 0): the profile is 0, so the residual is the value itself and
    its short mean is compared with the long-run distribution of short means.
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
        if self.n > _MIN_SEASONAL_HISTORY:
            sd = max(math.sqrt(self.m2 / (self.n - 1)), self.floor)
            z = abs(short - self.mean) / sd
        self.n += 1
        d = short - self.mean
        self.mean += d / self.n
        self.m2 += d * (short - self.mean)
        return z


class _State(msgspec.Struct, gc=False):
    """Everything a detector remembers; encoded as MessagePack by ``to_state``."""

    version: int
    sensitivity: float
    learning_period: int
    refractory: int
    resolutions: list[int]
    count: int = 0
    learning: list[float] = []
    grids: list[_Grid] = []
    quiet: int = 0
    last_alarm: float = 0.0
    expected: float = math.nan
    low: float = math.inf
    high: float = -math.inf
    last_timestamp: float = math.nan
    baseline: bool = True
    stamps: list[float] = []
    season: _Baseline | None = None
    log_offset: float = 0.0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_State)


class AnomalyDetector:
    """Scores one series, one point at a time; constant memory, a few microseconds per point.

    ``sensitivity`` in (0, 1): higher flags smaller novelties (0.5 is tuned on NAB).
    ``learning_period``: points used to learn the range before scoring (scores are 0
    meanwhile; at least 10). ``refractory``: points after an alarm during which only a
    larger novelty alarms again. ``baseline``: also run the baseline member (a seasonal
    profile when the learning period shows a daily or weekly cycle, else the level).
    """

    __slots__ = ("_margin", "_s", "_z0")

    def __init__(
        self,
        sensitivity: float = 0.5,
        learning_period: int = 600,
        refractory: int = 60,
        resolutions: tuple[int, ...] = DEFAULT_RESOLUTIONS,
        baseline: bool = True,
    ) -> None:
        if not 0.0 < sensitivity < 1.0:
            raise ValueError("sensitivity must be between 0 and 1 (exclusive)")
        if refractory < 0:
            raise ValueError("refractory must be >= 0")
        if not resolutions or min(resolutions) < 2:
            raise ValueError("resolutions must be integers >= 2")
        self._s = _State(
            version=_VERSION,
            sensitivity=sensitivity,
            learning_period=max(int(learning_period), 10),
            refractory=int(refractory),
            resolutions=list(resolutions),
            baseline=bool(baseline),
        )
        self._margin = _margin(sensitivity)
        self._z0 = _z0(sensitivity)

    @property
    def period(self) -> int:
        """Points per period of the seasonal baseline (0: none found, or still learning)."""
        season = self._s.season
        return season.lag if season is not None and season.lag > 1 else 0

    @property
    def count(self) -> int:
        """Points seen so far."""
        return self._s.count

    @property
    def learning(self) -> bool:
        """True until the learning period is over."""
        return not self._s.grids

    def update(self, timestamp: float, value: float) -> AnomalyResult:
        """Score ``value`` (taken at ``timestamp``, Unix seconds) and learn from it."""
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value!r}")
        value = min(max(value, -_MAX_VALUE), _MAX_VALUE)
        s = self._s
        s.count += 1
        s.last_timestamp = timestamp
        s.expected = value if s.count == 1 else s.expected + _EWMA_ALPHA * (value - s.expected)
        s.low = min(s.low, value)
        s.high = max(s.high, value)
        if not s.grids:
            s.learning.append(value)
            if s.baseline:
                s.stamps.append(timestamp)
            if len(s.learning) >= s.learning_period:
                self._fit()
            return AnomalyResult(0.0, s.expected, s.low, s.high)

        # Evidence of each member, in units of its alarm level: >= 1 alarms.
        y = _compress(value, s.log_offset) if s.log_offset > 0.0 else value
        grids = s.grids
        evidence = sum([grid.novelty(y) for grid in grids]) / (len(grids) * self._margin)
        season = s.season
        expected = s.expected
        if season is not None:
            forecast = season.forecast()
            expected = _expand(forecast, s.log_offset) if s.log_offset > 0.0 else forecast
            evidence = max(evidence, season.z(y) / self._z0)
        score = 0.0
        if s.quiet > 0:
            s.quiet -= 1
            if evidence <= s.last_alarm:
                evidence = 0.0
        if evidence > 0.0:
            evidence = min(evidence, _MAX_EVIDENCE)
            score = evidence / (evidence + 1.0)
            if score >= 0.5:
                s.quiet = s.refractory
                s.last_alarm = evidence
        pad = self._margin * (s.high - s.low)
        lower, upper = s.low - pad, s.high + pad
        return AnomalyResult(score, min(max(expected, lower), upper), lower, upper)

    def _fit(self) -> None:
        s = self._s
        ordered = sorted(s.learning)
        if ordered[0] >= 0.0:
            # Non-negative series (counts, latencies, bytes): work on log(x + c), c the 90th
            # percentile, so the typical range stays linear and the long tail is compressed.
            c = ordered[int(_LOG_QUANTILE * (len(ordered) - 1))]
            s.log_offset = c if c > 0.0 else max(ordered[-1] * 0.01, 1e-12)
            s.learning = [_compress(v, s.log_offset) for v in s.learning]
        lo, hi = min(s.learning), max(s.learning)
        span = hi - lo
        if span <= 0.0:
            span = max(abs(hi) * 0.01, 1e-12)
        for resolution in s.resolutions:
            grid = _Grid(resolution, lo, span / resolution, [])
            grid.cells = sorted({grid.cell(v) for v in s.learning})
            s.grids.append(grid)
        if s.baseline:
            s.season = _find_season(s.learning, s.stamps, span) or _level(s.learning, span)
        s.learning = []
        s.stamps = []

    def to_state(self) -> bytes:
        """Serialise the whole state (MessagePack); see :meth:`from_state`."""
        return _encoder.encode(self._s)

    def to_dict(self) -> dict[str, Any]:
        """The state as plain Python data (JSON-compatible except for non-finite floats)."""
        data: dict[str, Any] = msgspec.to_builtins(self._s)
        return data

    @classmethod
    def from_state(cls, state: bytes | dict[str, Any]) -> AnomalyDetector:
        """Rebuild a detector from :meth:`to_state` bytes or :meth:`to_dict` data."""
        if isinstance(state, bytes):
            decoded = _decoder.decode(state)
        else:
            decoded = msgspec.convert(state, _State)
        if decoded.version not in (1, _VERSION):
            raise ValueError(f"unsupported detector state version {decoded.version}")
        margin = _margin(decoded.sensitivity)
        if decoded.version == 1:  # alarms were recorded as novelty, not evidence
            decoded.last_alarm /= margin
            decoded.version = _VERSION
        detector = cls.__new__(cls)
        detector._s = decoded
        detector._margin = margin
        detector._z0 = _z0(decoded.sensitivity)
        return detector


def _margin(sensitivity: float) -> float:
    # Log scale: sensitivity 0.5 -> 0.018 of the seen range, 0 -> 10x that, 1 -> 1/10.
    return float(_BASE_MARGIN * 10.0 ** (2.0 * (0.5 - sensitivity)))


def _z0(sensitivity: float) -> float:
    # Log scale: sensitivity 0.5 -> z of 6.4, 0 -> 6.4 * sqrt(10), 1 -> 6.4 / sqrt(10).
    return float(_BASE_Z * 10.0 ** (0.5 - sensitivity))


def _find_season(values: list[float], stamps: list[float], span: float) -> _Baseline | None:
    """The seasonal member for the best of a day or a week, if one correlates well enough.

    The lag in points comes from the median sampling interval; a lag needs two whole
    periods in the learning data. The member's statistics are warmed up on that data.
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
    season = _Baseline(best_lag, _SHORT_WINDOW, _PROFILE_ALPHA, 1e-9 * span, values[:best_lag])
    for v in values[best_lag:]:
        season.z(v)
    return season


def _level(values: list[float], span: float) -> _Baseline:
    """The level member, warmed up on the learning data."""
    level = _Baseline(1, _LEVEL_WINDOW, 0.0, 1e-9 * span, [0.0])
    for v in values:
        level.z(v)
    return level


def _correlation(a: list[float], b: list[float]) -> float:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    saa = sum((x - ma) ** 2 for x in a)
    sbb = sum((y - mb) ** 2 for y in b)
    if saa <= 0.0 or sbb <= 0.0:
        return 0.0
    return sab / math.sqrt(saa * sbb)


def _compress(x: float, c: float) -> float:
    """``log(x + c)``; mirrored below 0 (``2 log c - log(c - x)``) so it stays defined."""
    if x >= 0.0:
        return math.log(x + c)
    return 2.0 * math.log(c) - math.log(c - x)


def _expand(y: float, c: float) -> float:
    """The inverse of :func:`_compress` (saturating instead of overflowing)."""
    log_c = math.log(c)
    if y >= log_c:
        return math.exp(min(y, 690.0)) - c
    return c - math.exp(min(2.0 * log_c - y, 690.0))
