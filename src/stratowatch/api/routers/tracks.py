"""Tracks: the current picture (filtered, paged), one track, its history, history in a box."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from stratowatch.api.convert import track_json
from stratowatch.api.deps import Paging, audience_of, call, fetch_page, get_store, page, paging, parse_bbox
from stratowatch.api.errors import invalid_parameter, not_found
from stratowatch.api.models import ErrorBody, Page, TrackOut
from stratowatch.api.picture import page_bytes

router = APIRouter(prefix="/api/v1", tags=["tracks"])

StatusParam = Literal["tentative", "confirmed", "coasting", "ended"]
ClassParam = Literal["balloon", "aircraft", "unknown"]
BBOX_HELP = "Box 'min_lat,min_lon,max_lat,max_lon' in degrees."


async def track_filters(
    status: Annotated[StatusParam | None, Query(description="Track status.")] = None,
    cls: Annotated[ClassParam | None, Query(alias="class", description="Object class.")] = None,
    min_alt_m: Annotated[float | None, Query(description="Lowest altitude (m).")] = None,
    max_alt_m: Annotated[float | None, Query(description="Highest altitude (m).")] = None,
    bbox: Annotated[str | None, Query(description=BBOX_HELP)] = None,
    since_s: Annotated[
        float | None, Query(description="Only tracks updated at or after this POSIX time.")
    ] = None,
    identity: Annotated[
        str | None, Query(description="Regular expression on identities, e.g. '^icao:'.")
    ] = None,
) -> dict[str, Any]:
    """The filters of the current-tracks query, checked (shared with the exports)."""
    if min_alt_m is not None and max_alt_m is not None and min_alt_m > max_alt_m:
        raise invalid_parameter("min_alt_m", f"{min_alt_m} is above max_alt_m {max_alt_m}")
    if identity is not None:
        try:
            re.compile(identity)
        except re.error as exc:
            raise invalid_parameter("identity", f"not a regular expression: {exc}") from None
    return {
        "status": status,
        "cls": cls,
        "min_alt_m": min_alt_m,
        "max_alt_m": max_alt_m,
        "bbox": parse_bbox(bbox),
        "since_s": since_s,
        "identity_regex": identity,
    }


_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such track."}}


@router.get("/tracks", response_model=Page[TrackOut], summary="Live tracks")
async def list_tracks(
    request: Request,
    filters: Annotated[dict[str, Any], Depends(track_filters)],
    paging: Annotated[Paging, Depends(paging)],
    store: Annotated[Any, Depends(get_store)],
) -> Response:
    """The live tracks matching the filters, by track id; ``status=ended`` lists the ended ones.

    Live tracks come from the API's in-memory picture (updated by every pipeline step), ended
    ones from the store."""
    if filters["status"] != "ended":
        encoded, total = await request.app.state.pictures.get(audience_of(request)).query(
            **filters, limit=paging.limit, offset=paging.offset
        )
        return Response(
            page_bytes(encoded, total, paging.limit, paging.offset), media_type="application/json"
        )

    def fetch(limit: int, offset: int) -> list[Any]:
        return list(store.tracks(**filters, limit=limit, offset=offset))

    counter = getattr(store, "count_tracks", None)
    count = (lambda: int(counter(**filters))) if counter is not None else None
    tracks, total = await fetch_page(fetch, paging, count)
    return JSONResponse(page([track_json(t) for t in tracks], total, paging))


@router.get("/tracks/{track_id}", response_model=TrackOut, responses=_404, summary="One track")
async def get_track(track_id: int, store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
    track = await call(store.track, track_id)
    if track is None:
        raise not_found("track", track_id)
    return JSONResponse(track_json(track))


@router.get(
    "/tracks/{track_id}/history",
    response_model=Page[TrackOut],
    responses=_404,
    summary="A track's past states",
)
async def track_history(
    track_id: int,
    paging: Annotated[Paging, Depends(paging)],
    store: Annotated[Any, Depends(get_store)],
    t0: Annotated[float | None, Query(description="From this POSIX time.")] = None,
    t1: Annotated[float | None, Query(description="Up to this POSIX time.")] = None,
) -> JSONResponse:
    """The stored states of one track in time order (one per tracker update)."""
    if t0 is not None and t1 is not None and t0 > t1:
        raise invalid_parameter("t0", f"{t0} is after t1 {t1}")
    states = await call(store.track_history, track_id, t0, t1)
    if not states and await call(store.track, track_id) is None:
        raise not_found("track", track_id)
    chunk = states[paging.offset : paging.offset + paging.limit]
    return JSONResponse(page([track_json(t) for t in chunk], len(states), paging))


@router.get("/history", response_model=Page[TrackOut], summary="Track states in a time window and box")
async def history_in_box(
    t0: Annotated[float, Query(description="From this POSIX time.")],
    t1: Annotated[float, Query(description="Up to this POSIX time.")],
    bbox: Annotated[str, Query(description=BBOX_HELP)],
    paging: Annotated[Paging, Depends(paging)],
    store: Annotated[Any, Depends(get_store)],
) -> JSONResponse:
    """Every stored track state inside the box during [t0, t1] (who was over the site when)."""
    if t0 > t1:
        raise invalid_parameter("t0", f"{t0} is after t1 {t1}")
    box = parse_bbox(bbox)
    states = await call(store.history_in_box, t0, t1, box)
    chunk = states[paging.offset : paging.offset + paging.limit]
    return JSONResponse(page([track_json(t) for t in chunk], len(states), paging))
