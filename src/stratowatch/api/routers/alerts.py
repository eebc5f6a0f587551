"""Alerts: list (by time, rule, acknowledged), one alert, acknowledge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from stratowatch.api.convert import alert_json
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
from stratowatch.api.models import AcknowledgeIn, AlertOut, ErrorBody, Page
from stratowatch.model import Alert

router = APIRouter(prefix="/api/v1", tags=["alerts"])

RuleParam = Literal[
    "geofence_enter", "geofence_exit", "predicted_entry", "new_unidentified", "track_lost", "border_crossing"
]
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such alert."}}


@router.get("/alerts", response_model=Page[AlertOut], summary="Alerts")
async def list_alerts(
    paging: Annotated[Paging, Depends(paging)],
    store: Annotated[Any, Depends(get_store)],
    since_s: Annotated[float | None, Query(description="Alerts at or after this POSIX time.")] = None,
    rule: Annotated[RuleParam | None, Query(description="Only alerts of this rule.")] = None,
    acknowledged: Annotated[
        bool | None, Query(description="true: acknowledged only; false: open only.")
    ] = None,
) -> JSONResponse:
    def fetch(limit: int, offset: int) -> list[Any]:
        return list(
            store.alerts(since_s=since_s, rule=rule, acknowledged=acknowledged, limit=limit, offset=offset)
        )

    counter = getattr(store, "count_alerts", None)
    count = (
        (lambda: int(counter(since_s=since_s, rule=rule, acknowledged=acknowledged)))
        if counter is not None
        else None
    )
    alerts, total = await fetch_page(fetch, paging, count)
    return JSONResponse(page([alert_json(a) for a in alerts], total, paging))


@router.get("/alerts/{alert_id}", response_model=AlertOut, responses=_404, summary="One alert")
async def get_alert(alert_id: str, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    alert = await call(store.alert, alert_id)
    if alert is None:
        raise not_found("alert", alert_id)
    return JSONResponse(alert_json(alert))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses={**_404, 409: {"model": ErrorBody, "description": "The alert cannot be acknowledged."}},
    summary="Acknowledge an alert",
)
async def acknowledge_alert(
    alert_id: str,
    body: AcknowledgeIn,
    request: Request,
    pipeline: Annotated[Any, Depends(get_pipeline)],
    store: Annotated[Any, Depends(get_store)],
) -> JSONResponse:
    """Record who acknowledged the alert and when; the change is stored, audited and streamed."""
    if await call(store.alert, alert_id) is None:
        raise not_found("alert", alert_id)
    audience = audience_of(request)
    extra = {"audience": audience} if audience else {}
    try:
        result = await call_pipeline(pipeline.acknowledge, alert_id, body.who, **extra)
    except KeyError:
        raise not_found("alert", alert_id) from None
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc), {"alert_id": alert_id}) from None
    alert = result if isinstance(result, Alert) else await call(store.alert, alert_id)
    if alert is None:
        raise not_found("alert", alert_id)
    return JSONResponse(alert_json(alert))
