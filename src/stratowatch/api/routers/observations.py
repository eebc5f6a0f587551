"""Observations as stored (every accepted sensor report), filtered by time, box and sensor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from stratowatch.api.convert import observation_json
from stratowatch.api.deps import COUNT_CAP, Paging, fetch_page, get_store, page, paging, parse_bbox
from stratowatch.api.errors import invalid_parameter
from stratowatch.api.models import ObservationOut, Page

router = APIRouter(prefix="/api/v1", tags=["observations"])


@router.get("/observations", response_model=Page[ObservationOut], summary="Stored observations")
async def list_observations(
    paging: Annotated[Paging, Depends(paging)],
    store: Annotated[Any, Depends(get_store)],
    t0: Annotated[float | None, Query(description="From this POSIX time.")] = None,
    t1: Annotated[float | None, Query(description="Up to this POSIX time.")] = None,
    bbox: Annotated[
        str | None, Query(description="Box 'min_lat,min_lon,max_lat,max_lon' in degrees.")
    ] = None,
    sensor_id: Annotated[str | None, Query(description="Only this sensor's observations.")] = None,
) -> JSONResponse:
    if t0 is not None and t1 is not None and t0 > t1:
        raise invalid_parameter("t0", f"{t0} is after t1 {t1}")
    box = parse_bbox(bbox)
    filters: dict[str, Any] = {"t0": t0, "t1": t1, "bbox": box, "sensor_id": sensor_id}

    def fetch(limit: int, offset: int) -> list[Any]:
        return list(store.observations(**filters, limit=limit, offset=offset))

    def count() -> int:
        if all(v is None for v in filters.values()):
            return int(store.count("observations"))
        counter = getattr(store, "count_observations", None)
        if counter is not None:
            return int(counter(**filters))
        return len(store.observations(**filters, limit=COUNT_CAP, offset=0))  # a store without counts

    observations, total = await fetch_page(fetch, paging, count)
    return JSONResponse(page([observation_json(o) for o in observations], total, paging))
