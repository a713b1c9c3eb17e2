"""Alert rules: what to watch, when to fire, whom to tell.

A rule has a ``kind``; each kind has its own model here and its own evaluator in
:mod:`modelmonitor.alerts.evaluators`. Only ``"threshold"`` exists today; the
``"anomaly"`` rules (:class:`AnomalyRule`) fire on the scores of the streaming
anomaly detectors (:mod:`modelmonitor.anomaly.tracker`).

Units: latencies in seconds, rates as fractions (0.05 = 5 %), throughput in
requests per second, ``dropped_events`` as events dropped by proxies in the window.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from modelmonitor.timeparse import parse_duration

__all__ = [
    "ANOMALY_METRICS",
    "COMPARATORS",
    "DRIFT_METRICS",
    "LANGUAGE_ANOMALY_METRICS",
    "METRICS",
    "RULE_KINDS",
    "WINDOW_SECONDS",
    "AlertRule",
    "AnomalyMetric",
    "AnomalyRule",
    "Comparator",
    "DriftRule",
    "Metric",
    "RuleError",
    "Severity",
    "ThresholdRule",
    "compare",
    "parse_rule",
    "rule_error_details",
    "score_threshold",
]

Metric = Literal[
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "error_rate",
    "5xx_rate",
    "throughput",
    "dropped_events",
    # Language models (docs/models.md), from requests that carried tokens.
    "ttft_p50",
    "ttft_p95",
    "tokens_per_second",
    "prompt_tokens_per_second",
    "completion_tokens_per_second",
    "cost_per_hour",
    "finish_reason_length_rate",
]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
AnomalyMetric = Literal[
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "error_rate",
    "throughput",
    "ttft_p95",
    "tokens_per_second",
]
ANOMALY_METRICS: tuple[str, ...] = AnomalyMetric.__args__  # type: ignore[attr-defined]
#: Anomaly metrics that only language-model services have.
LANGUAGE_ANOMALY_METRICS = ("ttft_p95", "tokens_per_second")
Comparator = Literal[">", ">=", "<", "<="]
COMPARATORS: tuple[str, ...] = Comparator.__args__  # type: ignore[attr-defined]
Severity = Literal["info", "warning", "critical"]

#: Evaluation windows (names of the live windows) and their length in seconds.
WINDOW_SECONDS: dict[str, int] = {"10s": 10, "1m": 60, "5m": 300}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,99}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30s, 5m or 1h (or seconds)")


def _window(value: Any) -> str:
    if isinstance(value, str) and value in WINDOW_SECONDS:
        return value
    seconds = _duration(value)
    for name, length in WINDOW_SECONDS.items():
        if seconds == length:
            return name
    raise ValueError(f"window must be one of {', '.join(WINDOW_SECONDS)} (10, 60 or 300 seconds)")


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]
Window = Annotated[str, BeforeValidator(_window)]


class RuleError(ValueError):
    """An invalid rule; ``details`` are FastAPI-shaped problems naming the field."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details))
        self.details = details


class RuleBase(BaseModel):
    """Fields every kind of rule shares. ``id``, ``source`` and the times are set by
    the server; everything else comes from the user."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = ""
    name: str
    kind: str
    enabled: bool = True
    #: A service name, or ``*`` for every service seen or configured.
    service: str = "*"
    #: Only this route template of the service (e.g. ``/v1/models/{id}/predict``).
    route: str | None = None
    #: Only this model's / this consumer's requests (threshold rules; evaluated
    #: from the per-minute model rollups, so over whole minutes).
    model: str | None = Field(default=None, min_length=1, max_length=200)
    consumer: str | None = Field(default=None, min_length=1, max_length=200)
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    #: Free text shown in notifications.
    summary: str = Field(default="", max_length=1000)
    #: Channel names (or channel types) to notify; ``None`` means every channel.
    channels: list[str] | None = None
    #: How long the condition must hold before the alert fires (pending meanwhile).
    for_seconds: Duration = Field(default=0.0, alias="for")
    #: How long a firing alert stays firing after the condition stops holding.
    keep_firing_for: Duration = 0.0
    #: Re-send a firing notification this often while it keeps firing; 0 = never.
    repeat_interval: Duration = 4 * 3600.0
    source: Literal["api", "config"] = "api"
    created_at: float = 0.0
    updated_at: float = 0.0

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "name must be 1-100 letters, digits, spaces or _.:/-, starting with a letter "
                "or digit"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _LABEL.match(key):
                raise ValueError(f"label name {key!r} must be letters, digits and _")
        return value

    @field_validator("service")
    @classmethod
    def _check_service(cls, value: str) -> str:
        if not value:
            raise ValueError("service must be a service name or '*'")
        return value

    @field_validator("route")
    @classmethod
    def _check_route(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("route must start with '/'")
        return value

    def document(self) -> dict[str, Any]:
        """JSON-ready, with ``for`` under its public name."""
        return self.model_dump(mode="json", by_alias=True)


class ThresholdRule(RuleBase):
    """Fires when ``metric comparator threshold`` holds over the evaluation window."""

    kind: Literal["threshold"] = "threshold"
    metric: Metric
    comparator: Comparator = ">"
    threshold: float
    window: Window = "1m"
    #: Latency and error metrics need at least this many requests in the window,
    #: so an idle service does not fire on one bad request. Not used by
    #: ``throughput`` and ``dropped_events``.
    min_requests: int = Field(default=10, ge=0)

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("threshold must be a finite number")
        return value

    @property
    def window_seconds(self) -> int:
        return WINDOW_SECONDS[self.window]


#: Evidence (score / (1 - score)) an anomaly rule needs at sensitivity 0; 1 at sensitivity 1.
_MAX_EVIDENCE = 4.0


def score_threshold(sensitivity: float) -> float:
    """The anomaly score at which a rule of this sensitivity fires.

    A detector's evidence is ``log p / log alpha``: ``p`` the probability of so large
    a score on normal data, ``alpha`` its alarm rate (1e-3 per point and member).
    Sensitivity 1 fires at the detector's own alarm line (evidence 1, ``p <= 1e-3``,
    score 0.5); 0.5 (default) at evidence 2 (``p <= 1e-6``: about one false alarm in
    two years of a series scored every minute; score 0.667); 0 at evidence 4
    (``p <= 1e-12``, score 0.8). Evidence is geometric in sensitivity.
    """
    evidence: float = _MAX_EVIDENCE ** (1.0 - sensitivity)
    return evidence / (1.0 + evidence)


def _learning(value: Any) -> int | str:
    problem = "learning_period must be a number of points or a duration such as 2h"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(problem)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("learning_period must be >= 0 points")
        return value
    try:
        parse_duration(value)
    except ValueError:
        raise ValueError(problem) from None
    return value


class AnomalyRule(RuleBase):
    """Fires when the streaming detector of ``metric`` scores an anomaly.

    The condition holds while a point in the last ``window`` scored at least
    :func:`score_threshold` (``sensitivity``), or while the value stays outside the
    band learned before an anomaly that scored that high.
    """

    kind: Literal["anomaly"] = "anomaly"
    metric: AnomalyMetric
    #: 0..1; higher fires on smaller anomalies (see :func:`score_threshold`).
    sensitivity: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Points the series' detector must have seen before the rule may fire: an
    #: integer (points) or a duration string (``"2h"``: that long at the tracker's
    #: step). The detector itself scores only after its own learning period.
    learning_period: Annotated[int | str, BeforeValidator(_learning)] = 0
    #: How far back a scored anomaly counts (10 s to 15 min).
    window: Duration = 60.0

    @field_validator("window")
    @classmethod
    def _check_window(cls, value: float) -> float:
        if not 10.0 <= value <= 900.0:
            raise ValueError("window must be between 10s and 15m")
        return value

    @property
    def score_threshold(self) -> float:
        return score_threshold(self.sensitivity)

    def learning_points(self, step_seconds: float) -> int:
        """``learning_period`` in points at a step of ``step_seconds``."""
        if isinstance(self.learning_period, int):
            return self.learning_period
        return math.ceil(parse_duration(self.learning_period) / step_seconds)


DriftMetric = Literal["drift_score", "feature_drift", "missing_rate", "prediction_share"]
DRIFT_METRICS: tuple[str, ...] = DriftMetric.__args__  # type: ignore[attr-defined]


class DriftRule(RuleBase):
    """Fires on data quality and drift of sampled payloads (docs/drift.md).

    ``drift_score``: share of drifted features and outputs; ``feature_drift``: the
    Jensen-Shannon distance of ``feature`` (the largest of any when unset);
    ``missing_rate``: of ``feature`` (the largest when unset); ``prediction_share``:
    share of predictions equal to ``value``. Computed over the last ``window``
    against the service's reference (or ``reference``).
    """

    kind: Literal["drift"] = "drift"
    metric: DriftMetric
    feature: str | None = Field(default=None, max_length=200)
    #: The predicted class for ``prediction_share``.
    value: str | None = Field(default=None, max_length=200, validate_default=True)
    comparator: Comparator = ">"
    threshold: float
    window: Duration = 3600.0
    reference: str | None = Field(default=None, max_length=200)
    #: Rows (sampled requests) the window needs before the condition may hold.
    min_rows: int = Field(default=30, ge=0)

    @field_validator("value")
    @classmethod
    def _value_needed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("metric") == "prediction_share" and value is None:
            raise ValueError("prediction_share needs value: the predicted class to watch")
        return value

    @field_validator("window")
    @classmethod
    def _long_enough(cls, value: float) -> float:
        if value < 60:
            raise ValueError("window must be at least 1m")
        return value


#: Rule kind -> model.
RULE_KINDS: dict[str, type[RuleBase]] = {
    "threshold": ThresholdRule,
    "anomaly": AnomalyRule,
    "drift": DriftRule,
}

#: Any rule (a kind's model); typed as the base so new kinds fit.
AlertRule = RuleBase


def compare(value: float, comparator: str, threshold: float) -> bool:
    if comparator == ">":
        return value > threshold
    if comparator == ">=":
        return value >= threshold
    if comparator == "<":
        return value < threshold
    if comparator == "<=":
        return value <= threshold
    raise ValueError(f"unknown comparator {comparator!r}")


def rule_error_details(error: ValidationError, *, prefix: tuple[str | int, ...] = ()) -> list[Any]:
    details = []
    for problem in error.errors():
        loc = [*prefix, *problem["loc"]]
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        details.append({"loc": loc, "msg": message, "type": problem["type"]})
    return details


def parse_rule(data: Any, *, prefix: tuple[str | int, ...] = ()) -> RuleBase:
    """Validate one rule document; raises :class:`RuleError` naming the field."""
    if not isinstance(data, dict):
        raise RuleError([{"loc": [*prefix], "msg": "a rule must be an object", "type": "type"}])
    kind = data.get("kind", "threshold")
    model = RULE_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise RuleError(
            [
                {
                    "loc": [*prefix, "kind"],
                    "msg": f"unknown rule kind {kind!r}; known: {', '.join(RULE_KINDS)}",
                    "type": "value_error",
                }
            ]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RuleError(rule_error_details(exc, prefix=prefix)) from None
