"""Streaming anomaly detector: calibrated members, the most surprised one speaks.

Each member turns a value into a raw score (see ``_members``): value **novelty**
(distance to the nearest value seen, in cells of 1/100 of the learned range),
a **baseline** z-score (short mean of residuals against a daily/weekly profile, or
against the level), and a robust **spread** z-score (median/IQR over a window).
A :class:`~modelmonitor.anomaly._tail.Tail` per member turns the raw score into the
probability of a score at least as large in the recent window (conformal inside the
window, an exponential tail beyond it). The evidence of a member is
``log p / log alpha``, ``alpha`` the alarm rate (false alarms per point and member
that the user accepts), so ``score = e / (1 + e) >= 0.5`` means ``p <= alpha``.

While the calibration window is not yet full, ``alpha`` is scaled by the share that
is filled: fewer points, stronger evidence needed (the conservative start).

Why this shape (docs/anomaly.md): the members' raw scores have no common scale and
series differ wildly in how often they take new values; calibrating each member on
the series' own recent scores replaces the hand-set alarm levels of version 2 (a
novelty margin, a z level), which were fitted to NAB, by one rate with a meaning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import msgspec

from modelmonitor.anomaly._members import Baseline, Grid, Spread, find_season, level
from modelmonitor.anomaly._tail import Tail

__all__ = ["DEFAULT_MEMBERS", "MEMBERS", "AnomalyDetector", "AnomalyResult"]

#: Every member a detector can run.
MEMBERS = ("novelty", "baseline", "spread")
#: The members run by default (chosen by nested cross-validation, docs/anomaly.md).
DEFAULT_MEMBERS = ("novelty", "baseline")
#: Alarm rate at sensitivity 0.5: false alarms per point and member.
_BASE_ALPHA = 1e-3
#: Cells per learned range of the novelty grid (a percent of the range).
_RESOLUTION = 100
#: Values are clamped to this magnitude (keeps arithmetic finite).
_MAX_VALUE = 1e300
#: State format: 3 calibrated the members (older states cannot be converted).
_VERSION = 3
#: Evidence is capped here so that scores stay below 1 and finite.
_MAX_EVIDENCE = 1e12
#: Smoothing of ``expected`` when no member forecasts (an exponentially weighted mean).
_EWMA_ALPHA = 0.05
#: Points in the short mean of the seasonal and of the level residual.
_SEASONAL_WINDOW = 12
_LEVEL_WINDOW = 48
#: Weight of the newest period in the seasonal profile.
_PROFILE_ALPHA = 0.5
#: The calibration window is capped (memory: two floats per point and member).
_MAX_WINDOW = 2000
#: Tail scale floors: one cell of novelty, one standard deviation of a z-score.
_FLOORS = {"novelty": 1.0 / _RESOLUTION, "baseline": 1.0, "spread": 1.0}


class AnomalyResult(msgspec.Struct, frozen=True, gc=False):
    """One scored point: ``score`` in [0, 1] (>= 0.5 is an alarm), the band of values
    that would not have alarmed, the value expected, and the member that scored highest."""

    score: float
    expected: float
    lower: float
    upper: float
    member: str = ""


class _State(msgspec.Struct, gc=False):
    """Everything a detector remembers; encoded as MessagePack by ``to_state``."""

    version: int
    alpha: float
    learning_period: int
    window: int
    refractory: int
    members: list[str]
    log_quantile: float
    count: int = 0
    learning: list[float] = []
    stamps: list[float] = []
    fitted: bool = False
    log_offset: float = 0.0
    grid: Grid | None = None
    season: Baseline | None = None
    spread: Spread | None = None
    tails: dict[str, Tail] = {}
    quiet: int = 0
    last_alarm: float = 0.0
    expected: float = math.nan
    low: float = math.inf
    high: float = -math.inf
    last_timestamp: float = math.nan


_Shape = tuple[int, int, float, float]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_State)


def alarm_rate(sensitivity: float) -> float:
    """False alarms per point and member: 1e-3 at sensitivity 0.5, ten times more
    (fewer) for each 0.25 above (below)."""
    return float(_BASE_ALPHA * 10.0 ** (4.0 * (sensitivity - 0.5)))


class AnomalyDetector:
    """Scores one series, one point at a time; constant memory, serialisable state.

    ``sensitivity`` in (0, 1) sets the alarm rate (see :func:`alarm_rate`).
    ``learning_period``: points kept before the first score (at least 10).
    ``window``: the calibration window in points (default ``learning_period``,
    at most 2000). ``refractory``: points after an alarm during which only larger
    evidence alarms again. ``members``: a subset of :data:`MEMBERS`.
    ``log_quantile``: non-negative series are scored on ``log(x + c)``, ``c`` this
    quantile of the learning values.
    """

    __slots__ = ("_log_alpha", "_s")

    def __init__(
        self,
        sensitivity: float = 0.5,
        learning_period: int = 600,
        refractory: int = 120,
        *,
        window: int | None = None,
        members: Iterable[str] = DEFAULT_MEMBERS,
        log_quantile: float = 0.9,
    ) -> None:
        if not 0.0 < sensitivity < 1.0:
            raise ValueError("sensitivity must be between 0 and 1 (exclusive)")
        if refractory < 0:
            raise ValueError("refractory must be >= 0")
        chosen = list(members)
        if not chosen or any(m not in MEMBERS for m in chosen):
            raise ValueError(f"members must be a non-empty subset of {', '.join(MEMBERS)}")
        if not 0.0 <= log_quantile <= 1.0:
            raise ValueError("log_quantile must be between 0 and 1")
        learning = max(int(learning_period), 10)
        self._s = _State(
            version=_VERSION,
            alpha=alarm_rate(sensitivity),
            learning_period=learning,
            window=min(max(int(window or learning), 10), _MAX_WINDOW),
            refractory=int(refractory),
            members=chosen,
            log_quantile=log_quantile,
        )
        self._log_alpha = math.log(self._s.alpha)

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
        return not self._s.fitted

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self._s.members)

    def warm(self, points: Iterable[tuple[float, float]]) -> None:
        """Learn from history (``(timestamp, value)`` pairs) without scoring it.

        The history shapes the range, the log scale and the baseline; the
        calibration then restarts empty, because history may be sampled coarser
        than live points: alarms need strong evidence until the window fills.
        """
        for timestamp, value in points:
            self.update(timestamp, value)
        for tail in self._s.tails.values():
            tail.ring, tail.ordered, tail.pos = [], [], 0
        self._s.quiet = 0

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
        if not s.fitted:
            s.learning.append(value)
            s.stamps.append(timestamp)
            if len(s.learning) >= s.learning_period:
                self._fit()
            return AnomalyResult(0.0, s.expected, s.low, s.high)
        y = _compress(value, s.log_offset) if s.log_offset > 0.0 else value
        tails = s.tails
        shapes = {name: tail.shape() for name, tail in tails.items()}
        log_alpha = self._scaled_log_alpha(shapes)
        # The band and the forecast the value is judged against: from before it.
        lower, upper = self._band(log_alpha, shapes)
        expected = min(max(self._expected(), lower), upper)
        evidence, member = 0.0, ""
        for name, raw in self._raw_scores(y):
            tail = tails[name]
            p = tail.p_value(raw, shapes[name])
            tail.add(raw)
            e = math.log(max(p, 1e-300)) / log_alpha
            if e > evidence:
                evidence, member = e, name
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
        return AnomalyResult(score, expected, lower, upper, member)

    def band(self) -> tuple[float, float, float]:
        """``(expected, lower, upper)`` for the next value (the learned range while learning)."""
        s = self._s
        if not s.fitted:
            return s.expected, s.low, s.high
        shapes = {name: tail.shape() for name, tail in s.tails.items()}
        lower, upper = self._band(self._scaled_log_alpha(shapes), shapes)
        return min(max(self._expected(), lower), upper), lower, upper

    def _scaled_log_alpha(self, shapes: dict[str, _Shape]) -> float:
        """``log alpha``, scaled by the filled share of the calibration window."""
        filled = min((shape[0] for shape in shapes.values()), default=0)
        if filled >= self._s.window:
            return self._log_alpha
        return self._log_alpha + math.log(max(filled, 1) / self._s.window)

    def _raw_scores(self, y: float) -> list[tuple[str, float]]:
        s = self._s
        out = []
        if s.grid is not None:
            out.append(("novelty", s.grid.novelty(y)))
        if s.season is not None:
            out.append(("baseline", s.season.z(y)))
        if s.spread is not None:
            out.append(("spread", s.spread.z(y)))
        return out

    def _band(self, log_alpha: float, shapes: dict[str, _Shape]) -> tuple[float, float]:
        """Values that would not alarm now, in the series' units."""
        s = self._s
        p = math.exp(log_alpha)
        if s.grid is not None:
            lo, hi = s.grid.bounds()
            r = s.tails["novelty"].score_at(p, shapes["novelty"])
            # An empty calibration window alarms on nothing; the seen range is drawn.
            pad = max(0.0, r * s.grid.span() - s.grid.width) if math.isfinite(r) else 0.0
        elif s.spread is not None:
            mid = s.spread.median()
            z = s.tails["spread"].score_at(p, shapes["spread"])
            pad = z * s.spread.scale() if math.isfinite(z) else 0.0
            lo = hi = mid
        else:
            return s.low, s.high
        lower, upper = lo - pad, hi + pad
        if s.log_offset > 0.0:
            return _expand(lower, s.log_offset), _expand(upper, s.log_offset)
        return lower, upper

    def _expected(self) -> float:
        s = self._s
        if s.season is not None and s.season.lag > 1:
            forecast = s.season.forecast()
        elif s.spread is not None and s.spread.ordered:
            forecast = s.spread.median()
        elif s.season is not None:
            forecast = s.season.mean
        else:
            return s.expected
        return _expand(forecast, s.log_offset) if s.log_offset > 0.0 else forecast

    def _fit(self) -> None:
        """Fix the scale and build the members: the first half of the learning data
        trains them, the second half calibrates them (split conformal)."""
        s = self._s
        ordered = sorted(s.learning)
        if ordered[0] >= 0.0:
            # Counts, latencies, bytes: multiplicative noise, log(x + c) with c a
            # typical value, so the usual range stays near linear.
            c = ordered[int(s.log_quantile * (len(ordered) - 1))]
            s.log_offset = c if c > 0.0 else max(ordered[-1] * 0.01, 1e-12)
        ys = [_compress(v, s.log_offset) if s.log_offset > 0.0 else v for v in s.learning]
        lo, hi = min(ys), max(ys)
        span = hi - lo if hi > lo else max(abs(hi) * 0.01, 1e-12)
        half = len(ys) // 2
        s.tails = {m: Tail(s.window, _FLOORS[m]) for m in s.members}
        if "novelty" in s.members:
            s.grid = Grid(_RESOLUTION, lo, span / _RESOLUTION, [])
        if "spread" in s.members:
            s.spread = Spread(s.window, span / _RESOLUTION)
        if "baseline" in s.members:
            s.season = find_season(ys, s.stamps, span, _SEASONAL_WINDOW, _PROFILE_ALPHA)
            if s.season is None:
                s.season = level(span, _LEVEL_WINDOW)
        start = s.season.lag if s.season is not None and s.season.lag > 1 else 0
        for i, y in enumerate(ys):
            if s.season is not None and i < start:
                continue  # the profile's first period
            for name, raw in self._raw_scores(y):
                if i >= half:
                    s.tails[name].add(raw)
        if s.grid is not None:
            for y in ys[:start]:
                s.grid.novelty(y)
        s.learning, s.stamps, s.fitted = [], [], True

    def to_state(self) -> bytes:
        """Serialise the whole state (MessagePack); see :meth:`from_state`."""
        return _encoder.encode(self._s)

    def to_dict(self) -> dict[str, Any]:
        """The state as plain Python data (JSON-compatible except for non-finite floats)."""
        data: dict[str, Any] = msgspec.to_builtins(self._s)
        return data

    @property
    def state_size(self) -> int:
        """Bytes of the serialised state."""
        return len(self.to_state())

    @classmethod
    def from_state(cls, state: bytes | dict[str, Any]) -> AnomalyDetector:
        """Rebuild a detector from :meth:`to_state` bytes or :meth:`to_dict` data.

        Raises ``ValueError`` for a state of another format version (a detector of
        version 2 or older learns anew)."""
        try:
            if isinstance(state, bytes):
                version = msgspec.msgpack.decode(state, type=dict[str, Any]).get("version")
            else:
                version = state.get("version")
        except msgspec.DecodeError as exc:
            raise ValueError(f"unreadable detector state: {exc}") from exc
        if version != _VERSION:
            raise ValueError(f"unsupported detector state version {version}")
        try:
            if isinstance(state, bytes):
                decoded = _decoder.decode(state)
            else:
                decoded = msgspec.convert(state, _State)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"unreadable detector state: {exc}") from exc
        detector = cls.__new__(cls)
        detector._s = decoded
        detector._log_alpha = math.log(decoded.alpha)
        return detector


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
