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
        self.services = [
            Service(config, max_idle=max_idle_per_service, limits=limits, models=models)
            for config in services
        ]
        if any(config.sampling.enabled for config in services):
            capture.samples = SampleSink()
            for service in self.services:
                service.sample_into(capture.samples)
        # The main port, then one listener per distinct own ``listen`` (port 0 included).
        groups: dict[tuple[bool, str], list[Service]] = {(False, listen): []}
        for service in self.services:
            own_listen = service.config.listen
            key = (own_listen is not None, own_listen or listen)
            groups.setdefault(key, []).append(service)
        self._plan: list[tuple[str, int, Listener]] = []
        for (own, address), group in groups.items():
            if not own and not group and self.services:
                continue  # every service has its own port: no main listener needed
            host, port = parse_host_port(address)
            scheme = b"https" if tls is not None else b"http"
            listener = Listener(
                group, capture=capture, ids=self._ids, scheme=scheme, limits=limits, edge=self.edge
            )
            self._plan.append((host, port, listener))
        self._servers: list[asyncio.Server] = []
        self._bound: list[tuple[str, int]] = []
        self._by_service: dict[str, tuple[str, int]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind every listener; raises ``OSError`` when an address is taken."""
        loop = asyncio.get_running_loop()
        try:
            for host, port, listener in self._plan:
                server = await loop.create_server(
                    functools.partial(ClientConnection, listener),
                    host,
                    port,
                    reuse_address=True,
                    backlog=self._backlog,
                    ssl=self.tls,
                )
                self._servers.append(server)
                bound = server.sockets[0].getsockname()
                address = (str(bound[0]), int(bound[1]))
                self._bound.append(address)
                members = list(listener.prefixed)
                names = [service.name for _, _, service in members]
                if listener.default is not None:
                    names.append(listener.default.name)
                for name in names:
                    self._by_service[name] = address
                log.info("proxy listening on %s for %s", _format(address), ", ".join(names) or "-")
        except BaseException:
            await self.stop(grace=0)
            raise
        self._sweeper = loop.create_task(self._sweep(), name="modelmonitor-proxy-timeouts")

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
        for service in self.services:
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
            for service in self.services:
                if service.timeout > 0:
                    for connection in list(service.upstream.connections):
                        if connection.exchange is not None:
                            _check_upstream(connection, now, service.timeout)

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
                elif (
                    connection.awaiting_head
                    and connection.head_size
                    and now - connection.head_started >= limits.header_timeout_seconds
                ):
                    detail = f"request head not received within {limits.header_timeout_seconds:g}s"
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
