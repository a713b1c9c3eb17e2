"""Our drift figures against Evidently's (the reference implementation) on the same samples."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    # Evidently 0.7 touches numpy.core at import; nothing of ours does.
    warnings.simplefilter("ignore", DeprecationWarning)
    from evidently.legacy import core
    from evidently.legacy.calculations import stattests

from modelmonitor.quality.drift import Method, compare_feature
from modelmonitor.quality.profile import EXACT_LIMIT, FeatureProfile

NUM = core.ColumnType.Numerical
CAT = core.ColumnType.Categorical
TESTS = {
    Method.PSI: stattests.psi_stat_test,
    Method.JENSEN_SHANNON: stattests.jensenshannon_stat_test,
    Method.KS: stattests.ks_stat_test,
    Method.WASSERSTEIN: stattests.wasserstein_stat_test,
    Method.CHISQUARE: stattests.chi_stat_test,
}
THRESHOLDS = {Method.PSI: 0.1, Method.JENSEN_SHANNON: 0.1, Method.KS: 0.05}
THRESHOLDS |= {Method.WASSERSTEIN: 0.1, Method.CHISQUARE: 0.05}


def evidently(
    method: Method, ref: list[object], cur: list[object], kind: object
) -> tuple[float, bool]:
    with warnings.catch_warnings():
        # scipy warns inside Evidently's chi-square when a category is new.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = TESTS[method](pd.Series(ref), pd.Series(cur), kind, THRESHOLDS[method])
    return float(result.drift_score), bool(result.drifted)


def ours(ref: list[object], cur: list[object]):  # type: ignore[no-untyped-def]
    drift = compare_feature("x", FeatureProfile.of(ref), FeatureProfile.of(cur))  # type: ignore[arg-type]
    assert drift is not None
    return drift


rng = np.random.default_rng(20261203)

NUMERIC_CASES = {
    "same distribution": (rng.normal(0, 1, 800), rng.normal(0, 1, 700)),
    "shifted mean": (rng.normal(0, 1, 900), rng.normal(0.4, 1, 600)),
    "wider, negative": (rng.normal(-5, 2, 500), rng.normal(-5, 3.5, 900)),
    "skewed": (rng.lognormal(0, 1, 1000), rng.lognormal(0.2, 1, 1000)),
    "few distinct values": (
        rng.integers(0, 8, 700).astype(float),
        rng.integers(1, 9, 600).astype(float),
    ),
    "large reference": (rng.normal(10, 3, 5000), rng.normal(10.5, 3, 2000)),
}


@pytest.mark.parametrize("case", NUMERIC_CASES)
def test_exact_numeric_metrics_equal_evidently(case: str) -> None:
    ref, cur = (list(map(float, a)) for a in NUMERIC_CASES[case])
    drift = ours(ref, cur)
    assert drift.exact and drift.kind == "numerical"
    for method in (Method.PSI, Method.JENSEN_SHANNON, Method.KS, Method.WASSERSTEIN):
        value, drifted = evidently(method, ref, cur, NUM)
        mine = drift.metrics[method.value]
        assert mine.value == pytest.approx(value, abs=1e-6), method
        assert mine.error == 0.0
        assert mine.drifted == drifted, method


CATEGORICAL_CASES = {
    "same shares": (
        ["a"] * 300 + ["b"] * 200 + ["c"] * 100,
        ["a"] * 290 + ["b"] * 210 + ["c"] * 95,
    ),
    "one share changed": (
        ["a"] * 300 + ["b"] * 200 + ["c"] * 100,
        ["a"] * 150 + ["b"] * 200 + ["c"] * 250,
    ),
    "new category": (["x"] * 400 + ["y"] * 100, ["x"] * 300 + ["y"] * 100 + ["z"] * 60),
}


@pytest.mark.parametrize("case", CATEGORICAL_CASES)
def test_categorical_metrics_equal_evidently(case: str) -> None:
    ref, cur = CATEGORICAL_CASES[case]
    drift = ours(ref, cur)  # type: ignore[arg-type]
    assert drift.kind == "categorical"
    for method in (Method.PSI, Method.JENSEN_SHANNON, Method.CHISQUARE):
        value, drifted = evidently(method, ref, cur, CAT)  # type: ignore[arg-type]
        mine = drift.metrics[method.value]
        assert mine.value == pytest.approx(value, abs=1e-6), method
        assert mine.drifted == drifted, method


SKETCHED_CASES = {
    "same distribution": (
        rng.normal(50, 10, EXACT_LIMIT + 5000),
        rng.normal(50, 10, EXACT_LIMIT + 2000),
    ),
    "shifted": (rng.normal(50, 10, EXACT_LIMIT + 5000), rng.normal(53, 10, EXACT_LIMIT + 2000)),
    "signed, skewed": (
        rng.normal(0, 1, 3 * EXACT_LIMIT) ** 3,
        rng.normal(0.1, 1, 2 * EXACT_LIMIT) ** 3,
    ),
}


@pytest.mark.parametrize("case", SKETCHED_CASES)
def test_sketched_numeric_metrics_within_stated_error(case: str) -> None:
    ref, cur = (list(map(float, a)) for a in SKETCHED_CASES[case])
    drift = ours(ref, cur)
    assert not drift.exact
    for method in (Method.PSI, Method.JENSEN_SHANNON, Method.KS, Method.WASSERSTEIN):
        value, drifted = evidently(method, ref, cur, NUM)
        mine = drift.metrics[method.value]
        assert abs(mine.value - value) <= mine.error + 1e-9, (method, mine, value)
        if abs(value - mine.threshold) > mine.error:
            assert mine.drifted == drifted, method


def test_sketched_error_is_small_enough_to_matter() -> None:
    ref, cur = (list(map(float, a)) for a in SKETCHED_CASES["shifted"])
    drift = ours(ref, cur)
    for method in (Method.PSI, Method.JENSEN_SHANNON, Method.WASSERSTEIN):
        assert drift.metrics[method.value].error < 0.02, method


@pytest.mark.parametrize(
    ("ref", "cur", "kind", "expected"),
    [
        (list(rng.normal(0, 1, 500)), list(rng.normal(0, 1, 500)), NUM, Method.KS),
        (list(rng.normal(0, 1, 2000)), list(rng.normal(0, 1, 500)), NUM, Method.WASSERSTEIN),
        (["a", "b", "c"] * 100, ["a", "b", "c"] * 90, CAT, Method.CHISQUARE),
        (["a", "b", "c"] * 500, ["a", "b", "c"] * 90, CAT, Method.JENSEN_SHANNON),
    ],
)
def test_default_method_is_evidentlys(
    ref: list[object], cur: list[object], kind: object, expected: Method
) -> None:
    chosen = stattests.get_stattest(pd.Series(ref), pd.Series(cur), kind, None)
    assert chosen.name == expected.value
    assert ours(ref, cur).method is expected
