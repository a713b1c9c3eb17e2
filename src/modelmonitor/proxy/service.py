"""Per-service runtime state and the per-listener router (path prefix -> service)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmonitor.events import EventIdFactory
from modelmonitor.proxy.capture import CaptureBuffer
from modelmonitor.proxy.edge import EdgeCounters
from modelmonitor.proxy.inspect import HookFactory, chain
from modelmonitor.proxy.routes import RouteTemplater
from modelmonitor.proxy.sampling import SampleSink, sampling_hooks
from modelmonitor.proxy.tracecontext import TRACEPARENT
from modelmonitor.proxy.upstream import UpstreamTarget
from modelmonitor.settings import ProxyLimits, ServiceConfig

if TYPE_CHECKING:
    from modelmonitor.protocols.awareness import ModelAwareness
    from modelmonitor.proxy.client import ClientConnection
    from modelmonitor.proxy.tunnel import Tunnel

__all__ = ["Listener", "Service"]


class Service:
    """One monitored service as the hot path needs it: precomputed, no lookups."""

    __slots__ = (
        "_measure",
        "config",
        "consumers",
        "forwarded",
        "hooks",
        "in_flight",
        "json_field",
        "model_header",
        "name",
        "preserve_host",
        "propagate_trace",
        "routes",
        "template",
        "timeout",
        "upstream",
    )

    def __init__(
        self,
        config: ServiceConfig,
        *,
        max_idle: int = 512,
        limits: ProxyLimits | None = None,
        models: ModelAwareness | None = None,
    ) -> None:
        limits = limits or ProxyLimits()
        self.config = config
        self.name = config.name
        if models is None:
            from modelmonitor.protocols.awareness import ModelAwareness  # imports the proxy

            models = ModelAwareness()
        aware = models.for_service(
            protocol=config.protocol,
            consumers=config.consumers,
            model=config.model or "",
            model_version=config.model_version or "",
        )
        #: Route templates (a serving protocol's own first), capped at
        #: ``limits.max_routes_per_service``.
        self.routes = RouteTemplater(
            config.route_patterns, max_routes=limits.max_routes_per_service, special=aware.route
        )
        self.template = self.routes.template
        self.upstream = UpstreamTarget(
            config, max_idle=max_idle, max_head_bytes=limits.max_upstream_head_bytes
        )
        self.model_header = config.model_header.lower().encode("latin-1")
        self.json_field = config.model_json_field or ""
        self.preserve_host = config.preserve_host
        self.forwarded = config.forwarded_headers
        self.propagate_trace = config.propagate_trace
        self.timeout = config.timeout_seconds
        self.in_flight = 0
        #: Names a request's consumer from its headers, or ``None``.
        self.consumers = aware.consumers
        self._measure = aware.hooks
        #: Starts a request's body hook (protocol measurements, payload sampling).
        self.hooks: HookFactory | None = aware.hooks

    def sample_into(self, sink: SampleSink) -> None:
        """Copy sampled bodies of this service into ``sink`` (when its config samples)."""
        sampling = sampling_hooks(self.config.sampling, sink)
        self.hooks = chain([f for f in (self._measure, sampling) if f is not None])


class Listener:
    """What one listening socket serves: an optional default service and path prefixes."""

    __slots__ = (
        "capture",
        "connections",
        "default",
        "draining",
        "edge",
        "ids",
        "max_head_bytes",
        "max_headers",
        "max_parts",
        "max_url_bytes",
        "model_headers",
        "prefixed",
        "proto_line",
        "scheme",
        "tunnels",
        "unrouted_total",
    )

    def __init__(
        self,
        services: list[Service],
        *,
        capture: CaptureBuffer,
        ids: EventIdFactory,
        scheme: bytes = b"http",
        limits: ProxyLimits | None = None,
        edge: EdgeCounters | None = None,
    ) -> None:
        self.default: Service | None = None
        self.prefixed: list[tuple[bytes, bool, Service]] = []
        self.model_headers: frozenset[bytes] = frozenset()
        self.assign(services)
        self.capture = capture
        self.ids = ids
        self.scheme = scheme
        self.proto_line = b"X-Forwarded-Proto: " + scheme + b"\r\n"
        #: Open client connections (closed on stop).
        self.connections: set[ClientConnection] = set()
        #: Connections switched to another protocol (WebSocket), relayed as bytes.
        self.tunnels: set[Tunnel] = set()
        #: Requests no service's path prefix matched (answered 404 ``no_service``).
        self.unrouted_total = 0
        #: Set on stop: connections close after their current response.
        self.draining = False
        limits = limits or ProxyLimits()
        self.max_head_bytes = limits.max_head_bytes
        self.max_url_bytes = limits.max_url_bytes
        self.max_headers = limits.max_headers
        #: The same as a length of ``ClientConnection.parts`` (four per forwarded field).
        self.max_parts = 5 + 4 * limits.max_headers
        #: Requests and responses refused at the edge, per kind (shared by the server).
        self.edge = edge or EdgeCounters()

    def assign(self, services: list[Service]) -> None:
        """Serve these services from now on (at start, and when the catalog changes).

        Each attribute is replaced whole, so a request routed meanwhile sees either the
        old set or the new one."""
        default: Service | None = None
        prefixed: list[tuple[bytes, bool, Service]] = []
        for service in services:
            prefix = service.config.path_prefix
            if prefix is None:
                default = service
            else:
                prefixed.append((prefix.encode(), service.config.strip_prefix, service))
        prefixed.sort(key=lambda item: -len(item[0]))
        self.default = default
        self.prefixed = prefixed
        #: Lower-case names of headers read (and forwarded): model headers, and
        #: ``traceparent`` when a service continues traces.
        watched = {service.model_header for service in services}
        for service in services:
            if service.consumers is not None:
                watched |= service.consumers.watched
        if any(service.propagate_trace for service in services):
            watched.add(TRACEPARENT)
        self.model_headers = frozenset(watched)

    @property
    def services(self) -> list[Service]:
        found = [service for _, _, service in self.prefixed]
        return found + ([self.default] if self.default is not None else [])

    def route(self, path: bytes) -> tuple[Service | None, int]:
        """The service for a request path and how many leading bytes to strip."""
        for prefix, strip, service in self.prefixed:
            if path.startswith(prefix):
                size = len(prefix)
                if len(path) == size or path[size] == 47:  # "/"
                    return service, size if strip else 0
        return self.default, 0
