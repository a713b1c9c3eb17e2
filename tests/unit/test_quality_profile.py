"""Feature profiles: bulk and one-by-one adds agree, merges add up, the wire format round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from modelmonitor.quality.profile import (
    DISTINCT_LIMIT,
    EXACT_LIMIT,
    FeatureProfile,
    NumberSummary,
    WindowProfile,
    decode_profile,
    encode_profile,
)


def one_by_one(values: list[float]) -> NumberSummary:
    summary = NumberSummary()
    for value in values:
        summary.add(value)
    return summary


@pytest.mark.parametrize(
    "values",
    [
        list(np.random.default_rng(1).normal(0, 3, 500)),
        [float(v) for v in np.random.default_rng(2).integers(-3, 4, 300)],
        [0.0] * 20 + [1e-12, 5.0, -5.0] * 10,
    ],
    ids=["signed normal", "few distinct", "zeros and tiny"],
)
def test_bulk_extend_equals_adding_one_by_one(values: list[float]) -> None:
    bulk = NumberSummary()
    bulk.extend(values[:100])
    bulk.extend(values[100:])
    single = one_by_one(values)
    assert bulk.count == single.count
    assert bulk.mean == pytest.approx(single.mean, rel=1e-12, abs=1e-12)
    assert bulk.std == pytest.approx(single.std, rel=1e-9)
    assert (bulk.minimum, bulk.maximum) == (single.minimum, single.maximum)
    assert bulk.positive.bins == single.positive.bins
    assert bulk.negative.bins == single.negative.bins
    assert bulk.positive.count == single.positive.count
    assert bulk.values == single.values
    assert bulk.distinct == single.distinct


def test_exact_values_and_distinct_counts_are_dropped_past_their_limits() -> None:
    summary = NumberSummary()
    summary.extend([float(i) for i in range(DISTINCT_LIMIT + 1)])
    assert summary.distinct is None and summary.values is not None
    summary.extend([0.5] * EXACT_LIMIT)
    assert summary.values is None
    assert summary.count == DISTINCT_LIMIT + 1 + EXACT_LIMIT


def test_missing_types_and_merge() -> None:
    window = WindowProfile()
    window.add_rows([{"x": 1.0, "c": "a"}, {"x": None, "c": "b"}, {"c": "a"}])
    other = WindowProfile()
    other.add_rows([{"x": 2.0, "c": 3.0}], seen=["x", "c"])
    window.merge(other)
    x, c = window.features["x"], window.features["c"]
    assert window.rows == 4
    assert x.numbers.count == 2 and x.missing == 2  # null, and absent from a row
    assert c.categories == {"a": 2, "b": 1} and c.numbers.count == 1
    assert not c.is_numerical and x.is_numerical
    back = decode_profile(encode_profile(window))
    assert back.rows == 4 and back.features["x"].numbers.values == [1.0, 2.0]
    assert back.features["c"].categories == {"a": 2, "b": 1}
    assert back.features["x"].numbers.positive.bins == x.numbers.positive.bins


def test_categories_fold_beyond_top_k() -> None:
    profile = FeatureProfile()
    profile.extend([f"v{i}" for i in range(2000)] + ["common"] * 50)
    merged = FeatureProfile()
    merged.merge(profile)
    assert merged.categories["common"] == 50
    assert merged.categorical_count == 2050 and merged.other > 0
