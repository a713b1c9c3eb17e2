"""NAB scoring: perfect and null detectors, a hand-computed file, the threshold sweep."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from modelmonitor.anomaly import nab


def _stamps(n: int) -> list[str]:
    t0 = datetime(2014, 4, 1)
    return [(t0 + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(n)]


def _layouts() -> list[nab.FileLayout]:
    out = []
    for k, (n, spans) in enumerate(
        [(200, [(60, 79), (150, 169)]), (120, [(50, 61)]), (300, []), (1000, [(400, 499)])]
    ):
        ts = _stamps(n)
        windows = [(ts[a] + ".000000", ts[b] + ".000000") for a, b in spans]
        out.append(nab.FileLayout.build(f"cat/f{k}.csv", ts, windows))
    return out


def _sigma(y: float) -> float:
    return -1.0 if y > 3 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def test_sigmoid_reference_values() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(3.5) == -1.0


def test_probation_length() -> None:
    assert nab.probation_length(4032) == 604
    assert nab.probation_length(20) == 3
    assert nab.probation_length(22695) == 750


@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_perfect_detector_scores_100(profile: str) -> None:
    layouts = _layouts()
    scores = []
    for layout in layouts:
        s = np.zeros(layout.n_rows)
        for k in np.unique(layout.window[layout.window >= 0]):
            s[layout.probation + int(np.flatnonzero(layout.window == k)[0])] = 1.0
        scores.append(s)
    result = nab.score_corpus(layouts, scores)[profile]
    assert result.raw == pytest.approx(4.0)
    assert result.normalized == pytest.approx(100.0)


@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_null_detector_scores_0(profile: str) -> None:
    layouts = _layouts()
    result = nab.score_corpus(layouts, [np.full(lay.n_rows, 0.5) for lay in layouts])[profile]
    assert result.threshold == 1.1
    assert result.normalized == pytest.approx(0.0)


def test_hand_computed_file() -> None:
    # N = 20 rows, probation floor(0.15 * 20) = 3; one window on rows 8..11 (W = 4).
    ts = _stamps(20)
    layout = nab.FileLayout.build("x.csv", ts, [(ts[8], ts[11])])
    assert layout.probation == 3
    scores = np.zeros(20)
    scores[1] = 1.0  # in probation: ignored
    scores[5] = 1.0  # before any window: full A_FP
    scores[9] = 1.0  # in window: y = -(11 - 9 + 1) / 4
    scores[10] = 1.0  # later detection in the same window: no effect
    scores[14] = 1.0  # after the window: y = (14 - 11) / (4 - 1) = 1
    p = nab.PROFILES["standard"]
    expected = (
        -p.a_fp + p.a_tp * _sigma(-0.75) / _sigma(-1.0) + p.a_fp * _sigma((14 - 11) / (4 - 1))
    )
    assert nab.file_raw_score(layout, scores, 0.5, p) == pytest.approx(expected)
    fitted = nab.fit_threshold([layout], [scores], p)
    assert fitted.raw == pytest.approx(expected)
    assert fitted.threshold == 1.0
    # Missing the window costs A_FN under the low-FN profile.
    fn = nab.PROFILES["reward_low_FN_rate"]
    assert nab.file_raw_score(layout, np.zeros(20), 0.5, fn) == pytest.approx(-2.0)


def test_sweep_matches_brute_force() -> None:
    layouts = _layouts()
    rng = np.random.default_rng(7)
    scores = [np.round(rng.random(lay.n_rows) ** 4, 2) for lay in layouts]
    for profile in nab.PROFILES.values():
        fitted = nab.fit_threshold(layouts, scores, profile)
        candidates = np.unique(np.concatenate(scores))
        brute = max(
            sum(
                nab.file_raw_score(lay, s, float(t), profile)
                for lay, s in zip(layouts, scores, strict=True)
            )
            for t in candidates
        )
        assert fitted.raw == pytest.approx(max(brute, -profile.a_fn * 4))
        total = sum(
            nab.file_raw_score(lay, s, fitted.threshold, profile)
            for lay, s in zip(layouts, scores, strict=True)
        )
        assert total == pytest.approx(fitted.raw)
