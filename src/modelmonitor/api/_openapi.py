"""The API's contract: msgspec response types in the OpenAPI schema, the error
statuses every route can answer, parameter patterns shared by the handlers, and
``405 Method Not Allowed`` answers whose ``Allow`` lists every method of the path."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "DURATION_PATTERN",
    "POSITIVE_DURATION",
    "TIME_PATTERN",
    "MethodNotAllowed",
    "install_openapi",
    "list_pattern",
    "register_schemas",
    "schema_response",
]

_registered: dict[str, Any] = {}

#: What :func:`modelmonitor.timeparse.parse_duration` accepts.
DURATION_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d|w)?\s*$"
#: A duration greater than zero.
POSITIVE_DURATION = (
    r"^\s*([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)\s*(ms|s|m|h|d|w)?\s*$"
)
#: What :func:`modelmonitor.timeparse.parse_time` accepts: ``now``, ``-<duration>``,
#: Unix seconds or an ISO-8601 date and time (``Z`` or an offset, or none for UTC).
TIME_PATTERN = (
    r"^\s*(now|-[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d|w)?|[0-9]+(\.[0-9]+)?"
    r"|(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?)\s*$"
)


def list_pattern(names: Any) -> str:
    """A comma-separated list of these names (spaces around commas allowed)."""
    choice = "|".join(sorted(names, key=len, reverse=True))
    return rf"^\s*({choice})\s*(,\s*({choice})\s*)*$"


class ErrorBody(msgspec.Struct):
    """An error: a message, or FastAPI's list of validation problems naming the field."""

    detail: str | list[dict[str, Any]]


def register_schemas(*types: Any) -> None:
    """Add msgspec types no route returns (the WebSocket feed's messages) to the
    schema's components, so the dashboard's generated types include them."""
    _, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    _registered.update(components)


def schema_response(
    tp: Any, description: str = "Successful response", *, csv: bool = False
) -> dict[int | str, Any]:
    """``responses=`` argument documenting a msgspec type as the 200 body (and, with
    ``csv``, the ``text/csv`` export the route gives with ``format=csv``)."""
    (schema,), components = msgspec.json.schema_components(
        [tp], ref_template="#/components/schemas/{name}"
    )
    _registered.update(components)
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {200: {"description": description, "content": content}}


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def _declare_errors(path: str, operation: dict[str, Any]) -> None:
    """Add the error statuses a route answers that FastAPI does not declare itself."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    by_path = any(p.get("in") == "path" for p in parameters)
    by_service = any(p.get("name") == "service" and p.get("in") == "query" for p in parameters)
    wanted: dict[str, str] = {}
    if "requestBody" in operation:
        wanted["400"] = "The body is not JSON"
    if by_path or by_service:
        wanted["404"] = "Unknown service, or no such item"
    if parameters or "requestBody" in operation:
        wanted["422"] = "A parameter or body field is invalid (named in detail[].loc)"
    if path.startswith("/api/v1/alerts"):
        wanted["503"] = "Alerting is not running in this process"
    for status, description in wanted.items():
        responses[status] = {"description": description, "content": _ERROR}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(_registered)
        _, extra = msgspec.json.schema_components(
            [ErrorBody], ref_template="#/components/schemas/{name}"
        )
        components.update(extra)
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                _declare_errors(path, operation)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class MethodNotAllowed:
    """ASGI middleware: a request to a documented path with a method the schema does
    not list for it is answered ``405`` with ``Allow`` naming exactly the documented
    methods (Starlette names only the first matching route's methods, and the
    dashboard's catch-all ``GET`` would answer some of them with 404)."""

    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app = app
        self._api = api
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _table(self) -> list[tuple[re.Pattern[str], frozenset[str]]]:
        if self._paths is None:
            table = []
            for template, item in self._api.openapi().get("paths", {}).items():
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
                methods = frozenset(method.upper() for method in item)
                table.append((re.compile(f"^{pattern}$"), methods))
            self._paths = table
        return self._paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            # Templates may overlap (``/services/{name}`` and ``/services/test``): a
            # method is allowed when any template the path matches documents it.
            matching = [m for regex, m in self._table() if regex.match(path)]
            allowed = frozenset().union(*matching) if matching else None
            if allowed is not None and scope["method"] not in allowed:
                body = msgspec.json.encode({"detail": "Method Not Allowed"})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 405,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"allow", ", ".join(sorted(allowed)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
