"""Versioned PostgreSQL schema migrations (``storage/migrations/postgres/NNN_name.sql``).

Each file runs once, in version order, inside one transaction that holds an
advisory lock, and is recorded in ``schema_migrations``; so any number of
workers and API replicas may start at the same time.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

import msgspec

__all__ = ["MIGRATION_LOCK", "Migration", "apply_migrations", "load_migrations"]

#: pg_advisory_xact_lock key serialising migrations ("mmmigr" in ASCII).
MIGRATION_LOCK = 0x6D6D6D69677200
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The bundled migrations, in version order."""
    folder = files("modelmonitor.storage").joinpath("migrations/postgres")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {folder}")
    return found


async def apply_migrations(connection: Any) -> list[Migration]:
    """Apply the pending migrations on an asyncpg connection; return those applied."""
    applied: list[Migration] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in await connection.fetch("SELECT version FROM schema_migrations")}
        for migration in load_migrations():
            if migration.version in done:
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration)
    return applied
