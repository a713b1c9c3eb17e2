"""``WS /ws/metrics``: the live snapshot pushed to every subscriber each interval.

One task per app reads the live-state feed (in Redis mode, the snapshots the
leader publishes), enriches each snapshot once through the read model and encodes
it once per distinct view; every client has a one-slot mailbox, so a slow client
skips snapshots instead of delaying the others or growing a queue.

Views (query parameters, or a ``{"type": "subscribe", ...}`` message to switch
without reconnecting):

- ``?view=full`` (the default): every service, every window and route;
- ``?view=overview``: what the overview page shows of every service
  (``{"type": "overview", "data": OverviewSnapshot}``);
- ``?service=NAME``: that one service, complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from modelmonitor._tasks import Supervisor, TaskHealth
from modelmonitor.api._openapi import register_schemas
from modelmonitor.api.deps import ApiContext
from modelmonitor.live.base import LiveSnapshot
from modelmonitor.query.snapshots import FeedView, OverviewSnapshot, overview, service_only

__all__ = ["SnapshotHub", "Subscription", "router", "subscription"]

log = logging.getLogger("modelmonitor.api.ws")
router = APIRouter(tags=["live"])
# The feed's message bodies, for the dashboard's types generated from /openapi.json.
register_schemas(LiveSnapshot, OverviewSnapshot)
_encoder = msgspec.json.Encoder()


#: A client's subscription: the view, and the service of a per-service view.
Subscription = tuple[FeedView, str | None]


def subscription(view: str | None, service: str | None) -> Subscription:
    """The subscription for these parameters; ValueError names what is wrong."""
    if service is not None:
        if view not in (None, FeedView.SERVICE.value):
            raise ValueError("service= goes with view=service (or no view)")
        return FeedView.SERVICE, service
    try:
        chosen = FeedView(view or FeedView.FULL.value)
    except ValueError:
        raise ValueError(f"view must be one of {', '.join(v.value for v in FeedView)}") from None
    if chosen is FeedView.SERVICE:
        raise ValueError("view=service needs service=NAME")
    return chosen, None


class _Client:
    __slots__ = ("mailbox", "subscription")

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.mailbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)

    def offer(self, message: bytes) -> None:
        if self.mailbox.full():
            self.mailbox.get_nowait()
        self.mailbox.put_nowait(message)


class SnapshotHub:
    def __init__(self, context: ApiContext) -> None:
        self._context = context
        self._clients: set[_Client] = set()
        self._supervisor = Supervisor("websocket")

    @property
    def clients(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        self._supervisor.spawn("feed", self._run)

    async def stop(self) -> None:
        await self._supervisor.stop()

    def health(self) -> TaskHealth:
        """The feed loop's health (down: no client gets pushes)."""
        tasks = self._supervisor.health()
        if tasks.status != "ok":
            return tasks
        return TaskHealth(status="ok", detail=f"{len(self._clients)} clients")

    def add(self, subscription: Subscription) -> _Client:
        client = _Client(subscription)
        self._clients.add(client)
        return client

    def remove(self, client: _Client) -> None:
        self._clients.discard(client)

    async def _run(self) -> None:
        interval = self._context.settings.ws_interval_seconds
        async for snapshot in self._context.live.updates(interval=interval):
            if not self._clients:
                continue
            enriched = await self._context.read.enrich(snapshot)
            encoded: dict[Subscription, bytes] = {}
            for client in list(self._clients):
                message = encoded.get(client.subscription)
                if message is None:
                    message = encoded[client.subscription] = _encode(enriched, client.subscription)
                client.offer(message)


def _encode(snapshot: LiveSnapshot, subscription: Subscription) -> bytes:
    view, service = subscription
    if view is FeedView.OVERVIEW:
        return _encoder.encode({"type": "overview", "data": overview(snapshot)})
    if view is FeedView.SERVICE and service is not None:
        snapshot = service_only(snapshot, service)
    return _encoder.encode({"type": "snapshot", "data": snapshot})


@router.websocket("/ws/metrics")
async def metrics_feed(
    websocket: WebSocket, service: str | None = None, view: str | None = None
) -> None:
    hub: SnapshotHub = websocket.app.state.hub
    try:
        chosen = subscription(view, service)
    except ValueError as exc:
        # 1008: policy violation, with the reason (a WebSocket has no 4xx body).
        await websocket.close(code=1008, reason=str(exc))
        return
    await websocket.accept()
    client = hub.add(chosen)
    receiver = asyncio.create_task(_receive(websocket, client))
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


class _Subscribe(msgspec.Struct, kw_only=True):
    type: str
    view: str | None = None
    service: str | None = None


_subscribe_decoder = msgspec.json.Decoder(_Subscribe)


async def _receive(websocket: WebSocket, client: _Client) -> None:
    """Read client messages until it disconnects: ``subscribe`` switches the view (the
    next push carries it); anything else gets an ``error`` message naming the problem."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            text = await websocket.receive_text()
            try:
                message = _subscribe_decoder.decode(text)
                if message.type != "subscribe":
                    raise ValueError(f"unknown message type {message.type!r}: use subscribe")
                client.subscription = subscription(message.view, message.service)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                await websocket.send_text(
                    _encoder.encode({"type": "error", "detail": str(exc)}).decode()
                )
