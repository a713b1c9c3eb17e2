"""The service catalog: monitored services added through the API, kept in the store.

Services declared in the YAML file or on the command line stay the source for what they
declare (read-only here); the catalog holds the ones users add, change and remove at run
time. Proxies read it in the background and apply it without a restart
(:meth:`modelmonitor.proxy.ProxyServer.apply`). Stored as JSON documents in
``service_catalog`` next to the alert tables, through the alert store's portable SQL
session, so SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
from pydantic import ValidationError

from modelmonitor.settings import ServiceConfig, check_services

__all__ = [
    "CatalogConflict",
    "CatalogEntry",
    "CatalogError",
    "CatalogNotFound",
    "ServiceCatalog",
    "ServiceSource",
    "combined",
]


class ServiceSource(enum.StrEnum):
    """Where a service is declared: the config file (read-only at run time) or the API."""

    CONFIG = "config"
    API = "api"


class CatalogError(Exception):
    """A change the catalog refuses; ``field`` names what is wrong (for a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class CatalogConflict(Exception):
    """The change clashes with what exists (a name taken, a config-declared service)."""


class CatalogNotFound(Exception):
    pass


class CatalogEntry(msgspec.Struct, kw_only=True):
    name: str
    source: ServiceSource
    read_only: bool
    #: The service's configuration as JSON (``ServiceConfig``'s fields).
    config: dict[str, Any]
    updated_at: float | None = None


class _Session(Protocol):
    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]: ...

    async def execute(self, sql: str, *args: Any) -> None: ...


class _SessionStore(Protocol):
    def session(self) -> contextlib.AbstractAsyncContextManager[_Session]: ...


def combined(
    declared: Sequence[ServiceConfig], stored: Sequence[ServiceConfig]
) -> list[ServiceConfig]:
    """The services a proxy serves: the declared ones, then the stored ones whose names
    the declared ones do not take (a stored copy never overrides the config file)."""
    names = {service.name for service in declared}
    return [*declared, *(service for service in stored if service.name not in names)]


class ServiceCatalog:
    """Services added at run time, over any store with a portable SQL ``session()``."""

    def __init__(self, store: _SessionStore, *, declared: Sequence[ServiceConfig] = ()) -> None:
        self._store = store
        self.declared = list(declared)

    async def stored(self) -> list[tuple[ServiceConfig, float]]:
        """Every stored service (name order) and when it last changed."""
        async with self._store.session() as session:
            rows = await session.fetch("SELECT doc, updated_at FROM service_catalog ORDER BY name")
        found: list[tuple[ServiceConfig, float]] = []
        for doc, updated_at in rows:
            try:
                found.append((ServiceConfig.model_validate_json(doc), float(updated_at)))
            except ValidationError:
                continue  # written by a newer version with fields this one lacks
        return found

    async def services(self) -> list[ServiceConfig]:
        """What a proxy should serve now: declared services, then stored ones."""
        return combined(self.declared, [config for config, _ in await self.stored()])

    async def entries(self) -> list[CatalogEntry]:
        declared = [
            CatalogEntry(
                name=config.name,
                source=ServiceSource.CONFIG,
                read_only=True,
                config=config.model_dump(mode="json"),
            )
            for config in self.declared
        ]
        names = {entry.name for entry in declared}
        stored = [
            CatalogEntry(
                name=config.name,
                source=ServiceSource.API,
                read_only=False,
                config=config.model_dump(mode="json"),
                updated_at=updated_at,
            )
            for config, updated_at in await self.stored()
            if config.name not in names
        ]
        return declared + stored

    async def get(self, name: str) -> CatalogEntry:
        for entry in await self.entries():
            if entry.name == name:
                return entry
        raise CatalogNotFound(f"no service named {name!r}")

    def _writable(self, name: str) -> None:
        if any(config.name == name for config in self.declared):
            raise CatalogConflict(
                f"service {name!r} is declared in the configuration file: change it there"
            )

    async def _check_together(self, config: ServiceConfig, *, replacing: str | None) -> None:
        others = [s for s in await self.services() if s.name not in (config.name, replacing)]
        try:
            check_services([*others, config])
        except ValueError as exc:
            raise CatalogConflict(str(exc)) from None

    async def create(self, config: ServiceConfig, *, now: float) -> CatalogEntry:
        self._writable(config.name)
        if any(stored.name == config.name for stored, _ in await self.stored()):
            raise CatalogConflict(f"a service named {config.name!r} exists already")
        await self._check_together(config, replacing=None)
        async with self._store.session() as session:
            await session.execute(
                "INSERT INTO service_catalog (name, doc, updated_at) VALUES (?, ?, ?)",
                config.name,
                config.model_dump_json(),
                now,
            )
        return await self.get(config.name)

    async def replace(self, name: str, config: ServiceConfig, *, now: float) -> CatalogEntry:
        self._writable(name)
        if config.name != name:
            raise CatalogError("name", "the name in the body must match the one in the path")
        if not any(stored.name == name for stored, _ in await self.stored()):
            raise CatalogNotFound(f"no service named {name!r}")
        await self._check_together(config, replacing=name)
        async with self._store.session() as session:
            await session.execute(
                "UPDATE service_catalog SET doc = ?, updated_at = ? WHERE name = ?",
                config.model_dump_json(),
                now,
                name,
            )
        return await self.get(name)

    async def delete(self, name: str) -> CatalogEntry:
        self._writable(name)
        entry = await self.get(name)
        async with self._store.session() as session:
            await session.execute("DELETE FROM service_catalog WHERE name = ?", name)
        return entry
