"""Predictions: a track's latest drift prediction — paths, cones, arrival per geofence — and the
predicted arrivals of all tracks at the geofences."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from stratowatch.api.convert import json_safe, prediction_parts
from stratowatch.api.deps import call, get_store
from stratowatch.api.errors import not_found
from stratowatch.api.models import (
    ArrivalRowOut,
    ErrorBody,
    FeatureCollectionOut,
    Page,
    PredictionOut,
    RegionArrivalOut,
)

router = APIRouter(prefix="/api/v1", tags=["predictions"])

_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No prediction for this track."}
}


async def load_prediction(
    store: Any, track_id: int
) -> tuple[float | None, dict[str, Any], list[dict[str, Any]]]:
    payload = await call(store.prediction, track_id)
    if payload is None:
        raise not_found("prediction for track", track_id)
    return prediction_parts(payload)


@router.get("/predictions/{track_id}", response_model=PredictionOut, responses=_404, summary="A prediction")
async def get_prediction(track_id: int, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    """The latest prediction of the track: GeoJSON cones and paths, and arrival per geofence."""
    payload = await call(store.prediction, track_id)
    if payload is None:
        raise not_found("prediction for track", track_id)
    time_s, geojson, arrivals = prediction_parts(payload)
    body: dict[str, Any] = {"track_id": track_id, "time_s": time_s, "arrivals": arrivals, "geojson": geojson}
    for key in ("hours", "members", "source", "error"):
        if payload.get(key) is not None:
            body[key] = json_safe(payload[key])
    body["notes"] = [str(n) for n in payload.get("notes") or []]
    return JSONResponse(body)


@router.get(
    "/predictions/{track_id}/paths",
    response_model=FeatureCollectionOut,
    responses=_404,
    summary="Predicted paths (GeoJSON)",
)
async def prediction_paths(track_id: int, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    """A FeatureCollection of the median and deterministic paths (LineStrings, lon/lat/alt)."""
    _, geojson, _ = await load_prediction(store, track_id)
    features = [
        f for f in geojson["features"] if str(f.get("properties", {}).get("kind", "")).endswith("_path")
    ]
    return JSONResponse({"type": "FeatureCollection", "features": features})


@router.get(
    "/predictions/{track_id}/cones",
    response_model=FeatureCollectionOut,
    responses=_404,
    summary="Probability cones (GeoJSON)",
)
async def prediction_cones(
    track_id: int,
    store: Annotated[Any, Depends(get_store)],
    probability: Annotated[
        float | None, Query(gt=0, le=1, description="Only the cone of this probability.")
    ] = None,
) -> JSONResponse:
    """A FeatureCollection of cone polygons, one per probability level and lead time."""
    _, geojson, _ = await load_prediction(store, track_id)
    features = [
        f
        for f in geojson["features"]
        if f.get("properties", {}).get("kind") == "cone"
        and (probability is None or abs(float(f["properties"].get("probability", -1)) - probability) < 1e-6)
    ]
    return JSONResponse({"type": "FeatureCollection", "features": features})


@router.get(
    "/predictions/{track_id}/arrivals",
    response_model=list[RegionArrivalOut],
    responses=_404,
    summary="Arrival per geofence",
)
async def prediction_arrivals(track_id: int, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    _, _, arrivals = await load_prediction(store, track_id)
    return JSONResponse(sorted(arrivals, key=lambda a: -a["probability"]))


@router.get(
    "/arrivals",
    response_model=Page[ArrivalRowOut],
    summary="Predicted arrivals of all current tracks at the geofences",
)
async def all_arrivals(
    store: Annotated[Any, Depends(get_store)],
    geofence_id: Annotated[str | None, Query(description="Only arrivals at this geofence.")] = None,
    min_probability: Annotated[
        float, Query(ge=0, le=1, description="Only arrivals at least this likely.")
    ] = 0.0,
) -> JSONResponse:
    """One row per (track, geofence) with a predicted entry, most likely first: who may arrive
    where, and when (earliest and median entry time, POSIX seconds)."""

    def load() -> list[dict[str, Any]]:
        rows = []
        for track in store.tracks(limit=1000, offset=0):
            payload = store.prediction(track.track_id)
            if payload is None:
                continue
            for a in prediction_parts(payload)[2]:
                if a["probability"] < min_probability or a["probability"] <= 0:
                    continue
                if geofence_id is None or a["geofence_id"] == geofence_id:
                    rows.append({"track_id": track.track_id, **a})
        return rows

    rows = await call(load)
    rows.sort(key=lambda r: (-r["probability"], r["earliest_s"] if r["earliest_s"] is not None else 0.0))
    return JSONResponse({"items": rows, "total": len(rows), "limit": len(rows), "offset": 0})
