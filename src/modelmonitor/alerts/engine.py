"""The evaluation loop: every few seconds, every rule on every service, from live windows.

One round: read rules, stored alert states and silences; ask each rule's evaluator
whether its condition holds; run the lifecycle (:func:`~modelmonitor.alerts.lifecycle.step`);
store each change with compare-and-set; and only for changes that were stored,
record history and hand notifications to the dispatcher, grouped by service and
channel. Several engines (processes) may run against one store: when two make
the same change, exactly one stores it, and only that one notifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from modelmonitor.alerts.channels import resolve_channels
from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.evaluators import (
    DroppedEvents,
    Evaluator,
    RoundContext,
    ThresholdEvaluator,
)
from modelmonitor.alerts.lifecycle import step
from modelmonitor.alerts.models import AlertNotice, AlertState, HistoryEntry, Notification
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
    notices: dict[str, list[tuple[RuleBase, AlertNotice]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    history: list[HistoryEntry] = field(default_factory=list)


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
            "threshold": ThresholdEvaluator(live, self.dropped)
        }
        self.evaluators.update(evaluators or {})
        self._retention = history_retention_seconds
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self.last_round: RoundReport | None = None
        self.last_error = ""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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
        await self._store.add_history(round_.history)
        report.notices = [notice for entries in round_.notices.values() for _, notice in entries]
        report.notifications = await self._notify(round_.notices, now)
        return report

    async def _evaluate_one(
        self, round_: _Round, rule: RuleBase, evaluator: Evaluator, service: str
    ) -> None:
        """Evaluate one rule on one service; store, record and queue what changed."""
        now, states = round_.now, round_.states
        old = states.get((rule.id, service)) or AlertState(rule_id=rule.id, service=service)
        if rule.enabled:
            evaluation = await evaluator.evaluate(rule, service=service, now=now)
            active, value = evaluation.active, evaluation.value
        else:
            active, value = False, None
        labels = alert_labels(
            rule_id=rule.id,
            rule_name=rule.name,
            service=service,
            severity=rule.severity,
            route=rule.route,
            labels=rule.labels,
        )
        silenced = any(silence.matches(labels) for silence in round_.silences)
        result = step(old, rule, active=active, value=value, now=now, silenced=silenced)
        if not result.changed:
            return
        stored = await self._store.compare_and_set(result.state, expected_version=old.version)
        if stored is None:
            round_.report.conflicts += 1  # another evaluator made this change; it notifies
            return
        states[(rule.id, service)] = stored
        if result.transition:
            round_.report.transitions += 1
            round_.history.append(
                HistoryEntry(
                    at=now,
                    rule_id=rule.id,
                    rule_name=rule.name,
                    service=service,
                    previous=old.status,
                    status=stored.status,
                    severity=rule.severity,
                    value=value,
                    threshold=getattr(rule, "threshold", None),
                    silenced=silenced,
                    labels=labels,
                )
            )
        if result.reason is not None:
            notice = AlertNotice(
                id=stored.id,
                rule_id=rule.id,
                rule_name=rule.name,
                status="resolved" if result.reason == "resolved" else "firing",
                reason=result.reason,
                severity=rule.severity,
                service=service,
                route=rule.route,
                value=value,
                summary=rule.summary,
                labels=labels,
                starts_at=stored.firing_since,
                ends_at=stored.resolved_at,
                **evaluator.describe(rule),
            )
            round_.notices[service].append((rule, notice))

    async def _notify(
        self, notices: dict[str, list[tuple[RuleBase, AlertNotice]]], now: float
    ) -> list[tuple[str, Notification]]:
        """Group one round's notices by service and channel, and hand them over."""
        sent: list[tuple[str, Notification]] = []
        channels = self._dispatcher.channels if self._dispatcher is not None else {}
        types = {name: channel.type for name, channel in channels.items()}
        for service, entries in sorted(notices.items()):
            by_channel: dict[str, list[AlertNotice]] = defaultdict(list)
            for rule, notice in entries:
                for name in resolve_channels(rule.channels, types):
                    by_channel[name].append(notice)
            for name, alerts in sorted(by_channel.items()):
                notification = Notification(
                    id=uuid.uuid4().hex,
                    service=service,
                    status="firing" if any(a.status == "firing" for a in alerts) else "resolved",
                    created_at=now,
                    alerts=alerts,
                )
                sent.append((name, notification))
                if self._dispatcher is not None:
                    await self._dispatcher.enqueue(name, notification)
        return sent

    def describe(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "interval_seconds": self.interval_seconds,
            "last_round_at": self.last_round.at if self.last_round else None,
            "last_error": self.last_error,
        }
