import math
import random

import pytest

from modelmonitor.sketch import LatencySketch


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_relative_accuracy(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(-4, 1.5) for _ in range(20_000)]
    sketch = LatencySketch(0.01)
    sketch.extend(values)
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        got = sketch.quantile(q)
        assert got is not None
        assert abs(got - exact(values, q)) <= 0.01 * exact(values, q) + 1e-12


def test_merge_equals_one_sketch_over_all_values() -> None:
    rng = random.Random(7)
    values = [rng.expovariate(20) for _ in range(5_000)]
    whole = LatencySketch()
    whole.extend(values)
    parts = [LatencySketch() for _ in range(5)]
    for index, value in enumerate(values):
        parts[index % 5].add(value)
    merged = LatencySketch()
    for part in parts:
        merged.merge(part)
    assert merged.count == whole.count
    for q in (0.5, 0.9, 0.99):
        assert merged.quantile(q) == whole.quantile(q)


def test_round_trip_and_zero_values() -> None:
    sketch = LatencySketch()
    sketch.extend([0.0, 0.0, 0.5, 1.5])
    clone = LatencySketch.from_bytes(sketch.to_bytes())
    assert clone.count == 4
    assert clone.quantile(0.0) == 0.0
    assert clone.quantiles([0.5, 1.0]) == sketch.quantiles([0.5, 1.0])
    assert clone.mean == pytest.approx(0.5)


def test_empty_and_invalid() -> None:
    assert LatencySketch().quantile(0.5) is None
    with pytest.raises(ValueError):
        LatencySketch().merge(LatencySketch(0.02))
    with pytest.raises(ValueError):
        LatencySketch(1.5)
