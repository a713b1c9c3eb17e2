"""The streaming detector: score range, bounded memory, restart safety, and what it flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelmonitor.anomaly import AnomalyDetector, AnomalyResult
from modelmonitor.anomaly.detector import alarm_rate

DAY = 288  # 5-minute samples


def _seasonal(n: int, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10.0 + 3.0 * np.sin(2 * np.pi * t / DAY) + noise * rng.standard_normal(n)


def _run(detector: AnomalyDetector, values: np.ndarray, start: int = 0) -> list[AnomalyResult]:
    return [detector.update(300.0 * (start + i), float(v)) for i, v in enumerate(values)]


def test_scores_are_in_unit_interval_on_heavy_tailed_data() -> None:
    rng = np.random.default_rng(1)
    values = rng.pareto(1.5, 5000) * rng.choice([-1.0, 1.0], 5000)
    results = _run(AnomalyDetector(learning_period=300), values)
    scores = np.array([r.score for r in results])
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert scores.max() > 0.5  # heavy tails do produce new extremes
    assert all(math.isfinite(r.expected) and r.lower <= r.upper for r in results)


def test_learning_period_scores_zero() -> None:
    results = _run(AnomalyDetector(learning_period=100), _seasonal(100))
    assert all(r.score == 0.0 for r in results)


def test_memory_is_bounded() -> None:
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.standard_normal(100_000))  # keeps visiting new values
    detector = AnomalyDetector(learning_period=500)
    _run(detector, walk[:50_000])
    size_half = len(detector.to_state())
    _run(detector, walk[50_000:], start=50_000)
    size_full = len(detector.to_state())
    assert size_full < 64_000
    assert size_full < 2 * size_half


def test_state_round_trip_gives_identical_scores() -> None:
    values = _seasonal(3000, seed=3, noise=0.3)
    values[2500] += 20.0
    original = AnomalyDetector(learning_period=600, sensitivity=0.6, refractory=30)
    _run(original, values[:1800])
    from_bytes = AnomalyDetector.from_state(original.to_state())
    from_dict = AnomalyDetector.from_state(original.to_dict())
    expected = _run(original, values[1800:], start=1800)
    assert _run(from_bytes, values[1800:], start=1800) == expected
    assert _run(from_dict, values[1800:], start=1800) == expected


def test_level_shift_is_flagged_soon_after_onset() -> None:
    values = _seasonal(3000, seed=4)
    values[2000:] += 8.0
    scores = [r.score for r in _run(AnomalyDetector(learning_period=600), values)]
    assert max(scores[2000:2005]) >= 0.5
    assert max(scores[600:2000]) < 0.5


def test_spike_is_flagged_at_once() -> None:
    values = _seasonal(3000, seed=5)
    values[2222] = 25.0
    scores = [r.score for r in _run(AnomalyDetector(learning_period=600), values)]
    assert scores[2222] >= 0.9


def test_clean_periodic_series_raises_no_alarm_after_learning() -> None:
    values = _seasonal(10 * DAY, seed=6)
    scores = [r.score for r in _run(AnomalyDetector(learning_period=600), values)]
    assert max(scores[600:]) < 0.5


def test_refractory_holds_back_smaller_repeats() -> None:
    values = _seasonal(1500, seed=7)
    values[1000] = 20.0
    values[1010] = 17.0  # smaller than the alarm just raised: held back
    values[1020] = 200.0  # larger: alarms again
    scores = [r.score for r in _run(AnomalyDetector(learning_period=600), values)]
    assert scores[1000] >= 0.5
    assert scores[1010] == 0.0
    assert scores[1020] >= 0.5


def test_constant_learning_period_then_any_change_is_novel() -> None:
    values = np.r_[np.full(100, 5.0), [5.5]]
    scores = [r.score for r in _run(AnomalyDetector(learning_period=100), values)]
    assert scores[-1] > 0.9


@pytest.mark.parametrize("kwargs", [{"sensitivity": 0.0}, {"sensitivity": 1.0}, {"refractory": -1}])
def test_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AnomalyDetector(**kwargs)  # type: ignore[arg-type]


def test_rejects_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        AnomalyDetector().update(0.0, math.nan)


def test_huge_values_stay_bounded() -> None:
    detector = AnomalyDetector(learning_period=10)
    _run(detector, np.linspace(0.0, 1e-9, 10))
    results = _run(detector, np.array([1e308, -1e308, 1.0, 1e-12]), start=10)
    assert all(0.0 <= r.score <= 1.0 for r in results)
    state = detector.to_state()
    assert len(state) < 64_000
    assert AnomalyDetector.from_state(state).update(0.0, 2.0).score <= 1.0


def _square_days(days: int, seed: int = 8) -> np.ndarray:
    """High (80) from 10:00 to 20:00 each day, low (20) otherwise, with noise."""
    rng = np.random.default_rng(seed)
    phase = np.arange(days * DAY) % DAY
    high = (phase >= 120) & (phase < 240)
    return np.where(high, 80.0, 20.0) + 2.0 * rng.standard_normal(days * DAY)


def test_pattern_change_within_familiar_values_is_flagged() -> None:
    values = _square_days(12)
    skipped = slice(8 * DAY + 120, 8 * DAY + 240)
    values[skipped] = 20.0 + 2.0 * np.random.default_rng(9).standard_normal(120)  # no rise
    detector = AnomalyDetector(learning_period=600)
    scores = [r.score for r in _run(detector, values)]
    assert detector.period == DAY
    assert max(scores[skipped]) >= 0.5  # every value is familiar: only the pattern is new
    assert max(scores[600 : 8 * DAY]) < 0.5
    without_baseline = AnomalyDetector(learning_period=600, members=("novelty",))
    assert max(r.score for r in _run(without_baseline, values)[skipped]) < 0.5


def test_higher_spike_density_is_flagged() -> None:
    rng = np.random.default_rng(10)
    n = 6000
    values = rng.uniform(0.0, 0.1, n)
    # 1 % -> 30 %: the baseline member's short mean climbs over 48 points, and its
    # calibration absorbs part of the climb (1 % -> 15 % peaks just under the line).
    spikes = rng.random(n) < np.where(np.arange(n) < 4500, 0.01, 0.3)
    values[spikes] = rng.uniform(2.0, 3.0, int(spikes.sum()))  # familiar heights
    detector = AnomalyDetector(learning_period=750)
    scores = [r.score for r in _run(detector, values)]
    assert detector.period == 0  # no daily cycle: the level member runs instead
    assert max(scores[4500:4800]) >= 0.5


def test_state_round_trip_with_baseline_members_gives_identical_scores() -> None:
    rng = np.random.default_rng(12)
    for values in (_square_days(6) + 0.0, rng.uniform(0.0, 1.0, 1728)):  # seasonal, then level
        values[1500] += 50.0
        original = AnomalyDetector(learning_period=600)
        _run(original, values[:1200])
        restored = AnomalyDetector.from_state(original.to_state())
        from_dict = AnomalyDetector.from_state(original.to_dict())
        assert restored.period == original.period
        expected = _run(original, values[1200:], start=1200)
        assert _run(restored, values[1200:], start=1200) == expected
        assert _run(from_dict, values[1200:], start=1200) == expected


def test_states_of_older_versions_are_refused() -> None:
    detector = AnomalyDetector(learning_period=600)
    _run(detector, _seasonal(900, seed=13))
    old = detector.to_dict()
    old["version"] = 2
    with pytest.raises(ValueError, match="version 2"):
        AnomalyDetector.from_state(old)
    with pytest.raises(ValueError, match="unreadable"):
        AnomalyDetector.from_state(b"\xc1 not msgpack")


def test_negative_values_after_a_non_negative_learning_period() -> None:
    rng = np.random.default_rng(14)
    detector = AnomalyDetector(learning_period=200)
    _run(detector, rng.uniform(0.0, 10.0, 200))
    results = _run(detector, np.array([5.0, -3.0, -1e9, 1e9, 4.0]), start=200)
    assert all(0.0 <= r.score <= 1.0 and r.lower <= r.expected <= r.upper for r in results)
    assert results[1].score >= 0.5 and results[2].score >= 0.5


def test_flat_series_has_no_period_and_no_alarm() -> None:
    detector = AnomalyDetector(learning_period=600)
    scores = [r.score for r in _run(detector, np.full(1500, 5.0))]
    assert detector.period == 0
    assert max(scores) == 0.0


def test_state_round_trip_during_learning_keeps_the_season() -> None:
    values = _square_days(6)
    original = AnomalyDetector(learning_period=600)
    _run(original, values[:300])
    restored = AnomalyDetector.from_state(original.to_state())
    expected = _run(original, values[300:], start=300)
    assert _run(restored, values[300:], start=300) == expected
    assert restored.period == original.period == DAY


def test_score_half_means_the_alarm_rate_on_noise() -> None:
    """``score >= 0.5`` means ``p <= alarm rate``: exact where the tail is exponential
    (Laplace noise), conservative for the lighter Gaussian tail; ten times the rate
    at sensitivity 0.75."""
    rng = np.random.default_rng(21)
    noise = {"laplace": rng.laplace(size=40_000), "gauss": rng.standard_normal(40_000)}
    rates = {}
    for name, values in noise.items():
        for sensitivity in (0.5, 0.75):
            detector = AnomalyDetector(
                sensitivity=sensitivity, learning_period=1000, refractory=0, members=("spread",)
            )
            scores = np.array([r.score for r in _run(detector, values)])[1000:]
            rates[name, sensitivity] = float((scores >= 0.5).mean())
    assert alarm_rate(0.5) == pytest.approx(1e-3)
    assert alarm_rate(0.75) == pytest.approx(1e-2)
    assert 5e-4 < rates["laplace", 0.5] < 2e-3
    assert 5e-3 < rates["laplace", 0.75] < 2e-2
    assert rates["gauss", 0.5] <= 1e-3 and rates["gauss", 0.75] <= 1e-2


def test_result_names_the_member_and_the_band_the_value_was_judged_against() -> None:
    values = _square_days(12)
    values[9 * DAY + 60] = 400.0  # a value never seen
    results = _run(AnomalyDetector(learning_period=600), values)
    spike = results[9 * DAY + 60]
    assert spike.score >= 0.5 and spike.member == "novelty"
    assert spike.lower <= spike.expected <= spike.upper < 400.0  # the band from before it
    values = _square_days(12)
    skipped = slice(10 * DAY + 120, 10 * DAY + 240)
    values[skipped] = 20.0 + 2.0 * np.random.default_rng(9).standard_normal(120)  # no rise
    results = _run(AnomalyDetector(learning_period=600), values)
    first = next(r for r in results[skipped] if r.score >= 0.5)
    assert first.member == "baseline"
    assert 60.0 < first.expected <= first.upper  # the day should have risen


def test_warm_from_history_scores_from_the_first_live_point() -> None:
    rng = np.random.default_rng(22)
    history = [(60.0 * i, float(v)) for i, v in enumerate(0.1 + 0.01 * rng.standard_normal(100))]
    warmed = AnomalyDetector(learning_period=30, window=600)
    warmed.warm(history)
    assert not warmed.learning
    start = 6000.0
    live = [start + 10.0 * i for i in range(5)]
    normal = [warmed.update(t, 0.1 + 0.01 * float(rng.standard_normal())) for t in live[:4]]
    assert max(r.score for r in normal) < 0.5  # conservative: calibration is still empty
    incident = warmed.update(live[4], 0.5)  # latency x5
    assert incident.score >= 0.5 and incident.member == "novelty"
    cold = AnomalyDetector(learning_period=30, window=600)
    assert cold.update(start, 0.5).score == 0.0  # no history: still learning


def test_short_learning_needs_stronger_evidence_until_the_window_fills() -> None:
    rng = np.random.default_rng(23)
    values = 10.0 + rng.standard_normal(3000)
    scores = {}
    for at in (100, 2900):
        spiked = values.copy()
        spiked[at] = 14.5
        results = _run(AnomalyDetector(learning_period=30, window=1000, refractory=0), spiked)
        scores[at] = results[at].score
    assert scores[100] < 0.5 <= scores[2900]
