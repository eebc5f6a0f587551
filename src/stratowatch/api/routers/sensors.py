"""Sensors known to the service (from the sensor registry and the partners' feeds)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from stratowatch.api.convert import sensor_json
from stratowatch.api.deps import Paging, call, get_store, page, paging
from stratowatch.api.errors import not_found
from stratowatch.api.models import ErrorBody, Page, SensorOut

router = APIRouter(prefix="/api/v1", tags=["sensors"])


@router.get("/sensors", response_model=Page[SensorOut], summary="Sensors")
async def list_sensors(
    paging: Annotated[Paging, Depends(paging)], store: Annotated[Any, Depends(get_store)]
) -> JSONResponse:
    sensors = sorted(await call(store.sensors), key=lambda s: s.sensor_id)
    chunk = sensors[paging.offset : paging.offset + paging.limit]
    return JSONResponse(page([sensor_json(s) for s in chunk], len(sensors), paging))


@router.get(
    "/sensors/{sensor_id}",
    response_model=SensorOut,
    responses={404: {"model": ErrorBody, "description": "No such sensor."}},
    summary="One sensor",
)
async def get_sensor(sensor_id: str, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    for s in await call(store.sensors):
        if s.sensor_id == sensor_id:
            return JSONResponse(sensor_json(s))
    raise not_found("sensor", sensor_id)
