"""The alert store written once in portable SQL; drivers only supply a session.

Statements use ``?`` placeholders (the PostgreSQL driver numbers them). Rules,
silences, states and records are kept as JSON documents next to the columns the
queries filter on, so the tables stay simple and new rule kinds need no migration.
Every operation runs in one transaction (a :class:`Session`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from modelmonitor.alerts.models import (
    AlertState,
    AnomalyPoint,
    ChannelStatus,
    Delivery,
    DetectorRecord,
    HistoryEntry,
)
from modelmonitor.alerts.rules import RuleBase, parse_rule
from modelmonitor.alerts.silences import Silence
from modelmonitor.alerts.store.base import Outcome

__all__ = ["Session", "SqlAlertStore"]

_state_decoder = msgspec.json.Decoder(AlertState)
_history_decoder = msgspec.json.Decoder(HistoryEntry)
_delivery_decoder = msgspec.json.Decoder(Delivery)
_Doc = TypeVar("_Doc", HistoryEntry, Delivery)


def _with_id(decoder: msgspec.json.Decoder[_Doc], row_id: Any, doc: Any) -> _Doc:
    """A stored document with its row's id filled in."""
    found = decoder.decode(doc)
    found.id = int(row_id)
    return found


_channel_decoder = msgspec.json.Decoder(ChannelStatus)
_point_decoder = msgspec.json.Decoder(AnomalyPoint)
_extra_decoder = msgspec.json.Decoder(dict[str, float])
_encode = msgspec.json.encode


def _text(value: Any) -> str:
    return _encode(value).decode()


def _select(base: str, filters: list[tuple[str, str, Any]], *, order: str) -> tuple[str, list[Any]]:
    """``base`` with the filters whose value is set, newest first, ending in ``LIMIT ?``."""
    where = [f"{column} {op} ?" for column, op, value in filters if value is not None]
    args = [value for _, _, value in filters if value is not None]
    sql = base + (" WHERE " + " AND ".join(where) if where else "")
    return f"{sql} ORDER BY {order} LIMIT ?", args


class Session(Protocol):
    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]: ...

    async def execute(self, sql: str, *args: Any) -> None: ...


class SqlAlertStore:
    """Shared logic; subclasses implement :meth:`session` and the schema."""

    url: str

    def session(self) -> contextlib.AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Session]:
        async with self.session() as session:
            yield session

    # Rules.
    async def list_rules(self) -> list[RuleBase]:
        async with self._session() as s:
            rows = await s.fetch("SELECT doc FROM alert_rules ORDER BY created_at, id")
        return [parse_rule(msgspec.json.decode(row[0])) for row in rows]

    async def get_rule(self, rule_id: str) -> RuleBase | None:
        async with self._session() as s:
            rows = await s.fetch("SELECT doc FROM alert_rules WHERE id = ?", rule_id)
        return parse_rule(msgspec.json.decode(rows[0][0])) if rows else None

    async def put_rule(self, rule: RuleBase) -> None:
        async with self._session() as s:
            await s.execute(
                "INSERT INTO alert_rules (id, name, created_at, doc) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
                rule.id,
                rule.name,
                rule.created_at,
                _text(rule.document()),
            )

    async def delete_rule(self, rule_id: str) -> bool:
        async with self._session() as s:
            await s.execute("DELETE FROM alert_states WHERE rule_id = ?", rule_id)
            rows = await s.fetch("DELETE FROM alert_rules WHERE id = ? RETURNING id", rule_id)
        return bool(rows)

    # States.
    async def list_states(self, *, rule_id: str | None = None) -> list[AlertState]:
        sql = "SELECT doc, version FROM alert_states"
        args: list[Any] = []
        if rule_id is not None:
            sql += " WHERE rule_id = ?"
            args.append(rule_id)
        async with self._session() as s:
            rows = await s.fetch(sql + " ORDER BY rule_id, service", *args)
        states = []
        for doc, version in rows:
            state = _state_decoder.decode(doc)
            state.version = int(version)
            states.append(state)
        return states

    async def compare_and_set(
        self, state: AlertState, *, expected_version: int
    ) -> AlertState | None:
        async with self._session() as s:
            return await self._cas(s, state, expected_version)

    async def commit(
        self, changes: list[tuple[AlertState, int]], outcome: Outcome
    ) -> tuple[list[AlertState | None], list[Delivery]]:
        async with self._session() as s:
            stored = [await self._cas(s, state, version) for state, version in changes]
            history, deliveries = outcome(stored)
            for entry in history:
                await self._insert_history(s, entry)
            for delivery in deliveries:
                delivery.id = await self._insert_delivery(s, delivery)
        return stored, deliveries

    @staticmethod
    async def _cas(s: Session, state: AlertState, expected_version: int) -> AlertState | None:
        stored = msgspec.structs.replace(state, version=expected_version + 1)
        doc = _text(stored)
        if expected_version == 0:
            rows = await s.fetch(
                "INSERT INTO alert_states (rule_id, service, version, status, updated_at, doc)"
                " VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (rule_id, service) DO NOTHING"
                " RETURNING version",
                state.rule_id,
                state.service,
                state.status,
                state.updated_at,
                doc,
            )
        else:
            rows = await s.fetch(
                "UPDATE alert_states SET version = version + 1, status = ?, updated_at = ?,"
                " doc = ? WHERE rule_id = ? AND service = ? AND version = ? RETURNING version",
                state.status,
                state.updated_at,
                doc,
                state.rule_id,
                state.service,
                expected_version,
            )
        return stored if rows else None

    # History.
    async def add_history(self, entries: list[HistoryEntry]) -> None:
        if not entries:
            return
        async with self._session() as s:
            for entry in entries:
                await self._insert_history(s, entry)

    @staticmethod
    async def _insert_history(s: Session, entry: HistoryEntry) -> None:
        await s.execute(
            "INSERT INTO alert_history (at, rule_id, service, doc) VALUES (?, ?, ?, ?)",
            entry.at,
            entry.rule_id,
            entry.service,
            _text(entry),
        )

    async def history(
        self,
        *,
        start: float | None = None,
        end: float | None = None,
        service: str | None = None,
        rule_id: str | None = None,
        limit: int = 500,
    ) -> list[HistoryEntry]:
        sql, args = _select(
            "SELECT id, doc FROM alert_history",
            [
                ("at", ">=", start),
                ("at", "<", end),
                ("service", "=", service),
                ("rule_id", "=", rule_id),
            ],
            order="at DESC, id DESC",
        )
        async with self._session() as s:
            rows = await s.fetch(sql, *args, limit)
        return [_with_id(_history_decoder, row_id, doc) for row_id, doc in rows]

    # Silences.
    async def list_silences(self) -> list[Silence]:
        async with self._session() as s:
            rows = await s.fetch("SELECT doc FROM alert_silences ORDER BY starts_at, id")
        return [Silence.model_validate_json(row[0]) for row in rows]

    async def get_silence(self, silence_id: str) -> Silence | None:
        async with self._session() as s:
            rows = await s.fetch("SELECT doc FROM alert_silences WHERE id = ?", silence_id)
        return Silence.model_validate_json(rows[0][0]) if rows else None

    async def put_silence(self, silence: Silence) -> None:
        async with self._session() as s:
            await s.execute(
                "INSERT INTO alert_silences (id, starts_at, ends_at, doc) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET starts_at = excluded.starts_at,"
                " ends_at = excluded.ends_at, doc = excluded.doc",
                silence.id,
                silence.starts_at,
                silence.ends_at,
                silence.model_dump_json(),
            )

    async def delete_silence(self, silence_id: str) -> bool:
        async with self._session() as s:
            rows = await s.fetch("DELETE FROM alert_silences WHERE id = ? RETURNING id", silence_id)
        return bool(rows)

    # Deliveries.
    async def add_delivery(self, delivery: Delivery) -> int:
        async with self._session() as s:
            return await self._insert_delivery(s, delivery)

    @staticmethod
    async def _insert_delivery(s: Session, delivery: Delivery) -> int:
        rows = await s.fetch(
            "INSERT INTO alert_deliveries (created_at, channel, status, claimed_until, doc)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            delivery.created_at,
            delivery.channel,
            delivery.status,
            delivery.claimed_until,
            _text(msgspec.structs.replace(delivery, id=None)),
        )
        return int(rows[0][0])

    async def update_delivery(self, delivery: Delivery) -> None:
        if delivery.id is None:
            raise ValueError("the delivery has no id")
        async with self._session() as s:
            await s.execute(
                "UPDATE alert_deliveries SET status = ?, claimed_until = ?, doc = ? WHERE id = ?",
                delivery.status,
                delivery.claimed_until,
                _text(msgspec.structs.replace(delivery, id=None)),
                delivery.id,
            )

    async def claim_deliveries(
        self, *, channel: str, now: float, until: float, limit: int
    ) -> list[Delivery]:
        claimed = []
        async with self._session() as s:
            rows = await s.fetch(
                "SELECT id, claimed_until, doc FROM alert_deliveries WHERE status = 'pending'"
                " AND channel = ? AND claimed_until <= ? ORDER BY id LIMIT ?",
                channel,
                now,
                limit,
            )
            for row_id, previous, doc in rows:
                # Conditional on the claim read: with concurrent claimers one wins.
                taken = await s.fetch(
                    "UPDATE alert_deliveries SET claimed_until = ?"
                    " WHERE id = ? AND claimed_until = ? AND status = 'pending' RETURNING id",
                    until,
                    row_id,
                    previous,
                )
                if taken:
                    delivery = _with_id(_delivery_decoder, row_id, doc)
                    delivery.claimed_until = until
                    claimed.append(delivery)
        return claimed

    async def deliveries(
        self, *, channel: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        sql, args = _select(
            "SELECT id, doc FROM alert_deliveries",
            [("channel", "=", channel), ("status", "=", status)],
            order="created_at DESC, id DESC",
        )
        async with self._session() as s:
            rows = await s.fetch(sql, *args, limit)
        return [_with_id(_delivery_decoder, row_id, doc) for row_id, doc in rows]

    # Channels.
    async def channel_statuses(self) -> list[ChannelStatus]:
        async with self._session() as s:
            rows = await s.fetch("SELECT doc FROM alert_channels ORDER BY name")
        return [_channel_decoder.decode(row[0]) for row in rows]

    async def _load_channel(self, s: Session, name: str) -> ChannelStatus:
        # The no-op upsert takes the row lock (PostgreSQL) before the read, so two
        # processes counting failures at once never lose one.
        await s.execute(
            "INSERT INTO alert_channels (name, doc) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET name = excluded.name",
            name,
            _text(ChannelStatus(name=name)),
        )
        rows = await s.fetch("SELECT doc FROM alert_channels WHERE name = ?", name)
        return _channel_decoder.decode(rows[0][0])

    async def _save_channel(self, s: Session, status: ChannelStatus) -> None:
        await s.execute(
            "UPDATE alert_channels SET doc = ? WHERE name = ?", _text(status), status.name
        )

    async def record_channel_result(
        self, name: str, *, ok: bool, error: str, now: float, disable_after: int
    ) -> ChannelStatus:
        async with self._session() as s:
            status = await self._load_channel(s, name)
            if ok:
                status.consecutive_failures = 0
                status.last_success_at = now
            else:
                status.consecutive_failures += 1
                status.last_failure_at = now
                status.last_error = error
                if (
                    status.enabled
                    and disable_after
                    and status.consecutive_failures >= disable_after
                ):
                    status.enabled = False
                    status.disabled_at = now
                    status.disabled_reason = (
                        f"disabled after {status.consecutive_failures} consecutive failed "
                        f"deliveries; last error: {error}"
                    )
            await self._save_channel(s, status)
        return status

    async def set_channel_enabled(
        self, name: str, *, enabled: bool, reason: str, now: float
    ) -> ChannelStatus:
        async with self._session() as s:
            status = await self._load_channel(s, name)
            status.enabled = enabled
            if enabled:
                status.consecutive_failures = 0
                status.disabled_reason = ""
                status.disabled_at = None
            else:
                status.disabled_reason = reason
                status.disabled_at = now
            await self._save_channel(s, status)
        return status

    async def prune(self, *, before: float) -> int:
        async with self._session() as s:
            history = await s.fetch("DELETE FROM alert_history WHERE at < ? RETURNING id", before)
            sent = await s.fetch(
                "DELETE FROM alert_deliveries WHERE created_at < ? RETURNING id", before
            )
        return len(history) + len(sent)

    # Leases.
    async def acquire_lease(self, name: str, *, holder: str, now: float, until: float) -> bool:
        async with self._session() as s:
            rows = await s.fetch(
                "INSERT INTO alert_leases (name, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at"
                " WHERE alert_leases.holder = excluded.holder OR alert_leases.expires_at <= ?"
                " RETURNING holder",
                name,
                holder,
                until,
                now,
            )
        return bool(rows)

    async def release_lease(self, name: str, *, holder: str) -> None:
        async with self._session() as s:
            await s.execute("DELETE FROM alert_leases WHERE name = ? AND holder = ?", name, holder)

    # Anomaly detection.
    async def load_detectors(self) -> list[DetectorRecord]:
        async with self._session() as s:
            rows = await s.fetch(
                "SELECT service, metric, updated_at, state, extra FROM alert_anomaly_detectors"
                " ORDER BY service, metric"
            )
        return [
            DetectorRecord(
                service=service,
                metric=metric,
                updated_at=float(updated_at),
                state=bytes(state),
                extra=_extra_decoder.decode(extra),
            )
            for service, metric, updated_at, state, extra in rows
        ]

    async def save_detectors(self, records: list[DetectorRecord]) -> None:
        if not records:
            return
        async with self._session() as s:
            for record in records:
                await s.execute(
                    "INSERT INTO alert_anomaly_detectors"
                    " (service, metric, updated_at, state, extra) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (service, metric) DO UPDATE SET"
                    " updated_at = excluded.updated_at, state = excluded.state,"
                    " extra = excluded.extra",
                    record.service,
                    record.metric,
                    record.updated_at,
                    record.state,
                    _text(record.extra),
                )

    async def delete_detectors(self, keys: list[tuple[str, str]]) -> None:
        async with self._session() as s:
            for service, metric in keys:
                await s.execute(
                    "DELETE FROM alert_anomaly_detectors WHERE service = ? AND metric = ?",
                    service,
                    metric,
                )

    async def add_anomaly_points(self, points: list[AnomalyPoint]) -> None:
        if not points:
            return
        async with self._session() as s:
            for point in points:
                await s.execute(
                    "INSERT INTO alert_anomaly_points (service, metric, at, doc)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (service, metric, at) DO NOTHING",
                    point.service,
                    point.metric,
                    point.at,
                    _text(point),
                )

    async def anomaly_points(
        self,
        *,
        start: float,
        end: float,
        service: str | None = None,
        metric: str | None = None,
        limit: int = 100_000,
    ) -> list[AnomalyPoint]:
        sql = "SELECT doc FROM alert_anomaly_points WHERE at >= ? AND at < ?"
        args: list[Any] = [start, end]
        for column, value in (("service", service), ("metric", metric)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        sql += " ORDER BY at, service, metric LIMIT ?"
        async with self._session() as s:
            rows = await s.fetch(sql, *args, limit)
        return [_point_decoder.decode(row[0]) for row in rows]

    async def prune_anomaly_points(self, *, before: float) -> int:
        async with self._session() as s:
            rows = await s.fetch(
                "DELETE FROM alert_anomaly_points WHERE at < ? RETURNING at", before
            )
        return len(rows)
