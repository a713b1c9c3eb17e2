"""Records the alerting package stores and sends: alert states, history, notifications,
deliveries and channel status. Plain msgspec structs, encoded as JSON in the store."""

from __future__ import annotations

import msgspec

__all__ = [
    "AlertNotice",
    "AlertState",
    "AnomalyPoint",
    "ChannelStatus",
    "Delivery",
    "DetectorRecord",
    "HistoryEntry",
    "Notification",
    "alert_id",
]


def alert_id(rule_id: str, service: str) -> str:
    """One alert per rule and service."""
    return f"{rule_id}:{service}"


class AlertState(msgspec.Struct, kw_only=True):
    """The lifecycle state of one rule on one service.

    ``version`` grows by one on every stored change; the store only accepts a
    change made from the version it holds (compare-and-set), so when several
    evaluators make the same transition exactly one of them wins and notifies.
    """

    rule_id: str
    service: str
    status: str = "inactive"  # inactive | pending | firing | resolved
    version: int = 0
    value: float | None = None
    #: When the condition started holding (pending and firing).
    active_since: float | None = None
    firing_since: float | None = None
    #: Last evaluation at which the condition held.
    last_active_at: float | None = None
    #: First evaluation at which a firing alert's condition no longer held
    #: (``keep_firing_for`` counts from here, as in Prometheus).
    cleared_at: float | None = None
    resolved_at: float | None = None
    #: The firing notification went out (false while silenced).
    notified: bool = False
    last_notified_at: float | None = None
    updated_at: float = 0.0

    @property
    def id(self) -> str:
        return alert_id(self.rule_id, self.service)


class HistoryEntry(msgspec.Struct, kw_only=True):
    """One state change of one alert."""

    at: float
    rule_id: str
    rule_name: str
    service: str
    previous: str
    status: str
    severity: str
    value: float | None = None
    threshold: float | None = None
    silenced: bool = False
    labels: dict[str, str] = {}
    id: int | None = None


class AlertNotice(msgspec.Struct, kw_only=True):
    """One alert inside a notification (webhook body version 1, ``alerts[]``)."""

    id: str
    rule_id: str
    rule_name: str
    #: "firing" or "resolved".
    status: str
    #: Why it is sent: "firing", "repeat" or "resolved".
    reason: str
    severity: str
    service: str
    route: str | None = None
    #: The rule's kind: "threshold", or "anomaly" (``threshold`` is then the anomaly
    #: score threshold and ``summary`` starts with the value and its expected band).
    kind: str = "threshold"
    metric: str | None = None
    comparator: str | None = None
    threshold: float | None = None
    value: float | None = None
    window: str | None = None
    summary: str = ""
    labels: dict[str, str] = {}
    starts_at: float | None = None
    ends_at: float | None = None


class Notification(msgspec.Struct, kw_only=True):
    """What one channel receives: the alerts of one service that changed in one round."""

    id: str
    service: str
    #: "firing" when any alert in it fires, else "resolved".
    status: str
    created_at: float
    alerts: list[AlertNotice]

    @property
    def title(self) -> str:
        names = ", ".join(sorted({notice.rule_name for notice in self.alerts}))
        return f"[{self.status.upper()}] {self.service}: {names}"


class Delivery(msgspec.Struct, kw_only=True):
    """Sending one notification to one channel: an outbox row while ``pending``, then
    the outcome."""

    notification_id: str
    channel: str
    channel_type: str
    service: str
    status: str  # pending | delivered | failed | refused | skipped
    created_at: float
    attempts: int = 0
    latency_ms: float | None = None
    http_status: int | None = None
    error: str = ""
    alert_ids: list[str] = []
    finished_at: float | None = None
    #: While pending: the process sending it holds it until then; afterwards any
    #: process may take it over (a crashed sender's notifications are not lost).
    claimed_until: float = 0.0
    #: What is sent (kept so another process can send it); not shown by the API.
    notification: Notification | None = None
    id: int | None = None


class ChannelStatus(msgspec.Struct, kw_only=True):
    """A channel's health, shared by every process through the store."""

    name: str
    enabled: bool = True
    consecutive_failures: int = 0
    disabled_reason: str = ""
    disabled_at: float | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_error: str = ""


class AnomalyPoint(msgspec.Struct, kw_only=True):
    """One scored step of one (service, metric) series, as the tracker stored it.

    ``lower``/``upper`` is the band the value was judged against (the band learned
    before this point, or the band frozen when the current anomaly began);
    ``count`` the points the detector had seen; ``anomalous`` the value is outside
    the band during an anomaly (or scored an alarm); ``episode_score`` the highest
    score since that anomaly began (0 outside one); ``member`` the detector member
    that fired (``novelty``, ``baseline``, ``spread``; empty when none did);
    ``event`` ``"new_normal"`` where the detector re-learned after a lasting shift.
    """

    service: str
    metric: str
    at: float
    value: float
    score: float
    expected: float
    lower: float
    upper: float
    count: int
    anomalous: bool = False
    episode_score: float = 0.0
    member: str = ""
    event: str = ""


class DetectorRecord(msgspec.Struct, kw_only=True):
    """A stored detector: its state (``AnomalyDetector.to_state``) and the tracker's
    own per-series data (``extra``: last band, current anomaly)."""

    service: str
    metric: str
    updated_at: float
    state: bytes
    extra: dict[str, float] = {}
