"""The evaluation loop: every few seconds, every rule on every service, from live windows.

One round: read rules, stored alert states and silences; ask each rule's evaluator
whether its condition holds; run the lifecycle (:func:`~modelmonitor.alerts.lifecycle.step`);
then, per service, one transaction stores the changes with compare-and-set and,
for the changes that were stored, their history entries and notifications (one per
channel, grouping the service's alerts) as outbox rows; the dispatcher sends those.
Several engines (processes) may run against one store: when two make the same
change, exactly one stores it, and only that one's notification exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.alerts.channels import resolve_channels
from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.evaluators import (
    AnomalyEvaluator,
    DroppedEvents,
    Evaluator,
    RoundContext,
    ThresholdEvaluator,
)
from modelmonitor.alerts.lifecycle import Step, step
from modelmonitor.alerts.models import (
    AlertNotice,
    AlertState,
    Delivery,
    HistoryEntry,
    Notification,
)
from modelmonitor.alerts.rules import RuleBase
from modelmonitor.alerts.silences import Silence, alert_labels
from modelmonitor.alerts.store.base import AlertStore
from modelmonitor.live.base import LiveState
from modelmonitor.types import Clock

__all__ = ["AlertEngine", "RoundReport"]

log = logging.getLogger("modelmonitor.alerts")


class RoundReport(msgspec.Struct, kw_only=True):
    at: float
    evaluated: int = 0
    transitions: int = 0
    conflicts: int = 0
    errors: int = 0
    #: Every notice due this round (also those for rules without channels).
    notices: list[AlertNotice] = []
    #: (channel name, notification) handed to the dispatcher.
    notifications: list[tuple[str, Notification]] = []


@dataclass
class _Round:
    """What one round reads once and collects while it goes through the rules."""

    now: float
    report: RoundReport
    states: dict[tuple[str, str], AlertState]
    silences: list[Silence]
    #: Service -> the changes of its alerts, stored together at the end of the round.
    changes: dict[str, list[_Change]] = field(default_factory=lambda: defaultdict(list))
    #: Alerts firing (and notified) after this round, for channels that re-post them.
    firing: list[_Change] = field(default_factory=list)


@dataclass
class _Change:
    """One alert's step that changed something, not stored yet."""

    rule: RuleBase
    evaluator: Evaluator
    service: str
    old: AlertState
    result: Step
    value: float | None
    labels: dict[str, str]
    silenced: bool
    detail: str = ""


def rule_labels(rule: RuleBase) -> dict[str, str]:
    """The rule's labels, with the model and consumer it is filtered by."""
    if rule.model is None and rule.consumer is None:
        return rule.labels
    labels = dict(rule.labels)
    for name, value in (("model", rule.model), ("consumer", rule.consumer)):
        if value is not None:
            labels[name] = value
    return labels


class AlertEngine:
    def __init__(
        self,
        *,
        store: AlertStore,
        live: LiveState,
        dispatcher: Dispatcher | None = None,
        clock: Clock = time.time,
        interval_seconds: float = 5.0,
        configured_services: list[str] | None = None,
        evaluators: dict[str, Evaluator] | None = None,
        history_retention_seconds: float = 30 * 86400.0,
    ) -> None:
        self._store = store
        self._live = live
        self._dispatcher = dispatcher
        self._clock = clock
        self.interval_seconds = interval_seconds
        self._configured = list(configured_services or [])
        self.dropped = DroppedEvents()
        self.evaluators: dict[str, Evaluator] = {
            "threshold": ThresholdEvaluator(live, self.dropped),
            "anomaly": AnomalyEvaluator(store),
        }
        self.evaluators.update(evaluators or {})
        self._retention = history_retention_seconds
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self.last_round: RoundReport | None = None
        self.last_error = ""
        #: Totals since start, for Prometheus: rounds, rule evaluations, state changes,
        #: failed evaluations.
        self.totals = RoundReport(at=0.0)
        self.rounds_total = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-engine")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.last_round = await self.evaluate()
                self.last_error = ""
                await self._maybe_prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed round (store down) is retried next round
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alert evaluation failed: %s", self.last_error)
            spent = time.monotonic() - started
            await asyncio.sleep(max(0.05, self.interval_seconds - spent))

    async def _maybe_prune(self) -> None:
        now = self._clock()
        if self._retention and now - self._last_prune >= 3600:
            self._last_prune = now
            await self._store.prune(before=now - self._retention)

    async def evaluate(self, now: float | None = None) -> RoundReport:
        """One round at ``now`` (default: the clock). Notifications go to the dispatcher."""
        now = self._clock() if now is None else now
        report = RoundReport(at=now)
        snapshot = await self._live.snapshot(now=now)
        self.dropped.sample(snapshot, now)
        services = sorted({s.service for s in snapshot.services} | set(self._configured))
        context = RoundContext(now=now, services=services)
        rules = await self._store.list_rules()
        states = await self._store.list_states()
        silences = await self._store.list_silences()
        if self._dispatcher is not None:
            silences.extend(self._dispatcher.external_silences(now))
        round_ = _Round(
            now=now,
            report=report,
            states={(state.rule_id, state.service): state for state in states},
            silences=[silence for silence in silences if silence.active(now)],
        )
        for rule in rules:
            evaluator = self.evaluators.get(rule.kind)
            if evaluator is None:
                continue
            existing = {svc for (rid, svc) in round_.states if rid == rule.id}
            if rule.enabled:
                targets = sorted(set(evaluator.targets(rule, context)) | existing)
            else:
                targets = sorted(existing)
            for service in targets:
                report.evaluated += 1
                try:
                    await self._evaluate_one(round_, rule, evaluator, service)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the others
                    report.errors += 1
                    log.warning("rule %r on %r failed: %s", rule.name, service, exc)
        for service, changes in sorted(round_.changes.items()):
            await self._commit(round_, service, changes)
        if self._dispatcher is not None and self._dispatcher.refresh_due(now):
            self._dispatcher.refresh(
                [
                    (change.rule, self._notice(change, change.result.state))
                    for change in round_.firing
                ]
            )
        self.rounds_total += 1
        self.totals.evaluated += report.evaluated
        self.totals.transitions += report.transitions
        self.totals.errors += report.errors
        return report

    async def _evaluate_one(
        self, round_: _Round, rule: RuleBase, evaluator: Evaluator, service: str
    ) -> None:
        """Evaluate one rule on one service and run the lifecycle; keep what changed."""
        now = round_.now
        old = round_.states.get((rule.id, service)) or AlertState(rule_id=rule.id, service=service)
        if rule.enabled:
            evaluation = await evaluator.evaluate(rule, service=service, now=now)
            active, value, detail = evaluation.active, evaluation.value, evaluation.detail
        else:
            active, value, detail = False, None, ""
        labels = alert_labels(
            rule_id=rule.id,
            rule_name=rule.name,
            service=service,
            severity=rule.severity,
            route=rule.route,
            labels=rule_labels(rule),
        )
        # ``alertname`` lets silences written for Alertmanager match (see channels).
        matchable = {**labels, "alertname": rule.name}
        silenced = any(silence.matches(matchable) for silence in round_.silences)
        result = step(old, rule, active=active, value=value, now=now, silenced=silenced)
        change = _Change(
            rule=rule,
            evaluator=evaluator,
            service=service,
            old=old,
            result=result,
            value=value,
            labels=labels,
            silenced=silenced,
            detail=detail,
        )
        if result.changed:
            round_.changes[service].append(change)
        if result.state.status == "firing" and result.state.notified and not silenced:
            round_.firing.append(change)

    async def _commit(self, round_: _Round, service: str, changes: list[_Change]) -> None:
        """Store one service's changes with their history and outbox rows in one
        transaction; then queue the stored deliveries."""
        report, now = round_.report, round_.now

        def outcome(stored: list[AlertState | None]) -> tuple[list[HistoryEntry], list[Delivery]]:
            history: list[HistoryEntry] = []
            notices: list[tuple[RuleBase, AlertNotice]] = []
            for change, state in zip(changes, stored, strict=True):
                if state is None:
                    report.conflicts += 1  # another evaluator made this change; it notifies
                    continue
                if change.result.transition:
                    report.transitions += 1
                    history.append(self._history(change, state, now))
                if change.result.reason is not None:
                    notices.append((change.rule, self._notice(change, state)))
            notifications = self._group(service, notices, now)
            report.notices.extend(notice for _, notice in notices)
            report.notifications.extend(notifications)
            deliveries = []
            if self._dispatcher is not None:
                for name, notification in notifications:
                    row = self._dispatcher.outbox_row(name, notification)
                    if row is not None:
                        deliveries.append(row)
            return history, deliveries

        _, deliveries = await self._store.commit(
            [(change.result.state, change.old.version) for change in changes], outcome
        )
        if self._dispatcher is not None:
            for delivery in deliveries:
                await self._dispatcher.queue(delivery)

    @staticmethod
    def _history(change: _Change, state: AlertState, now: float) -> HistoryEntry:
        rule = change.rule
        return HistoryEntry(
            at=now,
            rule_id=rule.id,
            rule_name=rule.name,
            service=change.service,
            previous=change.old.status,
            status=state.status,
            severity=rule.severity,
            value=change.value,
            threshold=getattr(rule, "threshold", None),
            silenced=change.silenced,
            labels=change.labels,
        )

    @staticmethod
    def _notice(change: _Change, state: AlertState) -> AlertNotice:
        rule, reason = change.rule, change.result.reason
        return AlertNotice(
            id=state.id,
            rule_id=rule.id,
            rule_name=rule.name,
            status="resolved" if reason == "resolved" else "firing",
            reason=reason or "firing",
            severity=rule.severity,
            service=change.service,
            route=rule.route,
            value=change.value,
            summary=" - ".join(part for part in (change.detail, rule.summary) if part),
            labels=change.labels,
            starts_at=state.firing_since,
            ends_at=state.resolved_at,
            **change.evaluator.describe(rule),
        )

    def _group(
        self, service: str, notices: list[tuple[RuleBase, AlertNotice]], now: float
    ) -> list[tuple[str, Notification]]:
        """One notification per channel with the service's notices for that channel."""
        channels = self._dispatcher.channels if self._dispatcher is not None else {}
        types = {name: channel.type for name, channel in channels.items()}
        by_channel: dict[str, list[AlertNotice]] = defaultdict(list)
        for rule, notice in notices:
            for name in resolve_channels(rule.channels, types):
                by_channel[name].append(notice)
        return [
            (
                name,
                Notification(
                    id=uuid.uuid4().hex,
                    service=service,
                    status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
                    created_at=now,
                    alerts=alerts,
                ),
            )
            for name, alerts in sorted(by_channel.items())
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "interval_seconds": self.interval_seconds,
            "last_round_at": self.last_round.at if self.last_round else None,
            "last_error": self.last_error,
        }
