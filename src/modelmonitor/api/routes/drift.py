"""Data quality and drift: reports, history, references, and sampled exchanges.

``/api/v1/services/{service}/drift`` compares a window with a reference;
``.../drift/history`` gives one point per window; ``.../references`` uploads a
training file (CSV or Parquet, as the request body) or pins a time range;
``/api/v1/samples`` searches redacted sampled exchanges.
"""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import (
    ApiContext,
    Context,
    invalid,
    json_response,
    not_found,
    parse_range,
)
from modelmonitor.api.guard import Guard
from modelmonitor.auth.roles import Role
from modelmonitor.quality.config import DriftConfig
from modelmonitor.quality.reference import ReferenceFileError
from modelmonitor.quality.render import render_html
from modelmonitor.quality.reports import (
    DriftPoint,
    ReferenceNotFound,
    ServiceDrift,
    drift_history,
    drift_report,
    pin_range,
    upload_reference,
)
from modelmonitor.quality.store import QualityStore, Reference, SampleFilter, StoredSample
from modelmonitor.timeparse import parse_duration

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["drift"])
EDITOR = [Depends(Guard(Role.EDITOR))]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MAX_UPLOAD = 200 * 1024 * 1024


class DriftHistory(msgspec.Struct, kw_only=True):
    service: str
    step: float
    points: list[DriftPoint]


class ReferenceInfo(msgspec.Struct, kw_only=True):
    service: str
    name: str
    created_at: float
    source: dict[str, str | float]


class ReferenceList(msgspec.Struct, kw_only=True):
    references: list[ReferenceInfo]


class PinRange(msgspec.Struct, kw_only=True):
    start: str
    end: str


class SampleView(msgspec.Struct, kw_only=True):
    """A sampled exchange as the API shows it: the event as an object, bodies redacted."""

    event: dict[str, Any]
    request: str
    response: str
    request_truncated: bool
    response_truncated: bool
    features: dict[str, float | str | None]
    outputs: dict[str, float | str | None]


class SamplePage(msgspec.Struct, kw_only=True):
    samples: list[SampleView]
    next_cursor: str | None


def _view(sample: StoredSample) -> SampleView:
    return SampleView(
        event=msgspec.structs.asdict(sample.event),
        request=sample.request,
        response=sample.response,
        request_truncated=sample.request_truncated,
        response_truncated=sample.response_truncated,
        features=sample.features,
        outputs=sample.outputs,
    )


def quality_store(request: Request) -> QualityStore:
    store: QualityStore | None = getattr(request.app.state, "quality", None)
    if store is None:
        not_found("data quality is not available here")
    return store


def _config(context: ApiContext, service: str) -> DriftConfig:
    for configured in context.settings.effective_services:
        if configured.name == service:
            return configured.drift
    return DriftConfig()


@router.get(
    "/services/{service}/drift",
    responses=schema_response(ServiceDrift),
    summary="Drift of a window against a reference",
)
async def service_drift(
    context: Context,
    request: Request,
    service: str,
    start: str = "-1h",
    end: str = "now",
    reference: Annotated[str | None, Query(max_length=200)] = None,
    format: Literal["json", "html"] = "json",
) -> object:
    await context.require_service(service)
    store = quality_store(request)
    start_at, end_at = parse_range(context, start, end)
    try:
        result = await drift_report(
            store,
            service=service,
            reference=reference,
            start=start_at,
            end=end_at,
            config=_config(context, service),
            now=context.clock(),
        )
    except ReferenceNotFound as exc:
        not_found(str(exc))
    except ValueError as exc:
        invalid("reference", str(exc))
    if format == "html":
        return HTMLResponse(render_html(result))
    return json_response(result)


@router.get(
    "/services/{service}/drift/history",
    responses=schema_response(DriftHistory),
    summary="Drift per window over a time range",
)
async def service_drift_history(
    context: Context,
    request: Request,
    service: str,
    start: str = "-24h",
    end: str = "now",
    step: str | None = None,
    reference: Annotated[str | None, Query(max_length=200)] = None,
) -> object:
    await context.require_service(service)
    store = quality_store(request)
    start_at, end_at = parse_range(context, start, end)
    config = _config(context, service)
    try:
        step_seconds = parse_duration(step) if step else config.window
    except ValueError as exc:
        invalid("step", str(exc))
    if step_seconds <= 0:
        invalid("step", "step must be positive")
    try:
        points = await drift_history(
            store,
            service=service,
            reference=reference,
            start=start_at,
            end=end_at,
            step=step_seconds,
            config=config,
            now=context.clock(),
        )
    except ReferenceNotFound as exc:
        not_found(str(exc))
    except ValueError as exc:
        invalid("reference", str(exc))
    actual = points[0].end - points[0].start if points else step_seconds
    return json_response(DriftHistory(service=service, step=actual, points=points))


def _info(ref: Reference) -> ReferenceInfo:
    return ReferenceInfo(
        service=ref.service, name=ref.name, created_at=ref.created_at, source=ref.source
    )


@router.get(
    "/services/{service}/references",
    responses=schema_response(ReferenceList),
    summary="A service's stored drift references",
)
async def list_references(context: Context, request: Request, service: str) -> object:
    await context.require_service(service)
    refs = await quality_store(request).references(service)
    return json_response(ReferenceList(references=[_info(r) for r in refs]))


@router.put(
    "/services/{service}/references/{name}",
    responses=schema_response(ReferenceInfo),
    summary="Upload a training file (CSV or Parquet body), or pin a range (JSON body)",
    dependencies=EDITOR,
)
async def put_reference(
    context: Context,
    request: Request,
    service: str,
    name: str,
    filename: Annotated[str, Query(max_length=200)] = "",
    prediction_column: Annotated[str | None, Query(max_length=200)] = None,
) -> object:
    await context.require_service(service)
    if not _NAME.match(name):
        invalid("name", "1-63 letters, digits, '_', '.' or '-'", where="path")
    store = quality_store(request)
    content_type = request.headers.get("content-type", "")
    data = await request.body()
    if len(data) > _MAX_UPLOAD:
        invalid("body", "the file is larger than 200 MiB", where="body")
    if content_type.startswith("application/json"):
        try:
            spec = msgspec.json.decode(data, type=PinRange)
        except msgspec.ValidationError as exc:
            invalid("body", str(exc), where="body")
        except msgspec.DecodeError:
            invalid("body", "not JSON", where="body")
        start_at, end_at = parse_range(context, spec.start, spec.end)
        try:
            ref = await pin_range(
                store, service=service, name=name, start=start_at, end=end_at, now=context.clock()
            )
        except ReferenceNotFound as exc:
            invalid("start", str(exc), where="body")
        return json_response(_info(ref), status_code=201)
    try:
        ref = await upload_reference(
            store,
            service=service,
            name=name,
            data=data,
            filename=filename,
            content_type=content_type,
            prediction_column=prediction_column,
            now=context.clock(),
        )
    except ReferenceFileError as exc:
        invalid("body", str(exc), where="body")
    return json_response(_info(ref), status_code=201)


@router.delete(
    "/services/{service}/references/{name}",
    status_code=204,
    response_model=None,
    summary="Delete a reference",
    dependencies=EDITOR,
)
async def delete_reference(context: Context, request: Request, service: str, name: str) -> Response:
    await context.require_service(service)
    if not await quality_store(request).delete_reference(service, name):
        not_found(f"no reference {name!r} for service {service!r}")
    return Response(status_code=204)


def _cursor(sample: StoredSample) -> str:
    raw = f"{sample.event.start!r}|{sample.event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        start, event_id = raw.split("|", 1)
        return float(start), event_id
    except (ValueError, UnicodeDecodeError):
        invalid("cursor", "not a cursor returned by this endpoint")


async def sample_page(
    context: ApiContext,
    store: QualityStore,
    *,
    service: str | None,
    contains: str | None,
    start: str | None,
    end: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[StoredSample], str | None]:
    """Newest sampled exchanges matching the filter (shared with ``/requests?sampled=true``)."""
    bounds: dict[str, float | None] = {"start": None, "end": None}
    from modelmonitor.timeparse import parse_time

    for key, text in (("start", start), ("end", end)):
        if text is not None:
            try:
                bounds[key] = parse_time(text, now=context.clock())
            except ValueError as exc:
                invalid(key, str(exc))
    query = SampleFilter(
        service=service,
        contains=contains or None,
        start=bounds["start"],
        end=bounds["end"],
        before=_decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    found = await store.samples(query)
    page = found[:limit]
    return page, _cursor(page[-1]) if len(found) > limit else None


@router.get(
    "/samples", responses=schema_response(SamplePage), summary="Sampled exchanges (redacted)"
)
async def list_samples(
    context: Context,
    request: Request,
    service: str | None = None,
    contains: Annotated[str | None, Query(max_length=200)] = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> object:
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
    return json_response(SamplePage(samples=[_view(s) for s in page], next_cursor=next_cursor))


@router.get(
    "/samples/{event_id}",
    responses=schema_response(SampleView),
    summary="One sampled exchange with its request's timing",
)
async def get_sample(request: Request, event_id: str) -> object:
    sample = await quality_store(request).get_sample(event_id)
    if sample is None:
        not_found(f"no sample for request {event_id!r}")
    return json_response(_view(sample))
