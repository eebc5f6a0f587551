"""The audit log: who did what and when (releases to partners, denials, acknowledgements,
resolutions, geofence and principal changes), and a check of its hash chain. The node's own
administrators only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from stratowatch.api.convert import json_safe
from stratowatch.api.deps import Paging, call, fetch_page, get_pipeline, get_store, page, paging
from stratowatch.api.models import AuditOut, Page

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", response_model=Page[AuditOut], summary="Audit log, newest first")
async def audit_log(
    paging: Annotated[Paging, Depends(paging)], store: Annotated[Any, Depends(get_store)]
) -> JSONResponse:
    def fetch(limit: int, offset: int) -> list[Any]:
        return list(store.audit_log(limit=limit, offset=offset))

    rows, total = await fetch_page(fetch, paging, lambda: int(store.count("audit_log")))
    return JSONResponse(page([json_safe(r) for r in rows], total, paging))


@router.get("/audit/verify", summary="Verify the audit log's hash chain")
async def audit_verify(pipeline: Annotated[Any, Depends(get_pipeline)]) -> JSONResponse:
    """``{"ok", "records", "first_id", "last_id", "bad_id", "reason"}``: whether every record's
    hash covers the record before it (the same check as ``stratowatch audit verify``)."""
    report = await call(pipeline.store.verify_audit)
    return JSONResponse(
        {
            "ok": report.ok,
            "records": report.records,
            "first_id": report.first_id,
            "last_id": report.last_id,
            "bad_id": report.bad_id,
            "reason": report.reason,
        }
    )
