"""Document msgspec response types in the OpenAPI schema (responses are encoded by msgspec)."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["install_openapi", "schema_response"]

_registered: dict[str, Any] = {}


def schema_response(tp: Any, description: str = "Successful response") -> dict[int | str, Any]:
    """``responses=`` argument documenting a msgspec type as the 200 body."""
    (schema,), components = msgspec.json.schema_components(
        [tp], ref_template="#/components/schemas/{name}"
    )
    _registered.update(components)
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(_registered)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
