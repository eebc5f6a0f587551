"""Geofences: list, read, create, replace, delete.

Every change is written to the store, audited (actor from the ``X-Actor`` header, else "api"),
published on the bus topic ``geofences`` and passed to the pipeline (``geofences_changed()``
when it has one) so that the alert engine uses the new set from its next step.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse

from stratowatch.api.convert import geofence_from_json, geofence_json
from stratowatch.api.deps import Paging, call, call_pipeline, get_pipeline, get_store, page, paging
from stratowatch.api.errors import ApiError, not_found
from stratowatch.api.models import ErrorBody, GeofenceIn, GeofenceOut, Page

router = APIRouter(prefix="/api/v1", tags=["geofences"])

_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such geofence."}}
ActorHeader = Header(alias="X-Actor", description="Who makes the change (for the audit log).")


async def _find(store: Any, geofence_id: str) -> Any:
    for g in await call(store.geofences):
        if g.geofence_id == geofence_id:
            return g
    return None


async def _changed(pipeline: Any, actor: str, action: str, body: dict[str, Any]) -> None:
    await call(pipeline.store.audit, actor, action, body)
    pipeline.bus.publish("geofences", {"action": action, "geofence": body})
    hook = getattr(pipeline, "geofences_changed", None)
    if hook is not None:
        await call_pipeline(hook)


@router.get("/geofences", response_model=Page[GeofenceOut], summary="Geofences")
async def list_geofences(
    paging: Annotated[Paging, Depends(paging)], store: Annotated[Any, Depends(get_store)]
) -> JSONResponse:
    fences = sorted(await call(store.geofences), key=lambda g: g.geofence_id)
    chunk = fences[paging.offset : paging.offset + paging.limit]
    return JSONResponse(page([geofence_json(g) for g in chunk], len(fences), paging))


@router.get("/geofences/{geofence_id}", response_model=GeofenceOut, responses=_404, summary="One geofence")
async def get_geofence(geofence_id: str, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    g = await _find(store, geofence_id)
    if g is None:
        raise not_found("geofence", geofence_id)
    return JSONResponse(geofence_json(g))


@router.post(
    "/geofences",
    response_model=GeofenceOut,
    status_code=201,
    responses={409: {"model": ErrorBody, "description": "The id is taken."}},
    summary="Create a geofence",
)
async def create_geofence(
    body: GeofenceIn,
    pipeline: Annotated[Any, Depends(get_pipeline)],
    actor: Annotated[str, ActorHeader] = "api",
) -> JSONResponse:
    if await _find(pipeline.store, body.geofence_id) is not None:
        raise ApiError(
            409, "conflict", f"geofence {body.geofence_id} exists", {"geofence_id": body.geofence_id}
        )
    g = geofence_from_json(body.model_dump())
    await call(pipeline.store.write_geofence, g)
    out = geofence_json(g)
    await _changed(pipeline, actor, "geofence_create", out)
    return JSONResponse(out, status_code=201, headers={"Location": f"/api/v1/geofences/{g.geofence_id}"})


@router.put(
    "/geofences/{geofence_id}",
    response_model=GeofenceOut,
    responses={400: {"model": ErrorBody, "description": "The body's id differs from the path's."}},
    summary="Create or replace a geofence",
)
async def put_geofence(
    geofence_id: str,
    body: GeofenceIn,
    pipeline: Annotated[Any, Depends(get_pipeline)],
    actor: Annotated[str, ActorHeader] = "api",
) -> JSONResponse:
    if body.geofence_id != geofence_id:
        raise ApiError(
            400,
            "invalid_parameter",
            f"body geofence_id {body.geofence_id!r} differs from the path's {geofence_id!r}",
            {"parameter": "geofence_id"},
        )
    g = geofence_from_json(body.model_dump())
    await call(pipeline.store.write_geofence, g)
    out = geofence_json(g)
    await _changed(pipeline, actor, "geofence_replace", out)
    return JSONResponse(out)


@router.delete("/geofences/{geofence_id}", status_code=204, responses=_404, summary="Delete a geofence")
async def delete_geofence(
    geofence_id: str,
    pipeline: Annotated[Any, Depends(get_pipeline)],
    actor: Annotated[str, ActorHeader] = "api",
) -> Response:
    if not await call(pipeline.store.delete_geofence, geofence_id):
        raise not_found("geofence", geofence_id)
    await _changed(pipeline, actor, "geofence_delete", {"geofence_id": geofence_id})
    return Response(status_code=204)
