"""``GET /api/v1/requests``: recent raw events, filtered, with cursor pagination."""

from __future__ import annotations

import base64
import csv
import io
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from modelmonitor.api._openapi import TIME_PATTERN, schema_response
from modelmonitor.api.deps import ApiContext, Context, invalid, json_response
from modelmonitor.events import RequestEvent
from modelmonitor.storage.base import EVENT_FIELDS, RequestFilter
from modelmonitor.timeparse import parse_time

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["requests"])


class RequestRecord(msgspec.Struct, kw_only=True):
    id: str
    start: float
    service: str
    method: str
    route: str
    path: str
    status: int
    latency_seconds: float
    ttfb_seconds: float
    request_bytes: int
    response_bytes: int
    error: str
    model: str
    client: str
    consumer: str
    model_version: str
    protocol: str
    task: str
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool
    ttft_seconds: float
    finish_reason: str
    streamed: bool
    cost_usd: float
    #: W3C trace context, when the service propagates traces ("" otherwise): the
    #: proxy's span and its parent (the caller's span).
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""


class RequestPage(msgspec.Struct, kw_only=True):
    requests: list[RequestRecord]
    next_cursor: str | None


def _record(event: RequestEvent) -> RequestRecord:
    return RequestRecord(**{name: getattr(event, name) for name in RequestRecord.__struct_fields__})


def encode_cursor(start: float, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{start!r}|{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        start, event_id = raw.split("|", 1)
        return float(start), event_id
    except (ValueError, UnicodeDecodeError):
        invalid("cursor", "not a cursor returned by this endpoint")


async def _sampled_requests(
    context: ApiContext,
    request: Request,
    service: str | None,
    contains: str | None,
    start: str | None,
    end: str | None,
    limit: int,
    cursor: str | None,
) -> object:
    """The request log restricted to sampled requests (answered from the quality store)."""
    from modelmonitor.api.routes.drift import quality_store, sample_page

    if service is not None:
        await context.require_service(service)
    page, next_cursor = await sample_page(
        context,
        quality_store(request),
        service=service,
        contains=contains,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
    )
    records = [_record(sample.event) for sample in page]
    return json_response(RequestPage(requests=records, next_cursor=next_cursor))


@router.get(
    "/requests",
    responses=schema_response(RequestPage, csv=True),
    summary="Recent requests (JSON, or CSV with format=csv)",
)
async def recent_requests(
    context: Context,
    request: Request,
    service: Annotated[str | None, Query(min_length=1)] = None,
    route: Annotated[str | None, Query(min_length=1)] = None,
    method: Annotated[str | None, Query(pattern=r"^[A-Za-z]+$")] = None,
    model: Annotated[str | None, Query(min_length=1)] = None,
    consumer: Annotated[str | None, Query(min_length=1)] = None,
    status_class: Literal["1xx", "2xx", "3xx", "4xx", "5xx", "err"] | None = None,
    errors_only: bool = False,
    min_latency_ms: Annotated[float | None, Query(ge=0)] = None,
    start: Annotated[str | None, Query(pattern=TIME_PATTERN)] = None,
    end: Annotated[str | None, Query(pattern=TIME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]+$")] = None,
    format: Literal["json", "csv"] = "json",
    sampled: Annotated[bool, Query(description="only requests whose bodies were sampled")] = False,
    sample_contains: Annotated[
        str | None, Query(max_length=200, description="sampled (redacted) bodies containing this")
    ] = None,
) -> object:
    if sampled or sample_contains:
        return await _sampled_requests(
            context, request, service, sample_contains, start, end, min(limit, 500), cursor
        )
    now = context.clock()
    bounds: dict[str, float | None] = {"start": None, "end": None}
    for name, text in (("start", start), ("end", end)):
        if text is not None:
            try:
                bounds[name] = parse_time(text, now=now)
            except ValueError as exc:
                invalid(name, str(exc))
    if service is not None:
        await context.require_service(service)
    query = RequestFilter(
        service=service,
        route=route,
        method=method.upper() if method else None,
        model=model,
        consumer=consumer,
        status_class=status_class,
        errors_only=errors_only,
        min_latency_seconds=min_latency_ms / 1000.0 if min_latency_ms is not None else None,
        start=bounds["start"],
        end=bounds["end"],
        before=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    events = await context.store.recent_requests(query)
    page = events[:limit]
    next_cursor = encode_cursor(page[-1].start, page[-1].id) if len(events) > limit else None
    if format == "csv":
        return _csv(page, next_cursor)
    return json_response(RequestPage(requests=[_record(e) for e in page], next_cursor=next_cursor))


def _csv(events: list[RequestEvent], next_cursor: str | None) -> Response:
    """The page as CSV, one column per event field; the next cursor travels in a header."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EVENT_FIELDS)
    for event in events:
        writer.writerow(
            [int(v) if isinstance(v, bool) else v for v in msgspec.structs.astuple(event)]
        )
    headers = {"Content-Disposition": 'attachment; filename="requests.csv"'}
    if next_cursor is not None:
        headers["X-Next-Cursor"] = next_cursor
    return Response(content=out.getvalue(), media_type="text/csv", headers=headers)
