"""Exports: tracks, a track's prediction and an incident as GeoJSON, KML, CZML or CSV files."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from stratowatch.api import formats
from stratowatch.api.deps import call, get_store
from stratowatch.api.errors import not_found
from stratowatch.api.models import ErrorBody
from stratowatch.api.routers.predictions import load_prediction
from stratowatch.api.routers.tracks import track_filters
from stratowatch.model import TrackStatus

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

Format = Literal["geojson", "kml", "czml", "csv"]
_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file.",
        "content": {media: {} for media in formats.MEDIA_TYPES.values()},
    }
}
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "Not found."}}


def _file(body: Any, fmt: str, stem: str) -> Response:
    text = json.dumps(body) if isinstance(body, dict) else str(body)
    return Response(
        text,
        media_type=formats.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'},
    )


@router.get("/tracks.{fmt}", responses=_FILE, summary="Export current tracks")
async def export_tracks(
    fmt: Format,
    filters: Annotated[dict[str, Any], Depends(track_filters)],
    store: Annotated[Any, Depends(get_store)],
    history: Annotated[bool, Query(description="Include each track's stored history.")] = False,
    limit: Annotated[int, Query(ge=1, le=10000, description="At most this many tracks.")] = 1000,
) -> Response:
    """The current tracks matching the same filters as ``/api/v1/tracks``; with ``history`` the
    past states too (GeoJSON/KML lines, animated CZML, one CSV row per state)."""

    def load() -> tuple[list[Any], dict[int, list[Any]]]:
        tracks = list(store.tracks(**filters, limit=None))
        if filters["status"] is None:  # as /api/v1/tracks: the live ones unless ended are asked for
            tracks = [t for t in tracks if t.status != TrackStatus.ENDED]
        tracks = tracks[:limit]
        histories = {t.track_id: list(store.track_history(t.track_id)) for t in tracks} if history else {}
        return tracks, histories

    tracks, histories = await call(load)
    if fmt == "geojson":
        return _file(formats.tracks_geojson(tracks, histories), fmt, "tracks")
    if fmt == "kml":
        return _file(formats.tracks_kml(tracks, histories), fmt, "tracks")
    if fmt == "czml":
        return _file(formats.tracks_czml(tracks, histories), fmt, "tracks")
    return _file(formats.tracks_csv(tracks, histories), fmt, "tracks")


@router.get(
    "/predictions/{track_id}.{fmt}", responses={**_FILE, **_404}, summary="Export a track's prediction"
)
async def export_prediction(
    track_id: int, fmt: Format, store: Annotated[Any, Depends(get_store)]
) -> Response:
    _, geojson, arrivals = await load_prediction(store, track_id)
    stem = f"prediction-{track_id}"
    if fmt == "geojson":
        return _file(formats.prediction_geojson(track_id, geojson, arrivals), fmt, stem)
    if fmt == "kml":
        return _file(formats.prediction_kml(track_id, geojson, arrivals), fmt, stem)
    if fmt == "czml":
        return _file(formats.prediction_czml(track_id, geojson, arrivals), fmt, stem)
    return _file(formats.prediction_csv(track_id, geojson, arrivals), fmt, stem)


@router.get("/incidents/{incident_id}.{fmt}", responses={**_FILE, **_404}, summary="Export an incident")
async def export_incident(
    incident_id: str, fmt: Format, store: Annotated[Any, Depends(get_store)]
) -> Response:
    """The incident, its alerts and its tracks with their histories (CSV: the timeline)."""

    def load() -> tuple[Any, list[Any], list[Any], dict[int, list[Any]]] | None:
        incident = store.incident(incident_id)
        if incident is None:
            return None
        alerts = [a for a in (store.alert(aid) for aid in incident.alert_ids) if a is not None]
        tracks = [t for t in (store.track(tid) for tid in incident.track_ids) if t is not None]
        histories = {t.track_id: list(store.track_history(t.track_id)) for t in tracks}
        return incident, alerts, tracks, histories

    loaded = await call(load)
    if loaded is None:
        raise not_found("incident", incident_id)
    incident, alerts, tracks, histories = loaded
    stem = f"incident-{incident_id}"
    if fmt == "geojson":
        return _file(formats.incident_geojson(incident, alerts, tracks, histories), fmt, stem)
    if fmt == "kml":
        return _file(formats.incident_kml(incident, alerts, tracks, histories), fmt, stem)
    if fmt == "czml":
        return _file(formats.incident_czml(incident, alerts, tracks, histories), fmt, stem)
    return _file(formats.incident_csv(incident, alerts, tracks, histories), fmt, stem)
