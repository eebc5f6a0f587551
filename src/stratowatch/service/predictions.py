"""Drift predictions for the live picture, run off the event loop in a process pool.

:class:`PredictionScheduler` decides which tracks need a (new) prediction: confirmed tracks of
the configured classes (balloon and unknown by default) with at least ``MIN_UPDATES`` updates
that have none yet, whose last one is older than ``every_s`` of data time, that moved more than
``moved_m`` from where it started, or whose class changed. It submits each to a
:class:`~concurrent.futures.ProcessPoolExecutor` (spawn context: a worker gets the wind field
once, from the pool's initializer, and each job carries its track and the geofences).
:meth:`~PredictionScheduler.collect` returns the finished ones; nothing here ever waits for a
worker, so ingest is never blocked. At most one job per track is in flight.

The payload stored and published for a track (JSON-able)::

    {"track_id", "time_s", "hours", "members", "source", "notes",
     "geojson": FeatureCollection (cones every 6 h at 50 % and 90 %, median and deterministic paths,
                 30 ensemble members as lines: properties.kind == "member"),
     "median_path": [[lon, lat, alt_m], ...],
     "arrivals": [{"geofence_id", "name", "probability", "earliest_s", "median_s"}, ...]}

``arrivals`` lists the circle and polygon geofences (as they are when the job is submitted)
that some member enters (the alert engine's predicted-entry rule reads it); a failed run gives
``{"error": "..."}`` instead. The wind field reaches each worker once, by the pool's initializer.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from stratowatch.config import PredictionSettings
from stratowatch.geo import haversine_m
from stratowatch.model import Geofence, Track, TrackStatus
from stratowatch.weather.grid import WindGrid

log = logging.getLogger(__name__)

#: Updates a track needs before it is predicted (the classifier's "too early to say" below).
MIN_UPDATES = 4


@dataclass(frozen=True, slots=True)
class PredictionJob:
    """Everything a worker needs about one track (picklable, small)."""

    track_id: int
    time_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float
    velocity_east_mps: float
    velocity_north_mps: float
    position_sigma_m: tuple[float, float, float]
    hours: float
    members: int
    seed: int
    regions: tuple[tuple[str, str, str, tuple[Any, ...]], ...] = ()


def regions_of(geofences: Sequence[Geofence]) -> list[tuple[str, str, str, tuple[Any, ...]]]:
    """Plain (picklable) region specs (id, name, kind, data) for circles and polygons."""
    out: list[tuple[str, str, str, tuple[Any, ...]]] = []
    for g in geofences:
        if g.kind == "circle" and g.coordinates and g.radius_m > 0:
            lat, lon = g.coordinates[0]
            out.append((g.geofence_id, g.name, "circle", (lat, lon, g.radius_m)))
        elif g.kind == "polygon" and len(g.coordinates) >= 3:
            out.append((g.geofence_id, g.name, "polygon", tuple(g.coordinates)))
    return out


# ----------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


def init_worker(grid: WindGrid) -> None:
    """Process-pool initializer: keep the wind field (sent once per worker)."""
    _WORKER["grid"] = grid


def _regions(specs: Sequence[tuple[str, str, str, tuple[Any, ...]]]) -> list[Any]:
    from stratowatch.prediction import Region

    built = []
    for gid, _name, kind, data in specs:
        if kind == "circle":
            built.append(Region.circle(gid, data[0], data[1], data[2]))
        else:
            built.append(Region.polygon(gid, [p[0] for p in data], [p[1] for p in data]))
    return built


#: Ensemble members stored with each prediction as lines, for the console's spaghetti.
SPAGHETTI_MEMBERS = 30


def run_job_on(grid: WindGrid, job: PredictionJob) -> dict[str, Any]:
    """:func:`run_job` with the wind field passed in (a Dask task gets it scattered once)."""
    return run_job(job, grid)


def run_job(job: PredictionJob, grid: WindGrid | None = None) -> dict[str, Any]:
    """Run one ensemble in a worker (after :func:`init_worker`, or on ``grid``) and build the
    payload. The ensemble is seeded by the job: the same payload wherever it runs."""
    from stratowatch.prediction import TrackState, cones, predict_track, region_arrival
    from stratowatch.prediction.output import cone_lead_indices, member_lines, to_geojson

    if grid is None:
        grid = _WORKER["grid"]
    names = {gid: name for gid, name, _k, _d in job.regions}
    base: dict[str, Any] = {
        "track_id": job.track_id,
        "time_s": job.time_s,
        "hours": job.hours,
        "members": job.members,
    }
    try:
        state = TrackState(
            time_s=job.time_s,
            lat_deg=job.lat_deg,
            lon_deg=job.lon_deg,
            alt_m=job.alt_m,
            velocity_east_mps=job.velocity_east_mps,
            velocity_north_mps=job.velocity_north_mps,
        )
        cov = np.diag(np.square(np.asarray(job.position_sigma_m, dtype=np.float64)))
        pred = predict_track(state, cov, grid, job.hours, job.members, seed=job.seed)
        cone_list = cones(pred, time_index=cone_lead_indices(pred))
        arrivals = region_arrival(pred, _regions(job.regions)) if job.regions else []
    except Exception as exc:  # a worker must answer: the error goes into the payload and the log
        return {**base, "error": f"{type(exc).__name__}: {exc}"}
    mlat, mlon, malt = pred.median_path()
    ok = np.isfinite(mlat) & np.isfinite(mlon)
    doc = to_geojson(pred, cone_list, [a for a in arrivals if a.probability > 0])
    doc["features"].extend(member_lines(pred, SPAGHETTI_MEMBERS))
    return {
        **base,
        "source": pred.source,
        "notes": list(pred.notes),
        "geojson": doc,
        "median_path": np.round(np.stack([mlon[ok], mlat[ok], malt[ok]], axis=1), 5).tolist(),
        "median_path_time_s": pred.time_s[ok].tolist(),
        "arrivals": [
            {
                "geofence_id": a.name,
                "name": names.get(a.name, a.name),
                "probability": float(a.probability),
                "earliest_s": float(a.earliest_time_s),
                "median_s": float(a.median_time_s),
            }
            for a in arrivals
            if a.probability > 0
        ],
    }


# ----------------------------------------------------------------------------- service side


@dataclass(slots=True)
class _Last:
    time_s: float
    lat_deg: float
    lon_deg: float
    label: str


def dask_executor(settings: PredictionSettings) -> Any:
    """The :class:`~stratowatch.prediction.executors.DaskExecutor` of ``dask_scheduler``, or None."""
    if not settings.dask_scheduler:
        return None
    from stratowatch.prediction.executors import DaskExecutor

    return DaskExecutor(settings.dask_scheduler)


class PredictionScheduler:
    """Decides, submits and collects predictions; never waits for a worker.

    ``executor``: a :class:`concurrent.futures.Executor` whose workers ran :func:`init_worker`,
    or an :class:`~stratowatch.prediction.executors.EnsembleExecutor` (``LocalExecutor``,
    ``DaskExecutor``: the wind field is shared with its workers once). None: a Dask cluster when
    ``settings.dask_scheduler`` names one, else a spawn process pool of ``settings.workers``."""

    def __init__(
        self,
        settings: PredictionSettings,
        grid: WindGrid,
        geofences: Sequence[Geofence] = (),
        executor: Executor | Any | None = None,
    ) -> None:
        self.settings = settings
        self.grid = grid
        self.set_geofences(geofences)
        if executor is None:
            executor = dask_executor(settings)
        #: the wind field as the executor's tasks take it (EnsembleExecutor), else None
        self._shared_grid: Any = executor.share(grid) if hasattr(executor, "share") else None
        if executor is None:
            executor = ProcessPoolExecutor(
                max_workers=settings.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker,
                initargs=(grid,),
            )
        self._executor = executor
        self._in_flight: dict[int, Future[dict[str, Any]]] = {}
        self._last: dict[int, _Last] = {}
        self.submitted = 0
        self.completed = 0
        self.failed = 0

    def set_geofences(self, geofences: Sequence[Geofence]) -> None:
        """The geofences whose arrival the next predictions report."""
        self.regions = tuple(regions_of(geofences))

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def due(self, time_s: float, tracks: Sequence[Track]) -> list[Track]:
        """Tracks that need a new prediction now."""
        cfg = self.settings
        out = []
        for t in tracks:  # the few confirmed balloon/unknown tracks, not the whole picture
            if t.status != TrackStatus.CONFIRMED or t.classification is None or t.n_updates < MIN_UPDATES:
                continue  # an unknown that is only "too early to say" waits for its class
            label = t.classification.label.name.lower()
            if label not in cfg.classes or t.track_id in self._in_flight:
                continue
            last = self._last.get(t.track_id)
            if (
                last is None
                or time_s - last.time_s >= cfg.every_s
                or last.label != label
                or float(haversine_m(last.lat_deg, last.lon_deg, t.lat_deg, t.lon_deg)) >= cfg.moved_m
            ):
                out.append(t)
        return out

    def schedule(self, time_s: float, tracks: Sequence[Track]) -> int:
        """Submit every due track; returns how many were submitted."""
        n = 0
        for t in self.due(time_s, tracks):
            label = t.classification.label.name.lower() if t.classification else "unknown"
            job = PredictionJob(
                track_id=t.track_id,
                time_s=float(t.time_s),
                lat_deg=t.lat_deg,
                lon_deg=t.lon_deg,
                alt_m=t.alt_m if math.isfinite(t.alt_m) else math.nan,
                velocity_east_mps=t.velocity_enu_mps[0],
                velocity_north_mps=t.velocity_enu_mps[1],
                position_sigma_m=t.position_sigma_m,
                hours=self.settings.hours,
                members=self.settings.members,
                seed=t.track_id,
                regions=self.regions,
            )
            if self._shared_grid is not None:
                self._in_flight[t.track_id] = self._executor.submit(run_job_on, self._shared_grid, job)
            else:
                self._in_flight[t.track_id] = self._executor.submit(run_job, job)
            self._last[t.track_id] = _Last(float(t.time_s), t.lat_deg, t.lon_deg, label)
            self.submitted += 1
            n += 1
        return n

    def collect(self) -> list[dict[str, Any]]:
        """Payloads of the jobs that have finished (non-blocking)."""
        out = []
        for tid, fut in list(self._in_flight.items()):
            if not fut.done():
                continue
            del self._in_flight[tid]
            try:
                payload = fut.result()
            except Exception as exc:  # the worker died (or was killed): log, retry on schedule
                log.warning("prediction for track %d failed: %s", tid, exc)
                self._last.pop(tid, None)
                self.failed += 1
                continue
            if "error" in payload:
                log.warning("prediction for track %d: %s", tid, payload["error"])
                self.failed += 1
            else:
                self.completed += 1
            out.append(payload)
        return out

    def forget(self, track_ids: Mapping[int, Any] | Sequence[int]) -> None:
        """Drop the bookkeeping of ended tracks."""
        for tid in track_ids:
            self._last.pop(int(tid), None)

    def wait(self, timeout_s: float) -> None:
        """Wait (tests, shutdown) until every job in flight has finished or ``timeout_s``."""
        from concurrent.futures import wait

        if self._in_flight:
            wait(list(self._in_flight.values()), timeout=timeout_s)

    def close(self) -> None:
        shutdown = getattr(self._executor, "shutdown", None)
        if shutdown is not None:
            shutdown(wait=True, cancel_futures=True)
        else:  # an EnsembleExecutor
            cast(Any, self._executor).close()
