"""The brief's short form, ``POST /api/v1/alerts/configure`` and
``ModelAPIMonitor.configure(...)``, turned into ordinary threshold rules.

    {"metrics": ["response_time", "error_rate"],
     "thresholds": {"response_time_ms": 1000, "error_rate_percent": 5.0},
     "alert_channels": ["email", "slack", "webhook"]}

Mapping (every rule: window 1m, ``for`` 1m, severity warning, min_requests 10):

===========================  ==============================================
threshold key                rule
===========================  ==============================================
``response_time_ms``         ``latency_p95 > ms / 1000`` (seconds)
``latency_p50_ms`` (p90,     ``latency_p50 > ms / 1000`` (and so on)
p95, p99)
``error_rate_percent``       ``error_rate > percent / 100``
``5xx_rate_percent``         ``5xx_rate > percent / 100``
``throughput_min_rps``       ``throughput < rps`` (window 5m)
``throughput_max_rps``       ``throughput > rps``
``dropped_events``           ``dropped_events > n`` (window 5m, no ``for``)
===========================  ==============================================

``metrics`` (optional) names the metrics to alert on; a threshold for a metric
not listed is an error. Each key makes one rule with a fixed id
(``configure-<service>-<key>``), so configuring again replaces those rules.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelmonitor.alerts.rules import RuleBase, RuleError, parse_rule, rule_error_details

__all__ = ["ConfigureRequest", "rules_from_configure"]


class ConfigureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metrics: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(min_length=1)
    #: Channel names or types; omitted means every configured channel.
    alert_channels: list[str] | None = None
    service: str = "*"
    severity: str = "warning"


# threshold key -> (metric family for ``metrics``, rule fields, converter)
_MAPPING: dict[str, tuple[str, dict[str, Any], float]] = {
    "response_time_ms": ("response_time", {"metric": "latency_p95", "comparator": ">"}, 1e-3),
    "latency_p50_ms": ("response_time", {"metric": "latency_p50", "comparator": ">"}, 1e-3),
    "latency_p90_ms": ("response_time", {"metric": "latency_p90", "comparator": ">"}, 1e-3),
    "latency_p95_ms": ("response_time", {"metric": "latency_p95", "comparator": ">"}, 1e-3),
    "latency_p99_ms": ("response_time", {"metric": "latency_p99", "comparator": ">"}, 1e-3),
    "error_rate_percent": ("error_rate", {"metric": "error_rate", "comparator": ">"}, 1e-2),
    "5xx_rate_percent": ("error_rate", {"metric": "5xx_rate", "comparator": ">"}, 1e-2),
    "throughput_min_rps": (
        "throughput",
        {"metric": "throughput", "comparator": "<", "window": "5m"},
        1.0,
    ),
    "throughput_max_rps": ("throughput", {"metric": "throughput", "comparator": ">"}, 1.0),
    "dropped_events": (
        "dropped_events",
        {"metric": "dropped_events", "comparator": ">", "window": "5m", "for": 0},
        1.0,
    ),
}
#: Names accepted in ``metrics`` -> the family they stand for.
_METRIC_NAMES = {
    "response_time": "response_time",
    "latency": "response_time",
    "latency_p50": "response_time",
    "latency_p90": "response_time",
    "latency_p95": "response_time",
    "latency_p99": "response_time",
    "error_rate": "error_rate",
    "errors": "error_rate",
    "5xx_rate": "error_rate",
    "throughput": "throughput",
    "rps": "throughput",
    "requests": "throughput",
    "dropped_events": "dropped_events",
}


def _problem(loc: list[Any], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "value_error"}


def rules_from_configure(data: Any, *, now: float) -> list[RuleBase]:
    """Validate the short form and build its rules; raises :class:`RuleError`."""
    try:
        request = ConfigureRequest.model_validate(data)
    except ValidationError as exc:
        raise RuleError(rule_error_details(exc)) from None
    problems = []
    families = set()
    for index, name in enumerate(request.metrics):
        family = _METRIC_NAMES.get(name)
        if family is None:
            problems.append(
                _problem(
                    ["metrics", index],
                    f"unknown metric {name!r}; known: {', '.join(sorted(_METRIC_NAMES))}",
                )
            )
        families.add(family)
    for key in request.thresholds:
        if key not in _MAPPING:
            problems.append(
                _problem(
                    ["thresholds", key],
                    f"unknown threshold {key!r}; known: {', '.join(_MAPPING)}",
                )
            )
        elif request.metrics and _MAPPING[key][0] not in families:
            problems.append(
                _problem(
                    ["thresholds", key],
                    f"{key} is for metric {_MAPPING[key][0]!r}, which is not in metrics",
                )
            )
    if problems:
        raise RuleError(problems)
    rules = []
    scope = "all" if request.service == "*" else request.service
    for key, value in request.thresholds.items():
        _, fields, scale = _MAPPING[key]
        document: dict[str, Any] = {
            "window": "1m",
            "for": 60,
            **fields,
            "id": f"configure-{scope}-{key}",
            "name": f"{key} {value:g}" + ("" if request.service == "*" else f" on {scope}"),
            "service": request.service,
            "threshold": value * scale,
            "severity": request.severity,
            "channels": request.alert_channels,
            "summary": f"configured with {key} = {value:g}",
            "created_at": now,
            "updated_at": now,
        }
        rules.append(parse_rule(document, prefix=("thresholds", key)))
    return rules
