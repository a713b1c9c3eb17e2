"""Drift of one window against a reference: per feature, per output, and per service.

Every feature gets PSI and Jensen-Shannon; numbers also Kolmogorov-Smirnov and the
normed Wasserstein distance, categories chi-square. The verdict for a feature comes
from one method, chosen as Evidently chooses by default (KS or chi-square for a
reference of at most 1,000 values, Wasserstein or Jensen-Shannon above), or fixed
per service. The service's drift score is the share of drifted features.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import msgspec

from modelmonitor.quality import stats
from modelmonitor.quality.profile import FeatureProfile, WindowProfile

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DriftReport",
    "FeatureDrift",
    "Method",
    "MetricValue",
    "compare_feature",
    "compare_windows",
]


class Method(enum.StrEnum):
    PSI = "psi"
    JENSEN_SHANNON = "jensenshannon"
    KS = "ks"
    WASSERSTEIN = "wasserstein"
    CHISQUARE = "chisquare"


#: Evidently's default thresholds; p-value methods drift *below* theirs.
DEFAULT_THRESHOLDS: dict[Method, float] = {
    Method.PSI: 0.1,
    Method.JENSEN_SHANNON: 0.1,
    Method.KS: 0.05,
    Method.WASSERSTEIN: 0.1,
    Method.CHISQUARE: 0.05,
}
_P_VALUES = frozenset({Method.KS, Method.CHISQUARE})
_SMALL_REFERENCE = 1000


class MetricValue(msgspec.Struct, frozen=True):
    value: float
    #: How far the value may be off because a side was sketched (0 when exact).
    error: float
    threshold: float
    drifted: bool


class FeatureDrift(msgspec.Struct, frozen=True):
    name: str
    kind: str  # "numerical" or "categorical"
    method: Method
    #: The chosen method's figure (a p-value for KS and chi-square).
    score: float
    drifted: bool
    exact: bool
    metrics: dict[str, MetricValue]
    reference_count: int
    current_count: int
    missing_rate: float
    type_mismatch_rate: float
    #: Current numbers outside the reference's [min, max].
    out_of_range: int
    bins: list[str]
    reference_share: list[float]
    current_share: list[float]


class DriftReport(msgspec.Struct, frozen=True):
    features: list[FeatureDrift]
    outputs: list[FeatureDrift]
    #: Share of features (inputs and outputs) that drifted.
    drift_score: float
    drifted: bool
    top_features: list[str]
    reference_rows: int
    current_rows: int


def _metric(
    method: Method, value: float, error: float, thresholds: dict[Method, float]
) -> MetricValue:
    threshold = thresholds.get(method, DEFAULT_THRESHOLDS[method])
    drifted = value <= threshold if method in _P_VALUES else value >= threshold
    if method is Method.CHISQUARE:
        drifted = value < threshold
    return MetricValue(value, error, threshold, drifted)


def _spread(
    fn: Callable[[stats.Sample, stats.Sample], float], ref: stats.Sample, cur: stats.Sample
) -> float:
    """How far ``fn`` moves when sketched sides' values go to their bucket ends."""
    if ref.exact and cur.exact:
        return 0.0
    base = fn(ref, cur)
    moved = [fn(ref.shifted(a), cur.shifted(b)) for a in (False, True) for b in (False, True)]
    return max(abs(m - base) for m in moved)


def _numerical(
    ref: FeatureProfile, cur: FeatureProfile, thresholds: dict[Method, float]
) -> tuple[dict[str, MetricValue], stats.Histogram, bool, int]:
    r = stats.Sample.of_numbers(ref.numbers)
    c = stats.Sample.of_numbers(cur.numbers)
    hist = stats.numerical_percents(r, c)

    def psi_of(a: stats.Sample, b: stats.Sample) -> float:
        return stats.psi(stats.numerical_percents(a, b))

    def js_of(a: stats.Sample, b: stats.Sample) -> float:
        return stats.jensenshannon(stats.numerical_percents(a, b))

    ks, ks_error = stats.ks_pvalue(r, c)
    wd, wd_error = stats.wasserstein_norm(r, c, ref.numbers.std)
    metrics = {
        Method.PSI: _metric(Method.PSI, stats.psi(hist), _spread(psi_of, r, c), thresholds),
        Method.JENSEN_SHANNON: _metric(
            Method.JENSEN_SHANNON, stats.jensenshannon(hist), _spread(js_of, r, c), thresholds
        ),
        Method.KS: _metric(Method.KS, ks, ks_error, thresholds),
        Method.WASSERSTEIN: _metric(Method.WASSERSTEIN, wd, wd_error, thresholds),
    }
    outside = 0
    if c.points.size:
        mask = (c.points < ref.numbers.minimum) | (c.points > ref.numbers.maximum)
        outside = int(c.weights[mask].sum())
    return {str(k): v for k, v in metrics.items()}, hist, r.exact and c.exact, outside


def _categorical(
    ref: FeatureProfile, cur: FeatureProfile, thresholds: dict[Method, float]
) -> tuple[dict[str, MetricValue], stats.Histogram]:
    hist = stats.categorical_percents(ref, cur)
    metrics = {
        Method.PSI: _metric(Method.PSI, stats.psi(hist), 0.0, thresholds),
        Method.JENSEN_SHANNON: _metric(
            Method.JENSEN_SHANNON, stats.jensenshannon(hist), 0.0, thresholds
        ),
        Method.CHISQUARE: _metric(
            Method.CHISQUARE,
            stats.chisquare_pvalue(hist, ref.categorical_count, cur.categorical_count),
            0.0,
            thresholds,
        ),
    }
    return {str(k): v for k, v in metrics.items()}, hist


def _default_method(numerical: bool, ref_count: int, distinct: int) -> Method:
    # Evidently's choice; its z-test for two values is replaced by chi-square.
    if ref_count <= _SMALL_REFERENCE:
        return Method.KS if numerical and distinct > 5 else Method.CHISQUARE
    if numerical and distinct > 5:
        return Method.WASSERSTEIN
    return Method.JENSEN_SHANNON


def compare_feature(
    name: str,
    ref: FeatureProfile,
    cur: FeatureProfile,
    *,
    rows: int | None = None,
    method: Method | None = None,
    thresholds: dict[Method, float] | None = None,
) -> FeatureDrift | None:
    """Drift of one feature, or None when either side has no values of the reference's kind."""
    limits = thresholds or {}
    numerical = ref.is_numerical
    ref_n = ref.numbers.count if numerical else ref.categorical_count
    cur_n = cur.numbers.count if numerical else cur.categorical_count
    mismatched = cur.categorical_count if numerical else cur.numbers.count
    total = rows if rows is not None else cur.present + cur.missing
    if ref_n == 0 or cur_n == 0:
        return None
    if numerical:
        metrics, hist, exact, outside = _numerical(ref, cur, limits)
        distinct = _combined_distinct(ref, cur)
    else:
        metrics, hist = _categorical(ref, cur, limits)
        exact, outside = True, 0
        distinct = len(hist.labels)
    chosen = method or _default_method(numerical, ref_n, distinct)
    if chosen.value not in metrics:
        chosen = Method.JENSEN_SHANNON
    verdict = metrics[chosen.value]
    missing = max(total - cur.present, cur.missing) if total else cur.missing
    return FeatureDrift(
        name=name,
        kind="numerical" if numerical else "categorical",
        method=chosen,
        score=verdict.value,
        drifted=verdict.drifted,
        exact=exact,
        metrics=metrics,
        reference_count=ref_n,
        current_count=cur_n,
        missing_rate=missing / total if total else 0.0,
        type_mismatch_rate=mismatched / max(cur.present, 1),
        out_of_range=outside,
        bins=hist.labels,
        reference_share=[float(x) for x in hist.reference],
        current_share=[float(x) for x in hist.current],
    )


def _combined_distinct(ref: FeatureProfile, cur: FeatureProfile) -> int:
    a, b = ref.numbers.distinct, cur.numbers.distinct
    if a is None or b is None:
        return 6  # more than Evidently's five
    return len(set(a) | set(b))


def compare_windows(
    reference: WindowProfile,
    current: WindowProfile,
    *,
    methods: dict[str, Method] | None = None,
    thresholds: dict[Method, float] | None = None,
    drift_share: float = 0.5,
    top: int = 5,
) -> DriftReport:
    """Every feature and output both windows have, and the service's drift score."""
    chosen = methods or {}

    def side(
        ref: dict[str, FeatureProfile], cur: dict[str, FeatureProfile], rows: int | None
    ) -> list[FeatureDrift]:
        out = []
        for name in sorted(set(ref) & set(cur)):
            result = compare_feature(
                name,
                ref[name],
                cur[name],
                rows=rows,
                method=chosen.get(name),
                thresholds=thresholds,
            )
            if result is not None:
                out.append(result)
        return out

    features = side(reference.features, current.features, current.rows or None)
    outputs = side(reference.outputs, current.outputs, None)
    everything = features + outputs
    drifted = [f for f in everything if f.drifted]
    score = len(drifted) / len(everything) if everything else 0.0
    ranked = sorted(everything, key=_severity, reverse=True)
    return DriftReport(
        features=features,
        outputs=outputs,
        drift_score=score,
        drifted=bool(everything) and score >= drift_share,
        top_features=[f.name for f in ranked[:top] if f.drifted],
        reference_rows=reference.rows,
        current_rows=current.rows,
    )


def _severity(feature: FeatureDrift) -> tuple[bool, float]:
    # Rank by verdict, then by Jensen-Shannon (comparable across kinds and methods).
    js = feature.metrics.get(Method.JENSEN_SHANNON.value)
    return feature.drifted, js.value if js is not None else 0.0
