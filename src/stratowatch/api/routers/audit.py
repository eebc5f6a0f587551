"""The audit log: who did what and when (acknowledgements, resolutions, geofence changes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from stratowatch.api.convert import json_safe
from stratowatch.api.deps import Paging, fetch_page, get_store, page, paging
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
