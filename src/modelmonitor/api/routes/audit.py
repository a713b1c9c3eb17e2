"""``GET /api/v1/audit``: the audit log, newest first (admins only)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Request

from modelmonitor.api._openapi import schema_response
from modelmonitor.api.deps import json_response
from modelmonitor.api.guard import Admin
from modelmonitor.api.routes._accounts import auth_service
from modelmonitor.auth.models import AuditEntry

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditPage(msgspec.Struct, kw_only=True):
    entries: list[AuditEntry]
    #: Pass as ``before_id`` for the next (older) page; null at the end.
    next_before_id: int | None


@router.get("", responses=schema_response(AuditPage), summary="Audit log, newest first")
async def audit_log(
    request: Request,
    principal: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> object:
    service = auth_service(request)
    entries = await service.store.list_audit(limit=limit, before_id=before_id, actor=actor)
    next_id = entries[-1].id if len(entries) == limit else None
    return json_response(AuditPage(entries=entries, next_before_id=next_id))
