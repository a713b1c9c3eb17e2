"""ProxyServer: listeners, service routing and upstream timeouts around the forwarding core.

Services with their own ``listen`` get their own socket; the rest share the main
``listen`` port by ``path_prefix`` (at most one without a prefix takes the rest).
The request path only appends events to the :class:`CaptureBuffer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Sequence
from time import monotonic
from typing import TYPE_CHECKING

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.events import EventIdFactory
from modelmonitor.proxy.capture import CaptureBuffer
from modelmonitor.proxy.client import ClientConnection
from modelmonitor.proxy.edge import EdgeCounters, Refusal
from modelmonitor.proxy.sampling import SampleSink
from modelmonitor.proxy.service import Listener, Service
from modelmonitor.proxy.upstream import UpstreamConnection
from modelmonitor.settings import ProxyLimits, ServiceConfig, parse_host_port

if TYPE_CHECKING:
    from modelmonitor.protocols.awareness import ModelAwareness

__all__ = ["ProxyServer"]

log = logging.getLogger(__name__)


class ProxyServer:
    """HTTP/1.1 reverse proxy on asyncio protocols with httptools parsing.

    Run it on uvloop for speed (``uvloop.run`` or the uvloop event loop policy);
    it works on the default loop too.
    """

    def __init__(
        self,
        services: Sequence[ServiceConfig],
        *,
        listen: str,
        capture: CaptureBuffer,
        ids: EventIdFactory | None = None,
        max_idle_per_service: int = 512,
        backlog: int = 2048,
        limits: ProxyLimits | None = None,
        tls: ssl.SSLContext | None = None,
        models: ModelAwareness | None = None,
    ) -> None:
        self.capture = capture
        #: Server-side TLS for every listener (clients use https://), or None.
        self.tls = tls
        self.limits = limits = limits or ProxyLimits()
        #: Requests and responses refused at the edge, per kind (all listeners).
        self.edge = EdgeCounters()
        self._ids = ids or EventIdFactory()
        self._backlog = backlog
        if models is None:
            from modelmonitor.protocols.awareness import ModelAwareness  # imports the proxy

            models = ModelAwareness()
        self._models = models
        self._listen = listen
        self._max_idle = max_idle_per_service
        self.services = [self._new_service(config) for config in services]
        #: Services replaced or removed at run time whose requests may still be in flight.
        self._retired: list[Service] = []
        self._plan: list[tuple[str, int, Listener]] = []
        #: (own port?, address) -> its listener, and the server of each started listener.
        self._listeners: dict[tuple[bool, str], Listener] = {}
        self._server_of: dict[int, asyncio.Server] = {}
        for key, group in self._groups(self.services).items():
            own, _ = key
            if not own and not group and self.services:
                continue  # every service has its own port: no main listener needed
            self._add_listener(key, group)
        self._servers: list[asyncio.Server] = []
        self._bound: list[tuple[str, int]] = []
        self._by_service: dict[str, tuple[str, int]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def _new_service(self, config: ServiceConfig) -> Service:
        service = Service(config, max_idle=self._max_idle, limits=self.limits, models=self._models)
        if config.sampling.enabled:
            if self.capture.samples is None:
                self.capture.samples = SampleSink()
            service.sample_into(self.capture.samples)
        return service

    def _groups(self, services: list[Service]) -> dict[tuple[bool, str], list[Service]]:
        """The main port, then one group per distinct own ``listen`` (port 0 included)."""
        groups: dict[tuple[bool, str], list[Service]] = {(False, self._listen): []}
        for service in services:
            own_listen = service.config.listen
            key = (own_listen is not None, own_listen or self._listen)
            groups.setdefault(key, []).append(service)
        return groups

    def _add_listener(self, key: tuple[bool, str], group: list[Service]) -> Listener:
        host, port = parse_host_port(key[1])
        listener = Listener(
            group,
            capture=self.capture,
            ids=self._ids,
            scheme=b"https" if self.tls is not None else b"http",
            limits=self.limits,
            edge=self.edge,
        )
        self._plan.append((host, port, listener))
        self._listeners[key] = listener
        return listener

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind every listener; raises ``OSError`` when an address is taken."""
        loop = asyncio.get_running_loop()
        try:
            for host, port, listener in self._plan:
                await self._serve(loop, host, port, listener)
        except BaseException:
            await self.stop(grace=0)
            raise
        self._sweeper = loop.create_task(self._sweep(), name="modelmonitor-proxy-timeouts")

    async def _serve(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, listener: Listener
    ) -> None:
        server = await loop.create_server(
            functools.partial(ClientConnection, listener),
            host,
            port,
            reuse_address=True,
            backlog=self._backlog,
            ssl=self.tls,
        )
        self._servers.append(server)
        self._server_of[id(listener)] = server
        bound = server.sockets[0].getsockname()
        address = (str(bound[0]), int(bound[1]))
        self._bound.append(address)
        names = [service.name for service in listener.services]
        for name in names:
            self._by_service[name] = address
        log.info("proxy listening on %s for %s", _format(address), ", ".join(names) or "-")

    async def apply(self, configs: Sequence[ServiceConfig]) -> None:
        """Serve exactly these services from now on, without a restart.

        Unchanged services keep their upstream pools; a changed one gets a new
        :class:`Service` (requests in flight finish on the old one); a new own port is
        bound (``OSError`` when taken, and nothing changes); a port left without
        services stops accepting, and its connections close after their current
        response. Runs on the proxy's loop, off the request path.
        """
        current = {service.name: service for service in self.services}
        kept: set[str] = set()
        services: list[Service] = []
        for config in configs:
            old = current.get(config.name)
            if old is not None and old.config == config:
                services.append(old)
                kept.add(config.name)
            else:
                services.append(self._new_service(config))
        groups = self._groups(services)
        loop = asyncio.get_running_loop()
        for key, group in groups.items():
            if key not in self._listeners and (group or not key[0]):
                listener = self._add_listener(key, group)
                host, port, _ = self._plan[-1]
                try:
                    await self._serve(loop, host, port, listener)
                except OSError:
                    self._plan.pop()
                    del self._listeners[key]
                    raise
        for key, listener in list(self._listeners.items()):
            group = groups.get(key, [])
            listener.assign(group)
            if not group and key[0]:
                self._close_listener(key, listener)
        self.services = services
        self._by_service = {}
        for _, _, listener in self._plan:
            server = self._server_of.get(id(listener))
            if server is not None and server.sockets:
                bound = server.sockets[0].getsockname()
                for service in listener.services:
                    self._by_service[service.name] = (str(bound[0]), int(bound[1]))
        for name, service in current.items():
            if name not in kept:
                service.upstream.close()  # idle connections now, busy ones when done
                self._retired.append(service)
        log.info("proxy now serves %s", ", ".join(s.name for s in services) or "nothing")

    def _close_listener(self, key: tuple[bool, str], listener: Listener) -> None:
        server = self._server_of.pop(id(listener), None)
        if server is not None:
            server.close()
            self._servers.remove(server)
        listener.draining = True
        for connection in list(listener.connections):
            if connection.current is None:
                connection.close()
        del self._listeners[key]
        # It stays in the plan until its connections are gone, so the sweeper sees them.

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish for ``grace`` seconds, close."""
        for server in self._servers:
            server.close()
        listeners = [listener for _, _, listener in self._plan]
        for listener in listeners:
            listener.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline:
            for listener in listeners:
                for connection in list(listener.connections):
                    if connection.current is None:
                        connection.close()
                    if connection.linger_until:
                        connection.transport.abort()
            if not any(listener.connections for listener in listeners):
                break
            await asyncio.sleep(0.02)
        cut = 0
        for listener in listeners:
            for connection in list(listener.connections):
                if not connection.closed:
                    cut += connection.current is not None
                    connection.closed = True
                    connection.transport.abort()
        if cut:
            log.warning("proxy stopped with %d requests still in flight (cut off)", cut)
        for listener in listeners:
            for tunnel in list(listener.tunnels):
                tunnel.close()
        for service in (*self.services, *self._retired):
            service.upstream.close()
            for upstream in list(service.upstream.connections):
                upstream.close()
        await cancel_and_wait([self._sweeper])
        self._sweeper = None
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await server.wait_closed()
        self._servers.clear()

    # -- introspection -----------------------------------------------------

    @property
    def scheme(self) -> str:
        """``https`` when the listeners speak TLS, else ``http``."""
        return "https" if self.tls is not None else "http"

    @property
    def addresses(self) -> dict[str, str]:
        """``{service: "host:port"}`` where each service is reachable (real port when 0)."""
        return {name: _format(address) for name, address in self._by_service.items()}

    @property
    def bound(self) -> list[tuple[str, int]]:
        """(host, port) of every listener, in start order."""
        return list(self._bound)

    @property
    def open_tunnels(self) -> int:
        """Upgraded connections (WebSocket) being relayed now."""
        return sum(len(listener.tunnels) for _, _, listener in self._plan)

    @property
    def unrouted_total(self) -> int:
        """Requests answered 404 because no service's path prefix matched them."""
        return sum(listener.unrouted_total for _, _, listener in self._plan)

    def in_flight(self) -> dict[str, int]:
        """Requests being proxied now, per service."""
        return {service.name: service.in_flight for service in self.services}

    def refusals(self) -> dict[str, int]:
        """Requests and responses refused at the edge since start, per kind."""
        return self.edge.as_dict()

    def routes(self) -> dict[str, tuple[int, int]]:
        """Per service: distinct routes so far, and requests folded into ``{other}``."""
        return {s.name: (s.routes.routes, s.routes.folded) for s in self.services}

    def edge_counts(self) -> dict[str, int]:
        """Refusals per kind plus ``routes_folded`` (requests past a service's route
        cap): what the proxy reports with its stats."""
        counts = self.edge.as_dict()
        folded = sum(service.routes.folded for service in self.services)
        if folded:
            counts["routes_folded"] = folded
        return counts

    def health_detail(self) -> str:
        """One line for the proxy's health: tunnels, unrouted, refusals, route caps."""
        refused = self.refusals()
        parts = [f"{self.open_tunnels} open tunnels", f"{self.unrouted_total} unrouted (404)"]
        if refused:
            kinds = ", ".join(f"{kind} {count}" for kind, count in refused.items())
            parts.append(f"{sum(refused.values())} refused at the edge ({kinds})")
        for name, (routes, folded) in self.routes().items():
            if folded:
                cap = self.limits.max_routes_per_service
                parts.append(f"{name}: {routes}/{cap} routes, {folded} requests in {{other}}")
        return ", ".join(parts)

    # -- timeouts ----------------------------------------------------------
    # One coarse timer for every connection keeps timers off the hot path: the
    # connections count their reads and writes (or stamp the rare events), and
    # the sweeper compares.

    async def _sweep(self) -> None:
        limits = self.limits
        timeouts = [s.timeout for s in self.services if s.timeout > 0]
        timeouts += (limits.idle_timeout_seconds, limits.header_timeout_seconds)
        timeouts.append(limits.write_timeout_seconds)
        interval = min(1.0, max(0.01, min(timeouts) / 10))
        idle_since: dict[ClientConnection, float] = {}
        while True:
            await asyncio.sleep(interval)
            now = monotonic()
            self._sweep_clients(now, idle_since)
            for service in (*self.services, *self._retired):
                if service.timeout > 0:
                    for connection in list(service.upstream.connections):
                        if connection.exchange is not None:
                            _check_upstream(connection, now, service.timeout)
            self._forget_finished()

    def _forget_finished(self) -> None:
        """Drop retired services and closed listeners once nothing of theirs is left."""
        if self._retired:
            self._retired = [s for s in self._retired if s.upstream.connections]
        live = {id(listener) for listener in self._listeners.values()}
        if len(self._plan) != len(live):
            self._plan = [
                entry
                for entry in self._plan
                if id(entry[2]) in live or entry[2].connections or entry[2].tunnels
            ]

    def _sweep_clients(self, now: float, idle_since: dict[ClientConnection, float]) -> None:
        """Close keep-alive connections idle too long, refuse heads that take too long
        in total, cut off clients that read nothing of their response for too long."""
        limits = self.limits
        alive: set[ClientConnection] = set()
        for _, _, listener in self._plan:
            for connection in list(listener.connections):
                alive.add(connection)
                if connection.linger_until:
                    if now >= connection.linger_until:
                        connection.transport.abort()
                    continue
                if connection.stop_reading:
                    pass
                elif connection.awaiting_head and connection.head_size:
                    if not connection.head_started:
                        connection.head_started = now  # reset when the head is complete
                    elif now - connection.head_started >= limits.header_timeout_seconds:
                        timeout = limits.header_timeout_seconds
                        detail = f"request head not received within {timeout:g}s"
                        connection.timed_out(Refusal.HEADER_TIMEOUT, 408, detail)
                        continue
                if (
                    connection.write_paused
                    and now - connection.paused_at >= limits.write_timeout_seconds
                ):
                    connection.timed_out(Refusal.WRITE_TIMEOUT, 0, "client read nothing")
                elif (
                    connection.current is not None
                    or connection.activity != connection.seen_activity
                ):
                    connection.seen_activity = connection.activity
                    idle_since[connection] = now
                elif now - idle_since.get(connection, now) >= limits.idle_timeout_seconds:
                    connection.close()
                else:
                    idle_since.setdefault(connection, now)
        for gone in [connection for connection in idle_since if connection not in alive]:
            del idle_since[gone]


def _check_upstream(connection: UpstreamConnection, now: float, timeout: float) -> None:
    """Fail the exchange of an upstream silent for ``timeout`` (504 ``upstream_timeout``),
    or whose response head has not arrived ``timeout`` after the request was sent
    (504 ``upstream_head_timeout``: bytes trickling in do not extend it)."""
    exchange = connection.exchange
    assert exchange is not None
    if connection.read_paused or connection.activity != connection.seen_activity:
        connection.seen_activity = connection.activity
        connection.stalled_since = now
    elif now - connection.stalled_since >= timeout:
        detail = f"no response from upstream within {timeout:g}s"
        exchange.client.fail(exchange, 504, "upstream_timeout", detail)
        return
    if exchange.head_sent or not (exchange.request_done or exchange.ttfb >= 0):
        return
    if connection.head_wait_for is not exchange:
        connection.head_wait_for = exchange
        connection.head_wait_since = now
    elif now - connection.head_wait_since >= timeout:
        connection.head_wait_for = None
        exchange.client.listener.edge.add(Refusal.UPSTREAM_HEAD_TIMEOUT)
        detail = f"upstream response head not complete within {timeout:g}s"
        exchange.client.fail(exchange, 504, Refusal.UPSTREAM_HEAD_TIMEOUT.value, detail)


def _format(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
