"""``GET /api/v1/models`` and ``/api/v1/consumers``: per-model and per-consumer tables."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import ApiContext, Context, json_response, parse_range
from modelmonitor.query.models import DimensionList, dimension_summaries

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["metrics"])
_Range = Annotated[str, Query(description="ISO-8601, -1h, now or Unix seconds")]


async def _table(
    context: ApiContext,
    *,
    by: Literal["model", "consumer"],
    service: str,
    start: str,
    end: str,
    model: str | None = None,
    consumer: str | None = None,
) -> object:
    start_at, end_at = parse_range(context, start, end)
    await context.require_service(service)
    table = await dimension_summaries(
        context.store,
        service=service,
        start=start_at,
        end=end_at,
        by=by,
        model=model,
        consumer=consumer,
    )
    return json_response(table)


@router.get(
    "/models",
    responses=schema_response(DimensionList),
    summary="Per-model requests, errors, latency, tokens and cost over a range",
)
async def models(
    context: Context,
    service: Annotated[str, Query(min_length=1)],
    consumer: str | None = None,
    start: _Range = "-1h",
    end: _Range = "now",
) -> object:
    return await _table(
        context, by="model", service=service, start=start, end=end, consumer=consumer
    )


@router.get(
    "/consumers",
    responses=schema_response(DimensionList),
    summary="Per-consumer requests, errors, latency, tokens and cost over a range",
)
async def consumers(
    context: Context,
    service: Annotated[str, Query(min_length=1)],
    model: str | None = None,
    start: _Range = "-1h",
    end: _Range = "now",
) -> object:
    return await _table(context, by="consumer", service=service, start=start, end=end, model=model)
