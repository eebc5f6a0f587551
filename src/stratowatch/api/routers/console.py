"""The analyst's console: the page at ``/``, its files under ``/static/``, what the viewer is
cleared to see (``/api/v1/console/whoami``, for the releasability banner) and a selected track's
back-trajectory (``/api/v1/console/backtrack/{track_id}``).

The clearance comes from the node's configured partners (``[[partners]]``): the partners and
releasability labels this node shares with. A node with no partners configured stands alone and
its viewer sees all it holds: the labels of its sensors. The banner reads "REL TO" and those
labels, or "PUBLIC RELEASE" when there are none beyond PUBLIC. The console shows the sensor sites
and geofences releasable to one of them. The partners/auth work replaces this with the
authenticated viewer's clearance.
"""

from __future__ import annotations

import mimetypes
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from stratowatch.api.convert import json_safe
from stratowatch.api.deps import call, get_pipeline, scoped_store
from stratowatch.api.errors import ApiError, not_found
from stratowatch.model import Track
from stratowatch.web import static_files

router = APIRouter(tags=["console"])

_FILES = static_files()
_MEDIA = {".json": "application/json", ".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def _media_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    return _MEDIA.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@router.get("/", include_in_schema=False)
async def index(request: Request) -> Response:
    """The console for a signed-in viewer; the sign-in form otherwise. ``?login=<one-time
    token>`` (printed by ``stratowatch serve``) opens a session once."""
    from stratowatch.api.routers.auth import console_login, login_page

    token = request.query_params.get("login")
    if token:
        return await console_login(request, token)
    if getattr(request.state, "principal", None) is None:
        failed = request.query_params.get("failed")
        return login_page("Sign-in failed." if failed else "")
    page = _FILES.get("index.html")
    if page is None:
        raise not_found("console page", "index.html")
    return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    """One built file of the console (the names are fixed at start-up: no path is ever joined)."""
    path = _FILES.get(name)
    if path is None:
        raise not_found("console file", name)
    return FileResponse(path, media_type=_media_type(name), headers={"Cache-Control": "no-cache"})


def clearance(settings: Any, sensors: Iterable[Any] = ()) -> list[str]:
    """The labels beyond PUBLIC the viewer may see, sorted: the configured partners' ids and
    releasability labels, or with no partners the labels of the node's own ``sensors``."""
    labels: set[str] = set()
    partners = list(getattr(settings, "partners", None) or ())
    for partner in partners:
        labels.add(str(partner.id))
        labels.update(str(label) for label in partner.releasable_to)
    if not partners:
        for sensor in sensors:
            labels.update(str(label) for label in sensor.releasable_to)
    labels.discard("PUBLIC")
    return sorted(labels)


@router.get("/api/v1/console/whoami", summary="Who the console viewer is and what it is cleared to see")
async def whoami(request: Request, pipeline: Annotated[Any, Depends(get_pipeline)]) -> JSONResponse:
    """``{"subject", "partner", "kind", "scopes", "releasable_to": ["PUBLIC", ...], "banner":
    "REL TO CAN, USA", "partners": [...]}``: the signed-in principal, the labels it may see (the
    node's own people: all the node shares; a partner's: PUBLIC and its own code), the banner
    text and the configured partner ids."""
    settings = getattr(pipeline, "settings", None)
    principal = request.state.principal
    partners = [str(p.id) for p in getattr(settings, "partners", None) or ()]
    if principal.is_own:
        sensors = [] if partners else await call(pipeline.store.sensors)
        labels = clearance(settings, sensors)
    else:
        labels = sorted({str(principal.partner)} - {"PUBLIC"})
    banner = f"REL TO {', '.join(labels)}" if labels else "PUBLIC RELEASE"
    return JSONResponse(
        {
            "subject": principal.subject,
            "partner": principal.partner,
            "kind": principal.kind,
            "scopes": sorted(principal.scopes),
            "releasable_to": ["PUBLIC", *labels],
            "banner": banner,
            "partners": partners,
        }
    )


# ----------------------------------------------------------------------------- back-trajectory

#: Latest back-trajectories by (track id, track time, hours, members): a console re-selecting a
#: track, or several consoles selecting the same one, share one computation.
_BACKTRACKS: OrderedDict[tuple[int, float, float, int], dict[str, Any]] = OrderedDict()
_BACKTRACKS_KEPT = 64
_BACKTRACK_LOCK = threading.Lock()  # one ensemble at a time: the pipeline needs the cores
#: Ensemble members returned as lines (spaghetti), evenly spread over the members.
SPAGHETTI = 30


def backtrack_geojson(winds: Any, track: Track, hours: float, members: int) -> dict[str, Any]:
    """Where ``track`` came from: a backward float ensemble on ``winds`` from its current state.

    A FeatureCollection (as the forward predictions': ``median_path`` and ``deterministic_path``
    lines with ``"backward": true``, the 50 %/90 % ``cone`` source regions at the earliest time
    reached, and up to :data:`SPAGHETTI` ``member`` lines), with ``properties`` ``members``,
    ``source``, ``notes``, ``hours``, ``time_s`` (the track's time) and ``earliest_s``."""
    from stratowatch.prediction import TrackState
    from stratowatch.prediction.backtrack import back_trajectory
    from stratowatch.prediction.output import to_geojson

    e, n, _ = track.velocity_enu_mps
    state = TrackState(
        time_s=track.time_s,
        lat_deg=track.lat_deg,
        lon_deg=track.lon_deg,
        alt_m=track.alt_m,
        velocity_east_mps=e,
        velocity_north_mps=n,
    )
    cov = np.diag(np.square(np.asarray(track.position_sigma_m, dtype=np.float64)))
    with _BACKTRACK_LOCK:
        src = back_trajectory(winds, state, hours, members, covariance=cov, seed=track.track_id)
    doc = to_geojson(src.prediction, src.regions)
    from stratowatch.prediction.output import member_lines

    pred = src.prediction
    doc["features"].extend(member_lines(pred, SPAGHETTI, backward=True))
    doc["properties"].update({"hours": hours, "time_s": track.time_s, "earliest_s": src.time_s})
    return doc


@router.get(
    "/api/v1/console/backtrack/{track_id}",
    summary="Where a drifting track came from (back-trajectory)",
    responses={404: {"description": "No such track."}, 409: {"description": "No wind field."}},
)
async def backtrack(
    track_id: int,
    request: Request,
    pipeline: Annotated[Any, Depends(get_pipeline)],
    hours: Annotated[float, Query(gt=0, le=120, description="How far back (h).")] = 24.0,
    members: Annotated[int, Query(ge=10, le=2000, description="Ensemble members.")] = 200,
) -> JSONResponse:
    """A backward float ensemble from the track's latest state on the service's wind field: the
    median and deterministic paths back ``hours`` and the 50 %/90 % source regions (GeoJSON)."""
    winds = getattr(pipeline, "winds", None)
    if winds is None:
        raise ApiError(409, "no_winds", "the service has no wind field for back-trajectories", {})
    track = await call(scoped_store(request).track, track_id)
    if track is None:
        raise not_found("track", track_id)
    key = (track_id, float(track.time_s), float(hours), int(members))
    doc = _BACKTRACKS.get(key)
    if doc is None:
        try:
            doc = await call(backtrack_geojson, winds, track, hours, members)
        except ValueError as exc:  # the wind field does not cover the track's time or place
            raise ApiError(422, "no_back_trajectory", str(exc), {"track_id": track_id}) from None
        _BACKTRACKS[key] = doc
        while len(_BACKTRACKS) > _BACKTRACKS_KEPT:
            _BACKTRACKS.popitem(last=False)
    return JSONResponse(json_safe(doc))
