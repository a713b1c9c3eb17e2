"""``AlertSystem``: the alert store, channels, dispatcher and engine, built from settings.

The composition root (:mod:`modelmonitor.runtime`, or ``create_app`` on its own)
builds one per process. Every process serves the API from it; processes that
hold live windows also run the engine (``evaluate=True``) and the anomaly tracker
(which feeds detectors in one process at a time, through a lease in the store).
"""

from __future__ import annotations

import os
import re
import time
from functools import partial
from typing import Any

from modelmonitor.alerts.channels import (
    ChannelConfigError,
    NotificationChannel,
    build_channels,
    unknown_channels,
)
from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.engine import AlertEngine
from modelmonitor.alerts.evaluators import AnomalyEvaluator, ThresholdEvaluator
from modelmonitor.alerts.rules import RuleBase, RuleError, parse_rule
from modelmonitor.alerts.runtime_channels import RuntimeChannels
from modelmonitor.alerts.store import AlertStore, create_alert_store
from modelmonitor.alerts.store.sql import SqlAlertStore
from modelmonitor.anomaly.tracker import AnomalyTracker, TrackerConfig, window_for
from modelmonitor.live.base import LiveState
from modelmonitor.query.models import dimension_window
from modelmonitor.sealing import Sealer, load_sealer
from modelmonitor.settings import ConfigError, Settings
from modelmonitor.storage.base import EventStore
from modelmonitor.types import Clock

__all__ = ["AlertSystem", "config_rules", "validate_alerting"]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "rule"


def config_rules(
    documents: list[dict[str, Any]], *, channel_types: dict[str, str], now: float
) -> list[RuleBase]:
    """The ``alert_rules`` setting as rules with ids ``config-<name>``; raises
    :class:`ConfigError` naming the field."""
    rules: list[RuleBase] = []
    problems: list[str] = []
    for index, document in enumerate(documents):
        try:
            rule = parse_rule(document, prefix=("alert_rules", index))
        except RuleError as exc:
            problems.extend(str(exc).split("; "))
            continue
        for entry in unknown_channels(rule.channels, channel_types):
            problems.append(
                f"alert_rules.{index}.channels: no channel or channel type named {entry!r}"
            )
        rule.id = f"config-{_slug(rule.name)}"
        rule.source = "config"
        rule.created_at = rule.updated_at = now
        rules.append(rule)
    ids = [rule.id for rule in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"alert_rules: rule names must be unique ({', '.join(duplicates)})")
    if problems:
        raise ConfigError("\n".join(problems))
    return rules


def validate_alerting(
    settings: Settings, *, now: float = 0.0
) -> tuple[list[RuleBase], dict[str, NotificationChannel[Any]]]:
    """The ``alert_rules`` and ``notification_channels`` settings, validated; raises
    :class:`ConfigError` with one line per problem, naming the field."""
    problems: list[str] = []
    channels: dict[str, NotificationChannel[Any]] = {}
    try:
        channels = build_channels(settings.notification_channels)
    except ChannelConfigError as exc:
        problems.append(str(exc))
    # Channel names are checked against the configured names, broken or not.
    types = {name: channel.type for name, channel in channels.items()}
    for name, raw in settings.notification_channels.items():
        types.setdefault(name, str(raw.get("type", name)) if isinstance(raw, dict) else name)
    rules: list[RuleBase] = []
    try:
        rules = config_rules(settings.alert_rules, channel_types=types, now=now)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return rules, channels


class AlertSystem:
    def __init__(
        self,
        *,
        store: AlertStore,
        channels: dict[str, NotificationChannel[Any]],
        live: LiveState,
        clock: Clock = time.time,
        interval_seconds: float = 5.0,
        configured_services: list[str] | None = None,
        rules: list[RuleBase] | None = None,
        own_store: bool = True,
        anomaly: TrackerConfig | None = None,
        history: EventStore | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock
        self.dispatcher = Dispatcher(channels=channels, store=store, clock=clock)
        #: Channels added through the API (None when the store has no SQL session).
        self.runtime_channels = (
            RuntimeChannels(
                store,
                dispatcher=self.dispatcher,
                declared=list(channels),
                # A key of this process alone unless given: from_settings shares one.
                sealer=sealer or Sealer(os.urandom(32)),
            )
            if isinstance(store, SqlAlertStore)
            else None
        )
        self.engine = AlertEngine(
            store=store,
            live=live,
            dispatcher=self.dispatcher,
            clock=clock,
            interval_seconds=interval_seconds,
            configured_services=configured_services,
        )
        self.tracker = AnomalyTracker(
            store=store,
            live=live,
            clock=clock,
            config=anomaly,
            configured_services=configured_services,
            history=history,
        )
        self.engine.evaluators["anomaly"] = AnomalyEvaluator(
            store, step_seconds=self.tracker.config.step_seconds
        )
        if history is not None:  # rules filtered by model or consumer read its rollups
            threshold = self.engine.evaluators["threshold"]
            assert isinstance(threshold, ThresholdEvaluator)
            threshold.dimensions = partial(dimension_window, history)
        self._config_rules = list(rules or [])
        self._own_store = own_store

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        live: LiveState,
        clock: Clock = time.time,
        store: AlertStore | None = None,
        history: EventStore | None = None,
    ) -> AlertSystem:
        """Validate the alerting settings (raises :class:`ConfigError`) and build."""
        rules, channels = validate_alerting(settings, now=clock())
        secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
        return cls(
            sealer=load_sealer(settings.data_dir, secret_key),
            store=store or create_alert_store(settings.effective_database_url),
            channels=channels,
            live=live,
            clock=clock,
            interval_seconds=settings.alert_evaluation_interval_seconds,
            configured_services=[s.name for s in settings.effective_services],
            rules=rules,
            own_store=store is None,
            anomaly=TrackerConfig(
                step_seconds=settings.anomaly_step_seconds,
                window_seconds=window_for(settings.anomaly_step_seconds),
                learning_period=settings.anomaly_learning_period,
                retention_seconds=settings.anomaly_retention,
            ),
            history=history,
        )

    @property
    def channel_types(self) -> dict[str, str]:
        return {name: channel.type for name, channel in self.channels.items()}

    async def start(self, *, evaluate: bool = True) -> None:
        if self._own_store:
            await self.store.connect()
        await self.load_config_rules()
        await self.dispatcher.start()
        if self.runtime_channels is not None:
            await self.runtime_channels.start()
        if evaluate:
            await self.tracker.start()
            await self.engine.start()

    async def stop(self) -> None:
        await self.engine.stop()
        await self.tracker.stop()
        if self.runtime_channels is not None:
            await self.runtime_channels.stop()
        await self.dispatcher.stop()
        if self._own_store:
            await self.store.close()

    async def load_config_rules(self) -> None:
        """Store the config file's rules; drop config rules no longer in it."""
        wanted = {rule.id: rule for rule in self._config_rules}
        for existing in await self.store.list_rules():
            if existing.source == "config" and existing.id not in wanted:
                await self.store.delete_rule(existing.id)
            elif existing.id in wanted:
                wanted[existing.id].created_at = existing.created_at
        for rule in wanted.values():
            await self.store.put_rule(rule)
