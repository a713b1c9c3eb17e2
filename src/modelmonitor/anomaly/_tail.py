"""Calibration of a member's raw score into a tail probability (a false-alarm rate).

Each member of the detector produces a raw nonconformity score (a distance, a
z-score). :class:`Tail` keeps the last ``size`` raw scores of its member (a ring,
plus the same values sorted) and answers: how often, recently, was a score at least
this large? Inside the observed range that is the conformal p-value
``(#{s_i >= s} + 1) / (n + 1)``. Beyond the largest ``TAIL_SHARE`` of the window,
where a window of a few hundred scores has no resolution left, the exceedances are
modelled as exponential (peaks over threshold with a generalised Pareto shape of 0,
as in SPOT; the scale from the median excess, robust to the last anomaly), so that
a score twice as far out gets a far smaller probability instead of the same
``1 / (n + 1)``.

The probability is computed *before* the score joins the window (exchangeability:
the point is judged against the others only), and every score joins, alarms
included: a level that stays becomes the normal tail within one window.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort

import msgspec

__all__ = ["TAIL_SHARE", "Tail"]

#: Share of the window treated as the tail (the 98th percentile as threshold, the
#: usual initial level of peaks-over-threshold estimation).
TAIL_SHARE = 0.02


class Tail(msgspec.Struct, gc=False):
    """The last ``size`` raw scores of one member; ``floor`` is the smallest tail
    scale (one unit of the member's score: one cell, one standard deviation)."""

    size: int
    floor: float
    ring: list[float] = []
    ordered: list[float] = []
    pos: int = 0

    @property
    def filled(self) -> int:
        return len(self.ring)

    def add(self, score: float) -> None:
        """Let ``score`` join the window (the oldest leaves once it is full)."""
        ring = self.ring
        if len(ring) < self.size:
            ring.append(score)
        else:
            old = ring[self.pos]
            ring[self.pos] = score
            self.pos = (self.pos + 1) % self.size
            del self.ordered[bisect_left(self.ordered, old)]
        insort(self.ordered, score)

    def shape(self) -> tuple[int, int, float, float]:
        """Window size ``n``, exceedances ``k``, threshold ``u`` (the score just below
        them) and the exponential scale of the excesses."""
        ordered = self.ordered
        n = len(ordered)
        if n == 0:
            return 0, 0, 0.0, self.floor
        k = max(1, math.ceil(TAIL_SHARE * n))
        u = ordered[max(0, n - k - 1)]
        # The median excess over ln 2 estimates an exponential scale, and one huge
        # excess (the last anomaly) does not blunt the next window's alarms.
        scale = max(self.floor, (ordered[n - k + (k - 1) // 2] - u) / math.log(2.0))
        return n, k, u, scale

    def p_value(self, score: float, shape: tuple[int, int, float, float] | None = None) -> float:
        """The probability, under the recent window, of a score at least ``score``
        (``shape``: :meth:`shape`, when the caller has it already)."""
        n, k, u, scale = shape or self.shape()
        if n == 0:
            return 1.0
        if score <= u:
            return (n - bisect_left(self.ordered, score) + 1) / (n + 1)
        return (k + 1) / (n + 1) * math.exp(-(score - u) / scale)

    def score_at(self, p: float, shape: tuple[int, int, float, float] | None = None) -> float:
        """The raw score whose p-value is ``p`` (used to draw the band)."""
        n, k, u, scale = shape or self.shape()
        if n == 0:
            return math.inf
        start = (k + 1) / (n + 1)
        if p >= start:
            return u
        return u + scale * math.log(start / p)
