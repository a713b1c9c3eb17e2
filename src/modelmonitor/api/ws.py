"""``WS /ws/metrics``: the live snapshot pushed to every subscriber each interval.

One task per app reads the live-state feed and encodes each snapshot once per
distinct filter; every client has a one-slot mailbox, so a slow client skips
snapshots instead of delaying the others or growing a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.api.deps import ApiContext
from modelmonitor.live.base import LiveSnapshot

__all__ = ["SnapshotHub", "router"]

log = logging.getLogger("modelmonitor.api.ws")
router = APIRouter(tags=["live"])
_encoder = msgspec.json.Encoder()


class _Client:
    __slots__ = ("mailbox", "service")

    def __init__(self, service: str | None) -> None:
        self.service = service
        self.mailbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)

    def offer(self, message: bytes) -> None:
        if self.mailbox.full():
            self.mailbox.get_nowait()
        self.mailbox.put_nowait(message)


class SnapshotHub:
    def __init__(self, context: ApiContext) -> None:
        self._context = context
        self._clients: set[_Client] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ws-hub")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])

    def add(self, service: str | None) -> _Client:
        client = _Client(service)
        self._clients.add(client)
        return client

    def remove(self, client: _Client) -> None:
        self._clients.discard(client)

    async def _run(self) -> None:
        from modelmonitor.api.routes.metrics import realtime_snapshot

        interval = self._context.settings.ws_interval_seconds
        async for _ in self._context.live.updates(interval=interval):
            if not self._clients:
                continue
            snapshot = await realtime_snapshot(self._context, None)
            encoded: dict[str | None, bytes] = {}
            for client in list(self._clients):
                message = encoded.get(client.service)
                if message is None:
                    message = encoded[client.service] = _encode(snapshot, client.service)
                client.offer(message)


def _encode(snapshot: LiveSnapshot, service: str | None) -> bytes:
    if service is not None:
        snapshot = msgspec.structs.replace(
            snapshot, services=[s for s in snapshot.services if s.service == service]
        )
    return _encoder.encode({"type": "snapshot", "data": snapshot})


@router.websocket("/ws/metrics")
async def metrics_feed(websocket: WebSocket, service: str | None = None) -> None:
    hub: SnapshotHub = websocket.app.state.hub
    await websocket.accept()
    client = hub.add(service)
    receiver = asyncio.create_task(_drain(websocket))
    try:
        while not receiver.done():
            getter = asyncio.ensure_future(client.mailbox.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await websocket.send_text(getter.result().decode())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.remove(client)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await receiver


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
