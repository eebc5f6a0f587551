"""Incidents: list (by status), one incident, its alerts, resolve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from stratowatch.api.convert import alert_json, incident_json
from stratowatch.api.deps import (
    Paging,
    audience_of,
    call,
    call_pipeline,
    fetch_page,
    get_pipeline,
    get_store,
    page,
    paging,
)
from stratowatch.api.errors import ApiError, not_found
from stratowatch.api.models import AlertOut, ErrorBody, IncidentOut, Page, ResolveIn
from stratowatch.model import Incident

router = APIRouter(prefix="/api/v1", tags=["incidents"])

_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such incident."}}


@router.get("/incidents", response_model=Page[IncidentOut], summary="Incidents")
async def list_incidents(
    paging: Annotated[Paging, Depends(paging)],
    store: Annotated[Any, Depends(get_store)],
    status: Annotated[
        Literal["open", "tracking", "resolved"] | None, Query(description="Lifecycle state.")
    ] = None,
) -> JSONResponse:
    def fetch(limit: int, offset: int) -> list[Any]:
        return list(store.incidents(status=status, limit=limit, offset=offset))

    counter = getattr(store, "count_incidents", None)
    count = (lambda: int(counter(status=status))) if counter is not None else None
    incidents, total = await fetch_page(fetch, paging, count)
    return JSONResponse(page([incident_json(i) for i in incidents], total, paging))


@router.get("/incidents/{incident_id}", response_model=IncidentOut, responses=_404, summary="One incident")
async def get_incident(incident_id: str, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    incident = await call(store.incident, incident_id)
    if incident is None:
        raise not_found("incident", incident_id)
    return JSONResponse(incident_json(incident))


@router.get(
    "/incidents/{incident_id}/alerts",
    response_model=list[AlertOut],
    responses=_404,
    summary="The alerts of an incident",
)
async def incident_alerts(incident_id: str, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    incident = await call(store.incident, incident_id)
    if incident is None:
        raise not_found("incident", incident_id)

    def load() -> list[Any]:
        return [a for a in (store.alert(aid) for aid in incident.alert_ids) if a is not None]

    return JSONResponse([alert_json(a) for a in await call(load)])


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentOut,
    responses={**_404, 409: {"model": ErrorBody, "description": "The incident cannot be resolved."}},
    summary="Resolve an incident",
)
async def resolve_incident(
    incident_id: str,
    body: ResolveIn,
    request: Request,
    pipeline: Annotated[Any, Depends(get_pipeline)],
    store: Annotated[Any, Depends(get_store)],
) -> JSONResponse:
    """Close the incident with who resolved it and a note; stored, audited and streamed."""
    if await call(store.incident, incident_id) is None:
        raise not_found("incident", incident_id)
    audience = audience_of(request)
    extra = {"audience": audience} if audience else {}
    try:
        result = await call_pipeline(pipeline.resolve, incident_id, body.who, body.note, **extra)
    except KeyError:
        raise not_found("incident", incident_id) from None
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc), {"incident_id": incident_id}) from None
    incident = result if isinstance(result, Incident) else await call(store.incident, incident_id)
    if incident is None:
        raise not_found("incident", incident_id)
    return JSONResponse(incident_json(incident))
