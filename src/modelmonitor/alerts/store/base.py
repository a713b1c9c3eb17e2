"""The alert-store contract: rules, alert states (compare-and-set), history, silences,
deliveries and channel status. One implementation per database (SQLite, PostgreSQL).

Every process (API, workers) talks to the same store, which is what makes several
evaluators safe: a state change is stored with :meth:`AlertStore.compare_and_set`,
and only the evaluator whose change was stored sends the notification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from modelmonitor.alerts.models import (
    AlertState,
    AnomalyPoint,
    ChannelStatus,
    Delivery,
    DetectorRecord,
    HistoryEntry,
)
from modelmonitor.alerts.rules import RuleBase
from modelmonitor.alerts.silences import Silence

__all__ = ["AlertStore", "Outcome"]

#: Given the stored states of a commit (None: lost the race), the history entries and
#: outbox deliveries to store with them.
Outcome = Callable[[list[AlertState | None]], tuple[list[HistoryEntry], list[Delivery]]]


@runtime_checkable
class AlertStore(Protocol):
    url: str

    async def connect(self) -> None:
        """Open, and create the ``alert_*`` tables if needed."""
        ...

    async def close(self) -> None: ...

    # Rules.
    async def list_rules(self) -> list[RuleBase]: ...

    async def get_rule(self, rule_id: str) -> RuleBase | None: ...

    async def put_rule(self, rule: RuleBase) -> None:
        """Insert or replace by ``rule.id``."""
        ...

    async def delete_rule(self, rule_id: str) -> bool:
        """Delete a rule and its alert states; False when there was none."""
        ...

    # Alert states.
    async def list_states(self, *, rule_id: str | None = None) -> list[AlertState]: ...

    async def compare_and_set(
        self, state: AlertState, *, expected_version: int
    ) -> AlertState | None:
        """Store ``state`` if the stored version is still ``expected_version`` (0: no row
        yet). Returns the stored state (version ``expected_version + 1``) or None when
        another evaluator changed it first."""
        ...

    async def commit(
        self, changes: list[tuple[AlertState, int]], outcome: Outcome
    ) -> tuple[list[AlertState | None], list[Delivery]]:
        """In one transaction: compare-and-set each ``(state, expected_version)``; call
        ``outcome`` with the stored states (None where another evaluator won) to get
        the history entries and outbox deliveries those changes cause; store them.
        So a state change and its notifications are stored together or not at all."""
        ...

    # History.
    async def add_history(self, entries: list[HistoryEntry]) -> None: ...

    async def history(
        self,
        *,
        start: float | None = None,
        end: float | None = None,
        service: str | None = None,
        rule_id: str | None = None,
        limit: int = 500,
    ) -> list[HistoryEntry]:
        """Newest first."""
        ...

    # Silences.
    async def list_silences(self) -> list[Silence]: ...

    async def get_silence(self, silence_id: str) -> Silence | None: ...

    async def put_silence(self, silence: Silence) -> None: ...

    async def delete_silence(self, silence_id: str) -> bool: ...

    # Deliveries (the outbox and the delivery log).
    async def add_delivery(self, delivery: Delivery) -> int:
        """Store a delivery (pending or finished); returns its id."""
        ...

    async def update_delivery(self, delivery: Delivery) -> None:
        """Replace the delivery with ``delivery.id``."""
        ...

    async def claim_deliveries(
        self, *, channel: str, now: float, until: float, limit: int
    ) -> list[Delivery]:
        """Take over pending deliveries of a channel whose claim ran out at or before
        ``now`` (their sender died or had no room), holding them ``until``; each is
        given to exactly one caller."""
        ...

    async def deliveries(
        self, *, channel: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Newest first."""
        ...

    # Channel status.
    async def channel_statuses(self) -> list[ChannelStatus]: ...

    async def record_channel_result(
        self, name: str, *, ok: bool, error: str, now: float, disable_after: int
    ) -> ChannelStatus:
        """Count a delivery's outcome atomically; disable the channel after
        ``disable_after`` consecutive failures (0 = never)."""
        ...

    async def set_channel_enabled(
        self, name: str, *, enabled: bool, reason: str, now: float
    ) -> ChannelStatus: ...

    async def prune(self, *, before: float) -> int:
        """Delete history and deliveries older than ``before``; return how many."""
        ...

    # Leases (one process runs a singleton job, such as the anomaly tracker).
    async def acquire_lease(self, name: str, *, holder: str, now: float, until: float) -> bool:
        """Take or renew lease ``name`` for ``holder`` until ``until``; True when held.
        Fails while another holder's lease has not expired at ``now``."""
        ...

    async def release_lease(self, name: str, *, holder: str) -> None: ...

    # Anomaly detection: detector states and scored points.
    async def load_detectors(self) -> list[DetectorRecord]: ...

    async def save_detectors(self, records: list[DetectorRecord]) -> None:
        """Insert or replace by (service, metric)."""
        ...

    async def delete_detectors(self, keys: list[tuple[str, str]]) -> None:
        """Remove the stored detectors of these (service, metric) series."""
        ...

    async def add_anomaly_points(self, points: list[AnomalyPoint]) -> None:
        """Store points; a point already stored (same series and time) is kept."""
        ...

    async def anomaly_points(
        self,
        *,
        start: float,
        end: float,
        service: str | None = None,
        metric: str | None = None,
        limit: int = 100_000,
    ) -> list[AnomalyPoint]:
        """Points with ``start <= at < end``, oldest first."""
        ...

    async def prune_anomaly_points(self, *, before: float) -> int: ...
