"""``/api/v1/config/services``: add, change and remove monitored services at run time.

Services declared in the configuration file are listed read-only; the rest live in the
service catalog, which every proxy reads in the background and applies without a
restart. Reading takes a viewer; changes take an admin and are audited.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import json_response
from modelmonitor.api.guard import Admin, Viewer
from modelmonitor.catalog import (
    CatalogConflict,
    CatalogEntry,
    CatalogError,
    CatalogNotFound,
    ServiceCatalog,
)
from modelmonitor.settings import ServiceConfig

__all__ = ["catalog_loaders", "router"]

router = APIRouter(prefix="/api/v1/config/services", tags=["configuration"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such service"},
    409: {"description": "Declared in the configuration file, or clashes with another service"},
}


class CatalogList(msgspec.Struct, kw_only=True):
    services: list[CatalogEntry]


class ConnectionTest(msgspec.Struct, kw_only=True):
    """What a dry run of a service's upstream found."""

    reachable: bool
    #: The HTTP status the upstream answered ``GET /`` with (any status means it speaks HTTP).
    status: int | None = None
    latency_ms: float | None = None
    error: str = ""


def _catalog(request: Request) -> ServiceCatalog:
    catalog: ServiceCatalog = request.app.state.catalog
    return catalog


async def _call(result: Any) -> CatalogEntry:
    try:
        entry: CatalogEntry = await result
    except CatalogError as exc:
        raise HTTPException(
            status_code=422,
            detail=[{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}],
        ) from None
    except CatalogNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except CatalogConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return entry


@router.get(
    "",
    responses=schema_response(CatalogList),
    summary="Monitored services and their configuration",
)
async def list_services(request: Request, principal: Viewer) -> object:
    return json_response(CatalogList(services=await _catalog(request).entries()))


@router.get(
    "/{name}",
    responses={**schema_response(CatalogEntry), 404: _ERRORS[404]},
    summary="One service's configuration",
)
async def get_service(request: Request, principal: Viewer, name: str) -> object:
    return json_response(await _call(_catalog(request).get(name)))


@router.post(
    "",
    status_code=201,
    responses={**schema_response(CatalogEntry), 409: _ERRORS[409]},
    summary="Add a service (proxies pick it up within seconds)",
)
async def add_service(request: Request, principal: Admin, body: ServiceConfig) -> object:
    entry = await _call(_catalog(request).create(body, now=time.time()))
    return json_response(entry, status_code=201)


@router.put(
    "/{name}",
    responses={**schema_response(CatalogEntry), **_ERRORS},
    summary="Replace a service's configuration",
)
async def replace_service(
    request: Request, principal: Admin, name: str, body: ServiceConfig
) -> object:
    return json_response(await _call(_catalog(request).replace(name, body, now=time.time())))


@router.delete("/{name}", status_code=204, responses=_ERRORS, summary="Stop monitoring a service")
async def delete_service(request: Request, principal: Admin, name: str) -> Response:
    await _call(_catalog(request).delete(name))
    return Response(status_code=204)


@router.post(
    "/test",
    responses=schema_response(ConnectionTest),
    summary="Dry run: can the proxy reach this service's upstream?",
)
async def test_connection(principal: Admin, body: ServiceConfig) -> object:
    return json_response(await probe(body))


async def probe(config: ServiceConfig) -> ConnectionTest:
    """Connect to the upstream (TLS as configured) and send ``GET /``; any HTTP answer
    means reachable. Nothing is stored."""
    parts = urlsplit(config.upstream)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    host = parts.hostname or ""
    context = _client_context(config) if secure else None
    began = time.perf_counter()
    try:
        async with asyncio.timeout(config.connect_timeout_seconds + config.timeout_seconds):
            server_hostname = (config.tls.server_name or host) if secure else None
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=server_hostname
            )
            try:
                target = parts.path or "/"
                writer.write(
                    f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "Connection: close\r\nUser-Agent: modelmonitor-test\r\n\r\n".encode()
                )
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return ConnectionTest(reachable=False, error="timed out")
    except (OSError, ssl.SSLError) as exc:
        return ConnectionTest(reachable=False, error=f"{type(exc).__name__}: {exc}")
    latency = round((time.perf_counter() - began) * 1000, 3)
    fields = line.split()
    if len(fields) >= 2 and fields[0].startswith(b"HTTP/") and fields[1].isdigit():
        return ConnectionTest(reachable=True, status=int(fields[1]), latency_ms=latency)
    return ConnectionTest(
        reachable=False, latency_ms=latency, error="the upstream did not answer with HTTP"
    )


def _client_context(config: ServiceConfig) -> ssl.SSLContext:
    tls = config.tls
    context = ssl.create_default_context(cafile=tls.ca_file)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.client_cert is not None:
        context.load_cert_chain(tls.client_cert, tls.client_key)
    return context


def catalog_loaders() -> dict[str, Any]:
    """What the audit trail records as *before* for each change."""

    async def before(app: FastAPI, params: dict[str, Any]) -> Any:
        catalog: ServiceCatalog = app.state.catalog
        try:
            entry = await catalog.get(str(params.get("name", "")))
        except CatalogNotFound:
            return None
        return msgspec.to_builtins(entry)

    return {"/api/v1/config/services/{name}": before}
