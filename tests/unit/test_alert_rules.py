"""Rule validation, the configure mapping, silences and the pure lifecycle."""

from __future__ import annotations

import pytest

from modelmonitor.alerts.configure import rules_from_configure
from modelmonitor.alerts.lifecycle import step
from modelmonitor.alerts.models import AlertState
from modelmonitor.alerts.rules import RuleError, ThresholdRule, compare, parse_rule
from modelmonitor.alerts.silences import Matcher, Silence


def test_rule_defaults_and_durations() -> None:
    rule = parse_rule({"name": "x", "metric": "latency_p95", "threshold": 0.5})
    assert isinstance(rule, ThresholdRule)
    assert (rule.kind, rule.service, rule.comparator, rule.window) == ("threshold", "*", ">", "1m")
    assert (rule.for_seconds, rule.keep_firing_for, rule.repeat_interval) == (0, 0, 14400)
    assert rule.min_requests == 10 and rule.channels is None
    rule = parse_rule(
        {"name": "x", "metric": "5xx_rate", "threshold": 0.1, "window": 300, "for": "90s"}
    )
    assert rule.window == "5m" and rule.for_seconds == 90  # type: ignore[attr-defined]
    assert rule.document()["for"] == 90
    assert parse_rule({"name": "y", "metric": "error_rate", "threshold": 1, "window": "10s"})


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"metric": "error_rate"}, "threshold"),
        ({"metric": "error_rate", "threshold": float("nan")}, "threshold"),
        ({"metric": "error_rate", "threshold": 1, "window": "15s"}, "window"),
        ({"metric": "error_rate", "threshold": 1, "labels": {"bad-name": "x"}}, "labels"),
        ({"metric": "error_rate", "threshold": 1, "name": "!"}, "name"),
        ({"metric": "error_rate", "threshold": 1, "keep_firing_for": -5}, "keep_firing_for"),
    ],
)
def test_invalid_rules_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({"name": "x", **document})
    assert [field] in [problem["loc"][:1] for problem in caught.value.details]


def test_compare() -> None:
    assert compare(2, ">", 1) and not compare(1, ">", 1) and compare(1, ">=", 1)
    assert compare(0, "<", 1) and compare(1, "<=", 1) and not compare(2, "<=", 1)


def test_configure_mapping() -> None:
    rules = rules_from_configure(
        {
            "metrics": ["response_time", "error_rate", "throughput"],
            "thresholds": {
                "response_time_ms": 1000,
                "error_rate_percent": 5.0,
                "throughput_min_rps": 2,
            },
            "alert_channels": ["email", "slack", "webhook"],
            "service": "iris",
        },
        now=100.0,
    )
    summary = {
        r.id: (r.metric, r.comparator, r.threshold, r.window, r.for_seconds)  # type: ignore[attr-defined]
        for r in rules
    }
    assert summary == {
        "configure-iris-response_time_ms": ("latency_p95", ">", 1.0, "1m", 60.0),
        "configure-iris-error_rate_percent": ("error_rate", ">", 0.05, "1m", 60.0),
        "configure-iris-throughput_min_rps": ("throughput", "<", 2.0, "5m", 60.0),
    }
    assert all(r.channels == ["email", "slack", "webhook"] and r.service == "iris" for r in rules)


def test_matchers_and_silence_window() -> None:
    labels = {"service": "iris", "severity": "critical", "team": "ml"}
    assert Matcher(name="service", value="iris").matches(labels)
    assert Matcher(name="service", value="wine", op="!=").matches(labels)
    assert Matcher(name="severity", value="crit.*", op="=~").matches(labels)
    assert Matcher(name="team", value="m", op="!~").matches(labels)
    assert not Matcher(name="missing", value="x").matches(labels)
    silence = Silence.model_validate(
        {"matchers": [{"name": "team", "value": "ml"}], "starts_at": 10, "ends_at": 20}
    )
    assert silence.matches(labels) and silence.active(10) and not silence.active(20)


def test_lifecycle_step_table() -> None:
    rule = parse_rule(
        {
            "name": "x",
            "metric": "error_rate",
            "threshold": 0.1,
            "for": 10,
            "keep_firing_for": 5,
            "repeat_interval": 0,
        }
    )
    state = AlertState(rule_id="r", service="s")
    seen = []
    for now, active in ((0, True), (5, True), (10, True), (15, False), (20, False), (25, False)):
        result = step(state, rule, active=active, value=1.0 if active else 0.0, now=now)
        state = result.state
        seen.append((now, state.status, result.reason))
    assert seen == [
        (0, "pending", None),
        (5, "pending", None),
        (10, "firing", "firing"),
        (15, "firing", None),
        (20, "resolved", "resolved"),
        (25, "resolved", None),
    ]
