"""Stored notification channels behave the same on SQLite and PostgreSQL, and every
dispatcher sharing the store follows them."""

from __future__ import annotations

from typing import Any

import pytest

from modelmonitor.alerts.dispatch import Dispatcher
from modelmonitor.alerts.runtime_channels import (
    ChannelConflict,
    ChannelFieldError,
    ChannelNotFound,
    RuntimeChannels,
    StoredChannel,
)
from modelmonitor.sealing import Sealer


def webhook(name: str, url: str) -> StoredChannel:
    return StoredChannel(
        name=name,
        type="webhook",
        settings={"url": url, "secret": "k3y", "allow_private": True},
        updated_at=1.0,
    )


async def test_stored_channels_reach_every_dispatcher(alert_store: Any) -> None:
    api_side = Dispatcher(channels={}, store=alert_store)
    worker_side = Dispatcher(channels={}, store=alert_store)
    sealer = Sealer(b"shared secret")
    api = RuntimeChannels(alert_store, dispatcher=api_side, declared=["declared"], sealer=sealer)
    worker = RuntimeChannels(
        alert_store, dispatcher=worker_side, declared=["declared"], sealer=sealer
    )
    await api_side.start()
    await worker_side.start()
    try:
        await api.create(webhook("pager", "http://127.0.0.1:9/one"))
        assert "pager" in api_side.channels  # applied at once where it was written
        assert "pager" not in worker_side.channels
        await worker.sync()  # what the worker's poll does
        assert worker_side.channels["pager"].config.url == "http://127.0.0.1:9/one"
        assert [c.name for c in await worker.stored()] == ["pager"]
        assert (await worker.get("pager")).settings["secret"] == "k3y"
        # At rest the document is sealed: neither the secret nor the URL is readable.
        async with alert_store.session() as session:
            (row,) = await session.fetch("SELECT doc FROM alert_channel_configs")
        assert row[0].startswith("sealed:")
        assert "k3y" not in row[0] and "127.0.0.1" not in row[0]
        # Another key cannot open it: the channel is left out, not half-read.
        stranger = RuntimeChannels(
            alert_store, dispatcher=worker_side, declared=[], sealer=Sealer(b"other")
        )
        assert await stranger.stored() == []

        await api.replace(webhook("pager", "http://127.0.0.1:9/two"))
        await worker.sync()
        assert worker_side.channels["pager"].config.url == "http://127.0.0.1:9/two"

        with pytest.raises(ChannelConflict, match="exists already"):
            await api.create(webhook("pager", "http://127.0.0.1:9/three"))
        for change in (
            api.create(webhook("declared", "http://127.0.0.1:9/")),
            api.replace(webhook("declared", "http://127.0.0.1:9/")),
            api.delete("declared"),
        ):
            with pytest.raises(ChannelConflict, match="configuration file"):
                await change
        with pytest.raises(ChannelFieldError) as bad:
            await api.create(webhook("other", "ftp://nowhere"))
        assert bad.value.details[0]["loc"] == ["settings", "url"]
        with pytest.raises(ChannelFieldError) as bad_name:
            await api.create(webhook("no spaces", "http://127.0.0.1:9/"))
        assert bad_name.value.details[0]["loc"] == ["name"]

        await api.delete("pager")
        await worker.sync()
        assert "pager" not in worker_side.channels and "pager" not in api_side.channels
        assert await worker.stored() == []
        with pytest.raises(ChannelNotFound):
            await api.delete("pager")
        with pytest.raises(ChannelNotFound):
            await api.replace(webhook("pager", "http://127.0.0.1:9/"))
    finally:
        await api_side.stop()
        await worker_side.stop()
