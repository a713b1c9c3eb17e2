"""The Alertmanager channel's payload, silences and what it shows, without a server."""

from __future__ import annotations

import pytest

from modelmonitor.alerts.channels import ChannelConfigError, build_channels
from modelmonitor.alerts.channels.alertmanager import (
    AlertmanagerConfig,
    alertmanager_alert,
    alertmanager_labels,
    parse_silence,
)
from modelmonitor.alerts.models import AlertNotice


def test_labels_are_valid_alertmanager_names_with_alertname() -> None:
    labels = alertmanager_labels({"service": "iris", "route": "", "team.name": "ml"}, "p95 high")
    assert labels == {"service": "iris", "team_name": "ml", "alertname": "p95 high"}


def test_firing_alert_ends_a_few_resends_ahead_and_resolved_one_when_it_resolved() -> None:
    config = AlertmanagerConfig(url="http://am:9093/", resend_seconds=30)
    notice = AlertNotice(
        id="r:iris",
        rule_id="r",
        rule_name="p95 high",
        status="firing",
        reason="firing",
        severity="warning",
        service="iris",
        starts_at=1_000.0,
    )
    firing = alertmanager_alert(notice, now=2_000.0, config=config)
    assert firing["startsAt"] == "1970-01-01T00:16:40.000Z"
    assert firing["endsAt"] == "1970-01-01T00:35:20.000Z"  # 2000 + 4 x 30 s
    assert "generatorURL" not in firing  # no dashboard_url
    notice.status, notice.ends_at = "resolved", 1_500.0
    resolved = alertmanager_alert(notice, now=2_000.0, config=config)
    assert resolved["endsAt"] == "1970-01-01T00:25:00.000Z"


def test_silences_become_matchers_and_expired_ones_are_ignored() -> None:
    silence = parse_silence(
        {
            "id": "s1",
            "status": {"state": "active"},
            "matchers": [
                {"name": "alertname", "value": "p95.*", "isRegex": True, "isEqual": True},
                {"name": "service", "value": "wine", "isRegex": False, "isEqual": False},
            ],
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "2026-01-01T01:00:00.000Z",
        }
    )
    assert silence is not None
    assert [m.op for m in silence.matchers] == ["=~", "!="]
    assert silence.matches({"alertname": "p95 high", "service": "iris"})
    assert not silence.matches({"alertname": "p95 high", "service": "wine"})
    assert parse_silence({"status": {"state": "expired"}, "matchers": []}) is None
    assert parse_silence({"matchers": "nonsense"}) is None


def test_credentials_are_masked_and_bad_settings_name_the_field() -> None:
    channels = build_channels(
        {
            "am": {
                "type": "alertmanager",
                "url": "http://am:9093",
                "bearer_token": "tok-123",
                "headers": {"X-Scope-OrgID": "tenant"},
            }
        }
    )
    shown = channels["am"].describe()
    assert shown["bearer_token"] == "***" and shown["headers"] == {"X-Scope-OrgID": "***"}
    assert "tok-123" not in str(shown)
    with pytest.raises(ChannelConfigError, match=r"notification_channels\.am\.url: .*http"):
        build_channels({"am": {"type": "alertmanager", "url": "am:9093"}})
    with pytest.raises(ChannelConfigError, match=r"am\.resend_seconds: .*greater than or equal"):
        build_channels({"am": {"type": "alertmanager", "url": "http://a", "resend_seconds": 0}})
