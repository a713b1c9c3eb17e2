"""The service catalog behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from modelmonitor.catalog import (
    CatalogConflict,
    CatalogError,
    CatalogNotFound,
    ServiceCatalog,
    ServiceSource,
)
from modelmonitor.settings import ServiceConfig

DECLARED = ServiceConfig(name="iris", upstream="http://127.0.0.1:8080")


async def test_add_change_remove_and_the_declared_stay_read_only(alert_store: Any) -> None:
    catalog = ServiceCatalog(alert_store, declared=[DECLARED])
    chat = ServiceConfig(name="chat", upstream="http://127.0.0.1:8001", path_prefix="/chat")
    created = await catalog.create(chat, now=10.0)
    assert created.source is ServiceSource.API and not created.read_only
    assert created.config["upstream"] == "http://127.0.0.1:8001"
    assert [s.name for s in await catalog.services()] == ["iris", "chat"]
    # A second process sees the same catalog.
    assert [e.name for e in await ServiceCatalog(alert_store).entries()] == ["chat"]

    moved = chat.model_copy(update={"upstream": "http://127.0.0.1:8002"})
    changed = await catalog.replace("chat", moved, now=20.0)
    assert changed.config["upstream"] == "http://127.0.0.1:8002" and changed.updated_at == 20.0

    entries = {entry.name: entry for entry in await catalog.entries()}
    assert entries["iris"].read_only and entries["iris"].source is ServiceSource.CONFIG

    with pytest.raises(CatalogConflict, match="configuration file"):
        await catalog.replace("iris", DECLARED, now=30.0)
    with pytest.raises(CatalogConflict, match="configuration file"):
        await catalog.delete("iris")
    with pytest.raises(CatalogConflict, match="exists already"):
        await catalog.create(chat, now=30.0)
    with pytest.raises(CatalogError) as wrong_name:
        await catalog.replace("chat", chat.model_copy(update={"name": "other"}), now=30.0)
    assert wrong_name.value.field == "name"

    removed = await catalog.delete("chat")
    assert removed.name == "chat"
    assert [s.name for s in await catalog.services()] == ["iris"]
    with pytest.raises(CatalogNotFound):
        await catalog.delete("chat")
    with pytest.raises(CatalogNotFound):
        await catalog.replace("chat", chat, now=40.0)


async def test_services_that_cannot_be_served_together_are_refused(alert_store: Any) -> None:
    catalog = ServiceCatalog(alert_store, declared=[DECLARED])
    # iris already takes the main port without a prefix.
    with pytest.raises(CatalogConflict, match="main listen port"):
        await catalog.create(ServiceConfig(name="b", upstream="http://127.0.0.1:1"), now=1.0)
    await catalog.create(
        ServiceConfig(name="c", upstream="http://127.0.0.1:1", path_prefix="/c"), now=1.0
    )
    with pytest.raises(CatalogConflict, match="path_prefix /c"):
        await catalog.create(
            ServiceConfig(name="d", upstream="http://127.0.0.1:1", path_prefix="/c"), now=2.0
        )
    assert [s.name for s in await catalog.services()] == ["iris", "c"]
