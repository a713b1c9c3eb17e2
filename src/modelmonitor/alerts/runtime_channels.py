"""Notification channels configured at run time, kept in the alert store.

Channels declared in the ``notification_channels`` setting stay the source for what
they declare (read-only here); the ones added through the API are stored as JSON
documents in ``alert_channel_configs`` (through the alert store's portable SQL
session, so SQLite and PostgreSQL behave the same), validated with the same
per-type config models as the YAML file. Every process that dispatches polls the
table every few seconds and hands new, changed and removed channels to its
dispatcher, so no restart is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
from pydantic import ValidationError

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.alerts.channels import CHANNEL_TYPES, NotificationChannel
from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.store.sql import Session
from modelmonitor.sealing import Sealer, SealError

__all__ = [
    "ChannelConflict",
    "ChannelFieldError",
    "ChannelNotFound",
    "ChannelSource",
    "RuntimeChannels",
    "StoredChannel",
    "build_channel",
]

log = logging.getLogger("modelmonitor.alerts")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ChannelSource(enum.StrEnum):
    """Where a channel is declared: the config file (read-only at run time) or the API."""

    CONFIG = "config"
    API = "api"


class ChannelFieldError(Exception):
    """A channel configuration the API refuses; ``details`` are FastAPI-shaped problems
    whose ``loc`` is relative to the request body."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details))
        self.details = details


class ChannelConflict(Exception):
    """The change clashes with what exists (a name taken, a config-declared channel)."""


class ChannelNotFound(Exception):
    pass


class StoredChannel(msgspec.Struct, kw_only=True):
    """One stored channel: its name, type and the type's settings (secrets in clear:
    the store is trusted like the config file; answers and logs mask them)."""

    name: str
    type: str
    settings: dict[str, Any]
    updated_at: float = 0.0


def build_channel(name: str, kind: str, settings: dict[str, Any]) -> NotificationChannel[Any]:
    """A channel from a type and its settings; raises :class:`ChannelFieldError` naming
    the field (``["name"]``, ``["type"]``, ``["settings", "url"]``)."""
    if not _NAME.match(name):
        raise ChannelFieldError(
            [
                {
                    "loc": ["name"],
                    "msg": "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
                    "type": "value_error",
                }
            ]
        )
    cls = CHANNEL_TYPES.get(kind)
    if cls is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise ChannelFieldError(
            [{"loc": ["type"], "msg": f"unknown channel type; known: {known}", "type": "enum"}]
        )
    if "type" in settings and settings["type"] != kind:
        raise ChannelFieldError(
            [{"loc": ["settings", "type"], "msg": "must match type", "type": "value_error"}]
        )
    try:
        config = cls.config_model.model_validate({**settings, "type": kind})
    except ValidationError as exc:
        raise ChannelFieldError(
            [
                {
                    "loc": ["settings", *problem["loc"]],
                    "msg": problem["msg"].removeprefix("Value error, "),
                    "type": problem["type"],
                }
                for problem in exc.errors(include_url=False, include_input=False)
            ]
        ) from None
    return cls(name, config)


class _SessionStore(Protocol):
    def session(self) -> contextlib.AbstractAsyncContextManager[Session]: ...


_decoder = msgspec.json.Decoder(StoredChannel)


class RuntimeChannels:
    """Stored channels: reads, changes, and the poll that applies them to a dispatcher."""

    def __init__(
        self,
        store: _SessionStore,
        *,
        dispatcher: Dispatcher,
        declared: Sequence[str],
        sealer: Sealer,
        poll_seconds: float = 2.0,
    ) -> None:
        self._store = store
        #: Seals each stored document: channel credentials never sit in the store in clear.
        self._sealer = sealer
        self._dispatcher = dispatcher
        self.declared = frozenset(declared)
        self._poll_seconds = poll_seconds
        #: name -> the stored document applied to the dispatcher.
        self._applied: dict[str, bytes] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def stored(self) -> list[StoredChannel]:
        async with self._store.session() as session:
            rows = await session.fetch("SELECT doc FROM alert_channel_configs ORDER BY name")
        found = []
        for row in rows:
            try:
                found.append(self._decode(row[0]))
            except SealError as exc:
                log.error("a stored channel cannot be read, not used: %s", exc)
        return found

    async def get(self, name: str) -> StoredChannel:
        async with self._store.session() as session:
            rows = await session.fetch("SELECT doc FROM alert_channel_configs WHERE name = ?", name)
        if not rows:
            raise ChannelNotFound(f"no stored channel named {name!r}")
        return self._decode(rows[0][0])

    def _decode(self, doc: str) -> StoredChannel:
        return _decoder.decode(self._sealer.open(doc))

    def _encode(self, channel: StoredChannel) -> str:
        return self._sealer.seal(msgspec.json.encode(channel))

    def _writable(self, name: str) -> None:
        if name in self.declared:
            raise ChannelConflict(
                f"channel {name!r} is declared in the configuration file: change it there"
            )

    async def create(self, channel: StoredChannel) -> StoredChannel:
        self._writable(channel.name)
        build_channel(channel.name, channel.type, channel.settings)
        async with self._store.session() as session:
            rows = await session.fetch(
                "INSERT INTO alert_channel_configs (name, updated_at, doc) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING RETURNING name",
                channel.name,
                channel.updated_at,
                self._encode(channel),
            )
        if not rows:
            raise ChannelConflict(f"a channel named {channel.name!r} exists already")
        await self.sync()
        return channel

    async def replace(self, channel: StoredChannel) -> StoredChannel:
        self._writable(channel.name)
        build_channel(channel.name, channel.type, channel.settings)
        async with self._store.session() as session:
            rows = await session.fetch(
                "UPDATE alert_channel_configs SET updated_at = ?, doc = ? WHERE name = ?"
                " RETURNING name",
                channel.updated_at,
                self._encode(channel),
                channel.name,
            )
        if not rows:
            raise ChannelNotFound(f"no stored channel named {channel.name!r}")
        await self.sync()
        return channel

    async def delete(self, name: str) -> None:
        self._writable(name)
        async with self._store.session() as session:
            rows = await session.fetch(
                "DELETE FROM alert_channel_configs WHERE name = ? RETURNING name", name
            )
        if not rows:
            raise ChannelNotFound(f"no stored channel named {name!r}")
        await self.sync()

    async def sync(self) -> None:
        """Apply the stored channels to the dispatcher: add new ones, rebuild changed
        ones, drop removed ones. A stored name the config file declares is ignored."""
        async with self._lock:
            wanted: dict[str, tuple[bytes, StoredChannel]] = {}
            for channel in await self.stored():
                if channel.name not in self.declared:
                    wanted[channel.name] = (msgspec.json.encode(channel), channel)
            for name in [n for n in self._applied if n not in wanted]:
                del self._applied[name]
                await self._dispatcher.remove_channel(name)
            for name, (doc, stored) in wanted.items():
                if self._applied.get(name) == doc:
                    continue
                try:
                    built = build_channel(name, stored.type, stored.settings)
                except ChannelFieldError as exc:
                    log.error("stored channel %r is not valid here, not used: %s", name, exc)
                    continue
                self._applied[name] = doc
                await self._dispatcher.put_channel(built)

    async def start(self) -> None:
        await self.sync()
        self._task = asyncio.create_task(self._poll(), name="alerts-channel-configs")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store may be down; retry next round
                log.warning("reading stored notification channels failed: %s", exc)
