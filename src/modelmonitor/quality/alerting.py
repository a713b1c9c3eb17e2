"""``kind: drift`` alert rules: drift score, per-feature drift, missing rate, prediction share.

The evaluator plugs into the alert engine like the threshold and anomaly ones, so
drift alerts get the same lifecycle, silences and channels. A report is computed
at most once per ``refresh_seconds`` per (service, window, reference) and shared
by every rule that needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelmonitor.alerts.evaluators import Evaluation, Evaluator
from modelmonitor.alerts.rules import DriftRule, RuleBase, compare
from modelmonitor.alerts.system import AlertSystem
from modelmonitor.quality.config import DriftConfig
from modelmonitor.quality.drift import FeatureDrift, Method
from modelmonitor.quality.reports import ReferenceNotFound, ServiceDrift, drift_report
from modelmonitor.quality.store.base import QualityStore
from modelmonitor.settings import Settings

__all__ = ["DriftEvaluator", "drift_metric", "install_drift_alerts"]


def _js(feature: FeatureDrift) -> float:
    metric = feature.metrics.get(Method.JENSEN_SHANNON.value)
    return metric.value if metric is not None else 0.0


def drift_metric(result: ServiceDrift, rule: DriftRule) -> tuple[float | None, str]:
    """The rule's metric from a report, and a line for the notification."""
    report = result.report
    everything = report.features + report.outputs
    if rule.metric == "drift_score":
        top = ", ".join(report.top_features) or "none"
        return report.drift_score, f"drift score {report.drift_score:.2f} (drifting: {top})"
    if rule.metric == "prediction_share":
        output = next((f for f in report.outputs if f.name == "prediction"), None)
        if output is None or rule.value not in output.bins:
            return (0.0, f"no prediction {rule.value!r} in the window") if output else (None, "")
        share = output.current_share[output.bins.index(rule.value)]
        was = output.reference_share[output.bins.index(rule.value)]
        return share, f"prediction {rule.value!r} share {share:.1%} (reference {was:.1%})"
    pool = [f for f in everything if rule.feature is None or f.name == rule.feature]
    if not pool:
        return None, ""
    if rule.metric == "missing_rate":
        worst = max(pool, key=lambda f: f.missing_rate)
        return worst.missing_rate, f"{worst.name} missing in {worst.missing_rate:.1%} of rows"
    worst = max(pool, key=_js)
    verdict = "drifted" if worst.drifted else "not drifted"
    return _js(
        worst
    ), f"{worst.name}: Jensen-Shannon {_js(worst):.3f} ({verdict} by {worst.method})"


class DriftEvaluator(Evaluator):
    kind = "drift"

    def __init__(
        self,
        store: QualityStore,
        *,
        configs: Mapping[str, DriftConfig],
        refresh_seconds: float = 30.0,
    ) -> None:
        self._store = store
        self._configs = dict(configs)
        self._refresh = refresh_seconds
        self._cache: dict[tuple[str, float, str | None], tuple[float, ServiceDrift | None]] = {}

    async def _report(self, service: str, rule: DriftRule, now: float) -> ServiceDrift | None:
        key = (service, rule.window, rule.reference)
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._refresh:
            return cached[1]
        config = self._configs.get(service, DriftConfig())
        try:
            result: ServiceDrift | None = await drift_report(
                self._store,
                service=service,
                reference=rule.reference,
                start=now - rule.window,
                end=now,
                config=config,
                now=now,
                find_start=False,
            )
        except ReferenceNotFound:
            result = None
        self._cache[key] = (now, result)
        return result

    async def evaluate(self, rule: RuleBase, *, service: str, now: float) -> Evaluation:
        assert isinstance(rule, DriftRule)
        result = await self._report(service, rule, now)
        if result is None:
            return Evaluation(active=False)
        rows = result.report.current_rows
        value, detail = drift_metric(result, rule)
        if value is None:
            return Evaluation(active=False, requests=rows)
        active = rows >= rule.min_rows and compare(value, rule.comparator, rule.threshold)
        return Evaluation(active=active, value=value, requests=rows, detail=detail)

    def describe(self, rule: RuleBase) -> dict[str, Any]:
        assert isinstance(rule, DriftRule)
        described: dict[str, Any] = {
            "kind": "drift",
            "metric": rule.metric,
            "comparator": rule.comparator,
            "threshold": rule.threshold,
            "window": f"{rule.window:g}s",
        }
        if rule.feature:
            described["feature"] = rule.feature
        if rule.value:
            described["value"] = rule.value
        return described


def install_drift_alerts(alerts: AlertSystem, store: QualityStore, settings: Settings) -> None:
    """Let ``kind: drift`` rules be evaluated by this alert system."""
    alerts.engine.evaluators["drift"] = DriftEvaluator(
        store, configs={s.name: s.drift for s in settings.effective_services}
    )
