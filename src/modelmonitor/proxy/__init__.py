"""The hot path: a transparent HTTP/1.1 reverse proxy that records one event per request."""

from __future__ import annotations

from modelmonitor.proxy.capture import CaptureBuffer, Shipper, Spool
from modelmonitor.proxy.routes import RouteTemplater, route_template
from modelmonitor.proxy.server import ProxyServer

__all__ = ["CaptureBuffer", "ProxyServer", "RouteTemplater", "Shipper", "Spool", "route_template"]
