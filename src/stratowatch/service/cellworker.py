"""Scale-out: the ingest role routes observations to geographic cells; tracker workers own cells.

**Cells.** The world is cut into the fixed cells of :class:`~stratowatch.service.cells.CellGrid`
(``[scale] cell_size_deg``). :func:`route` gives each observation its cell: GEODETIC and
GROUND_2D ones by their position, radar plots by the position their range, azimuth and elevation
(or Mode C height) give from their sensor's site (as the store places them). An observation
within ``halo_km`` of its cell's edge is also sent to the neighbouring cell(s) it is near: that is
how a track about to leave a cell still meets the plots just across the edge (association
across the edge), and how the neighbour's track meets them once it has arrived.

**Ingest role** (:func:`run_ingest_role`): the configured sources fill a bounded
:class:`~stratowatch.service.app.FeedBuffer`; every ``pipeline.step_s`` what it holds is routed
and published, one columnar message per cell on ``sw.cell.<cell>.obs`` (stream ``SW_CELLS``),
with the full observation (labels, originator, callsign, source) and each observation's id
(:func:`~stratowatch.service.bus_nats.observation_id`, a content hash). The message id is a hash
of the ids it carries, so a re-publish is stored once. Only when the stream has acknowledged
every message of a step is the step counted as taken (feeds that acknowledge, MQTT QoS 1, then
acknowledge upstream): an accepted observation is either in the stream (file storage) or comes
again. Observations no cell can hold (a radar plot whose sensor has no site, local x/y/z plots)
go to the store's quarantine with the reason, never silently away. The ingest role writes no
observations to the store: the tracker workers commit them with the tracks they made.

**Tracker workers** (:class:`CellWorker`, :func:`run_track_role`): a worker claims cells in the
store (``cell_leases``: free or expired ones, of ``[scale] cells`` or of every cell with
messages), renews its leases every ``lease_s / 3`` and runs one :class:`~stratowatch.tracking.Tracker`
per cell, numbering that cell's tracks in its own block (:func:`first_track_id`), so ids are
unique across the deployment. Per cell it consumes the durable consumer ``sw-cell-<cell>``
(observations and hand-overs of the cell, in stream order) and, for each fetched batch:

1. steps the tracker once per message (hand-overs are imported in their place in the order);
   observations whose id the cell applied recently are dropped (idempotent by observation id);
2. hands over the confirmed tracks whose position left the cell (below) and drops tentative ones
   born outside it (from halo plots: the neighbour tracks those);
3. commits, in **one transaction** and only while its lease row still names the worker
   (:meth:`~stratowatch.store.base.Store.commit_cell`, :class:`~stratowatch.store.base.LeaseLost`
   otherwise): the observations (each stored once, by id), the reported tracks' states, the
   tracks that ended, and the cell's snapshot (pickled tracker + the last applied stream sequence)
   under ``cell.<cell>``;
4. publishes the cell's picture on ``tracks`` (``sw.tracks``): ``{"time_s", "audience": "",
   "cell", "tracks": [...], "ended": [ids], "handed": [ids]}``, the tracks classified as the
   single process classifies them (motion models, identities, the emitter categories the cell
   has seen, the wind match when ``pipeline.classify_with_winds``): what the predict and alert
   roles and the API streams follow (message id: cell and stream position, so a replay after a
   crash publishes it once; a large cell goes in parts, see
   :func:`~stratowatch.service.bus_nats.split_event`);
5. **then** acknowledges the messages.

A worker that dies (``kill -9``) stops renewing; once its leases expire another worker claims the
cells, restores each snapshot and re-creates the cell's durable consumer at the snapshot's
stream sequence + 1 (so no message is skipped, even those the dead worker had fetched and not
acknowledged). What was committed is never applied again (messages at or below the snapshot's
sequence are acknowledged and skipped; observations stored already are not stored twice) and
what was not committed is delivered again: no acknowledged observation is lost or applied twice,
and tracks keep their ids because they live in the snapshot.

**Hand-over.** After each step, a confirmed track whose position (at its last update) lies in
another cell is exported with its full state (:meth:`Tracker.export_tracks`: IMM states,
covariances, model probabilities, counters, identity and sensors by name) and published on
``sw.cell.<new cell>.handover`` (message id: cell, track id and update time, so a replay after a
crash publishes it once), before the commit that removes it here. The receiving worker imports it
with its id (:meth:`Tracker.import_tracks`) and merges it with a local track of the same object
born meanwhile from the plots across the edge: the older track (earlier first update) keeps its
id, the younger one goes (ended in the store if it had been reported).

This is the node's own picture only: the per-partner releasability views of
:class:`~stratowatch.service.pipeline.Pipeline` (one tracker per audience) stay single-node. The
workers do not predict or raise alerts (the predict and alert roles do, from ``sw.tracks``). Tracks of a cell
coast and end when the cell's next message arrives (data time), not on the wall clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from stratowatch import geo
from stratowatch.config import Settings
from stratowatch.ingest.base import QuarantineRecord
from stratowatch.model import (
    IdentityCodes,
    MeasurementKind,
    Observation,
    ObservationBatch,
    Sensor,
    SourceRef,
    Track,
    TrackStatus,
)
from stratowatch.service.cells import CellGrid
from stratowatch.service.history import HistoryMarks
from stratowatch.service.serialize import track_to_json
from stratowatch.tracking import Tracker
from stratowatch.weather.grid import WindGrid

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Track ids of cell ``c`` are ``CELL_ID_BASE + c * CELL_ID_BLOCK + 1 ...``: above the blocks of
#: the single-node pictures (``pipeline.ID_BLOCK`` per audience) and, for the finest grid
#: (0.1 degree, 6.48 million cells), still below 2**53 (exact in JSON numbers).
CELL_ID_BASE = 10**12
CELL_ID_BLOCK = 10**9
STATE_VERSION = 1
#: ``cell_leases`` ids at or below this are tracker workers' presence rows (-1: the alert role).
PRESENCE_MAX = -1_000_000
#: How many recent observation ids a cell remembers to drop repeats (a re-published observation).
RECENT_IDS = 50_000
_POLAR = (int(MeasurementKind.POLAR), int(MeasurementKind.POLAR_HEIGHT))
_PLACED = (int(MeasurementKind.GEODETIC), int(MeasurementKind.GROUND_2D))
_VALUE_LEN = {
    int(MeasurementKind.GEODETIC): 3,
    int(MeasurementKind.GROUND_2D): 2,
    int(MeasurementKind.POLAR): 3,
    int(MeasurementKind.POLAR_HEIGHT): 3,
    int(MeasurementKind.LOCAL_XYZ): 3,
}
_KM_PER_DEG = 111.195


def presence_id(worker_id: str) -> int:
    """The reserved ``cell_leases`` id of a worker's presence row (at most :data:`PRESENCE_MAX`)."""
    digest = hashlib.blake2b(worker_id.encode(), digest_size=6).digest()
    return PRESENCE_MAX - int.from_bytes(digest, "big")


def first_track_id(cell_id: int) -> int:
    """The first track id of a cell's block."""
    return CELL_ID_BASE + int(cell_id) * CELL_ID_BLOCK + 1


def state_key(cell_id: int) -> str:
    """Where a cell's snapshot is kept in the store."""
    return f"cell.{int(cell_id)}"


def consumer_name(cell_id: int) -> str:
    return f"sw-cell-{int(cell_id)}"


# --------------------------------------------------------------------------- routing


def _as_batch(observations: ObservationBatch | Sequence[Observation]) -> ObservationBatch:
    if isinstance(observations, ObservationBatch):
        return observations
    return ObservationBatch.from_observations(observations, IdentityCodes())


def positions(
    observations: ObservationBatch | Sequence[Observation], sensors: Mapping[str, Sensor] | None = None
) -> tuple[FloatArray, FloatArray]:
    """(lat, lon) of every observation, NaN where it cannot be placed: GEODETIC and GROUND_2D by
    their value, radar plots from their sensor's site (none known: NaN), local x/y/z never."""
    batch = _as_batch(observations)
    n = len(batch)
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    if not n:
        return lat, lon
    kind = batch.kind.astype(np.int64)
    placed = np.isin(kind, _PLACED)
    lat[placed] = batch.value[placed, 0]
    lon[placed] = batch.value[placed, 1]
    polar = np.flatnonzero(np.isin(kind, _POLAR))
    if polar.size and sensors:
        nan3 = (math.nan, math.nan, math.nan)
        sites = np.array(
            [
                (s.lat_deg, s.lon_deg, s.alt_m)
                if (s := sensors.get(sid)) is not None and s.has_site
                else nan3
                for sid in batch.sensor_ids
            ],
            dtype=np.float64,
        ).reshape(-1, 3)
        site = sites[batch.sensor_index[polar]]
        ok = np.all(np.isfinite(site), axis=1)
        rows, site = polar[ok], site[ok]
        if rows.size:
            value = batch.value[rows].copy()
            height = kind[rows] == int(MeasurementKind.POLAR_HEIGHT)
            if np.any(height):
                value[height, 2] = geo.elevation_for_altitude(
                    value[height, 0], value[height, 2], site[height, 2]
                )
            lla = geo.ecef_to_geodetic(geo.polar_to_ecef(value, site[:, 0], site[:, 1], site[:, 2]))
            lat[rows] = lla[:, 0]
            lon[rows] = lla[:, 1]
    return lat, lon


def route(
    observations: ObservationBatch | Sequence[Observation],
    grid: CellGrid,
    sensors: Mapping[str, Sensor] | None = None,
) -> IntArray:
    """The cell of every observation (vectorised; see :func:`positions`); -1 where none."""
    lat, lon = positions(observations, sensors)
    ok = np.isfinite(lat) & np.isfinite(lon)
    out = np.full(lat.shape[0], -1, dtype=np.int64)
    if np.any(ok):
        out[ok] = grid.cell_of(lat[ok], lon[ok])
    return out


def halo(
    lat: FloatArray, lon: FloatArray, cells: IntArray, grid: CellGrid, halo_km: float
) -> tuple[IntArray, IntArray]:
    """``(rows, neighbour_cells)``: every observation within ``halo_km`` of its cell's edge, once
    per neighbouring cell it is that near (edges and corners; longitude wraps, the poles do not)."""
    if halo_km <= 0 or not lat.size:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ok = cells >= 0
    size = grid.size_deg
    row, col = np.divmod(np.where(ok, cells, 0), grid.n_cols)
    lat0 = -90.0 + row * size
    lon0 = -180.0 + col * size
    lonw = (np.nan_to_num(lon) + 180.0) % 360.0 - 180.0
    dlat = halo_km / _KM_PER_DEG
    dlon = dlat / np.maximum(np.cos(np.radians(np.nan_to_num(lat))), 1e-3)
    latv = np.nan_to_num(lat)
    near_r = {
        -1: ok & (latv - lat0 < dlat) & (row > 0),
        0: ok,
        1: ok & (lat0 + size - latv < dlat) & (row < grid.n_rows - 1),
    }
    near_c = {-1: lonw - lon0 < dlon, 0: np.ones_like(ok), 1: lon0 + size - lonw < dlon}
    rows_out: list[IntArray] = []
    cells_out: list[IntArray] = []
    for dr, mr in near_r.items():
        for dc, mc in near_c.items():
            if dr == 0 and dc == 0:
                continue
            sel = np.flatnonzero(mr & mc)
            if sel.size:
                rows_out.append(sel)
                cells_out.append((row[sel] + dr) * grid.n_cols + (col[sel] + dc) % grid.n_cols)
    if not rows_out:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows, nb = np.concatenate(rows_out), np.concatenate(cells_out)
    keep = nb != cells[rows]  # a grid one cell wide wraps onto itself
    return rows[keep].astype(np.int64), nb[keep].astype(np.int64)


# --------------------------------------------------------------------------- cell messages


def _id_hash(ids: Sequence[str]) -> IntArray:
    """64-bit integers of observation ids (their first 16 hex digits), for set operations."""
    return np.array([int(i[:16], 16) if len(i) >= 16 else hash(i) for i in ids], dtype=np.uint64).view(
        np.int64
    )


def encode_cell_message(observations: Sequence[Observation], obs_ids: Sequence[str]) -> bytes:
    """Observations as one columnar cell message (the columns the tracker reads, plus in the
    header what the store keeps besides: ids, labels, originators, callsigns, sources)."""
    from stratowatch.service.bus_nats import encode_batch

    identities = IdentityCodes()
    batch = ObservationBatch.from_observations(observations, identities)
    labels: dict[tuple[str, ...], int] = {}
    origins: dict[str, int] = {}
    label_idx = [labels.setdefault(tuple(sorted(o.releasable_to)), len(labels)) for o in observations]
    origin_idx = [origins.setdefault(o.originator, len(origins)) for o in observations]
    callsigns = [o.callsign for o in observations]
    sources = [None if o.source is None else [o.source.source, o.source.position] for o in observations]
    extra = {
        "ids": list(obs_ids),
        "labels": [list(k) for k in labels],
        "label": label_idx,
        "originators": list(origins),
        "originator": origin_idx,
        "callsign": callsigns if any(c is not None for c in callsigns) else None,
        "source": sources if any(s is not None for s in sources) else None,
    }
    return encode_batch(batch, identities, extra)


def decode_cell_message(
    data: bytes, identities: IdentityCodes
) -> tuple[ObservationBatch, list[Observation], list[str]]:
    """A cell message as the tracker's batch (identities interned into ``identities``), the
    observations (for the store) and their ids, row for row."""
    from stratowatch.service.bus_nats import batch_extra, decode_batch

    batch = decode_batch(data, identities)
    extra = batch_extra(data)
    labels = [frozenset(x) for x in extra["labels"]]
    origins = [str(x) for x in extra["originators"]]
    callsign = extra.get("callsign")
    source = extra.get("source")
    obs: list[Observation] = []
    kinds = batch.kind.tolist()
    for i in range(len(batch)):  # edge conversion: one Observation per row, for the store
        k = int(kinds[i])
        sig = batch.sigma[i]
        vel = batch.velocity_enu_mps[i]
        src = None if source is None or source[i] is None else SourceRef(str(source[i][0]), int(source[i][1]))
        obs.append(
            Observation(
                float(batch.time_s[i]),
                batch.sensor_ids[int(batch.sensor_index[i])],
                MeasurementKind(k),
                tuple(float(v) for v in batch.value[i, : _VALUE_LEN[k]]),
                tuple(float(v) for v in sig[np.isfinite(sig)]),
                velocity_enu_mps=None
                if not np.isfinite(vel[0])
                else (float(vel[0]), float(vel[1]), float(vel[2])),
                velocity_sigma_mps=float(batch.velocity_sigma_mps[i]),
                identity=identities.name(int(batch.identity[i])),
                callsign=None if callsign is None else callsign[i],
                category=batch.category[i] if batch.category else None,
                releasable_to=labels[int(extra["label"][i])],
                originator=origins[int(extra["originator"][i])],
                source=src,
            )
        )
    return batch, obs, [str(x) for x in extra["ids"]]


def encode_handover(doc: Mapping[str, Any], from_cell: int) -> bytes:
    """Exported tracks (:meth:`Tracker.export_tracks`) as bytes: numpy arrays in an ``.npz``
    (no pickles: a message from the bus is never unpickled) and the strings as JSON."""
    buf = io.BytesIO()
    strings = ("models", "identity", "sensors", "categories")
    arrays = {k: np.asarray(v) for k, v in doc.items() if k not in strings}
    meta = {
        "from_cell": int(from_cell),
        "models": list(doc["models"]),
        "identity": list(doc["identity"]),
        "sensors": [list(s) for s in doc["sensors"]],
        "categories": dict(doc.get("categories") or {}),
    }
    arrays["_meta"] = np.array(json.dumps(meta))
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def decode_handover(data: bytes) -> tuple[dict[str, Any], int]:
    """The inverse of :func:`encode_handover`: (exported tracks, the cell they come from)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        doc: dict[str, Any] = {k: z[k] for k in z.files if k != "_meta"}
        meta = json.loads(str(z["_meta"]))
    doc.update(
        models=meta["models"],
        identity=meta["identity"],
        sensors=meta["sensors"],
        categories=dict(meta.get("categories") or {}),
    )
    return doc, int(meta["from_cell"])


# --------------------------------------------------------------------------- ingest side


@dataclass(slots=True)
class PublishResult:
    observations: int
    messages: int
    unplaced: list[QuarantineRecord]
    acks: list[Any]


class CellPublisher:
    """Routes observations to cells and publishes them (one message per cell per call)."""

    def __init__(
        self, bus: Any, grid: CellGrid, sensors: Mapping[str, Sensor] | None = None, halo_km: float = 0.0
    ) -> None:
        self.bus = bus
        self.grid = grid
        self.sensors = dict(sensors or {})
        self.halo_km = float(halo_km)
        self.published = 0

    def publish(self, observations: Sequence[Observation]) -> PublishResult:
        """Queue the messages; ``acks`` are the futures of the stream's acknowledgements."""
        from stratowatch.service.bus_nats import observation_id

        if not observations:
            return PublishResult(0, 0, [], [])
        lat, lon = positions(observations, self.sensors)
        ok = np.isfinite(lat) & np.isfinite(lon)
        cells = np.full(len(observations), -1, np.int64)
        if np.any(ok):
            cells[ok] = self.grid.cell_of(lat[ok], lon[ok])
        extra_rows, extra_cells = halo(lat, lon, cells, self.grid, self.halo_km)
        home = np.flatnonzero(ok)
        rows = np.concatenate([home, extra_rows])
        dest = np.concatenate([cells[home], extra_cells])
        ids = [observation_id(o) for o in observations]
        acks = []
        order = np.lexsort((rows, dest))
        rows, dest = rows[order], dest[order]
        uniq, starts = np.unique(dest, return_index=True)
        bounds = [*starts.tolist(), rows.size]
        for k, cell in enumerate(uniq.tolist()):
            part = rows[bounds[k] : bounds[k + 1]].tolist()
            part_ids = [ids[i] for i in part]
            data = encode_cell_message([observations[i] for i in part], part_ids)
            msg_id = f"c{cell}:" + hashlib.blake2b("".join(part_ids).encode(), digest_size=16).hexdigest()
            acks.append(self.bus.publish_cell(int(cell), data, msg_id=msg_id))
        unplaced = [
            QuarantineRecord(
                observations[i].source or SourceRef("cell-router", 0),
                f"no position for a cell: {MeasurementKind(observations[i].kind).name} observation"
                f" of sensor {observations[i].sensor_id!r} (a radar plot needs its sensor's site)",
                json.dumps(
                    {"id": ids[i], "sensor_id": observations[i].sensor_id, "time_s": observations[i].time_s}
                ).encode(),
                "position",
            )
            for i in np.flatnonzero(~ok).tolist()
        ]
        self.published += int(home.size)
        return PublishResult(int(home.size), len(acks), unplaced, acks)


def run_ingest_role(settings: Settings, stop: threading.Event) -> None:
    """The ingest role: configured sources -> route -> publish per cell on NATS (see the module
    docstring), until ``stop`` is set. Needs ``bus_url = "nats://..."``."""
    from stratowatch.service.app import FeedBuffer, build_sources
    from stratowatch.service.bus_nats import open_nats_bus
    from stratowatch.service.pipeline import sensor_registry
    from stratowatch.store import open_store

    if not settings.bus_url.startswith("nats://"):
        raise ValueError(f"the ingest role publishes to NATS: bus_url {settings.bus_url!r} is not nats://")
    registry = sensor_registry(settings)
    store = open_store(settings.store_url, retention=settings.retention.store_settings())
    bus = open_nats_bus(settings.bus_url, name="stratowatch-ingest")
    try:
        for s in registry.sensors.values():
            store.write_sensor(s)
        publisher = CellPublisher(
            bus, CellGrid(settings.scale.cell_size_deg), registry.sensors, settings.scale.halo_km
        )
        buffer = FeedBuffer(max_observations=4 * settings.pipeline.max_batch)
        sources = build_sources(settings.sources, settings, registry, buffer)
        for src in sources:
            src.start()
        try:
            while True:
                stopping = stop.wait(settings.pipeline.step_s)
                _ingest_step(publisher, store, buffer, settings.pipeline.max_batch)
                if stopping:
                    break
        finally:
            buffer.close()
            for src in sources:
                with contextlib.suppress(Exception):
                    src.stop()
            _ingest_step(publisher, store, buffer, settings.pipeline.max_batch)
        log.info("ingest role: %d observations published", publisher.published)
    finally:
        bus.close()
        store.close()


def _ingest_step(publisher: CellPublisher, store: Any, buffer: Any, max_batch: int) -> None:
    obs, quarantined, through = buffer.take_through(max_batch)
    result = publisher.publish(obs)
    records = [*quarantined, *result.unplaced]
    if records:
        store.write_quarantine(records)
    for ack in result.acks:  # the stream has them (the bus resends until it does)
        ack.result()
    buffer.committed(through)


# --------------------------------------------------------------------------- tracker workers


@dataclass(slots=True)
class CellState:
    """One owned cell: its tracker, the last stream sequence applied, what it reported."""

    cell_id: int
    tracker: Tracker
    last_seq: int = 0
    time_s: float = -math.inf
    live_ids: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    recent: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    #: ADS-B emitter categories by identity name (``"icao:4ca1d3"`` -> ``"A3"``), for the classifier
    categories: dict[str, str] = field(default_factory=dict)
    consumer: Any = None
    #: which reported tracks go to the history (not in the snapshot: a restored cell logs every
    #: track once)
    history: HistoryMarks = field(default_factory=HistoryMarks)

    def snapshot(self) -> bytes:
        return pickle.dumps(
            {
                "version": STATE_VERSION,
                "cell_id": self.cell_id,
                "last_seq": self.last_seq,
                "time_s": self.time_s,
                "tracker": self.tracker,
                "live_ids": self.live_ids,
                "recent": self.recent,
                "categories": self.categories,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )


@dataclass(slots=True)
class WorkerStats:
    messages: int = 0
    observations: int = 0
    observations_stored: int = 0
    repeats_dropped: int = 0
    handovers_out: int = 0
    handovers_in: int = 0
    merged: int = 0
    commits: int = 0
    claims: int = 0
    takeovers: int = 0
    leases_lost: int = 0
    released: int = 0
    resyncs: int = 0


class CellWorker:
    """A tracker worker over geographic cells (see the module docstring)."""

    def __init__(
        self,
        store: Any,
        bus: Any,
        settings: Settings,
        *,
        worker_id: str | None = None,
        sensors: Mapping[str, Sensor] | None = None,
        winds: WindGrid | None = None,
        clock: Any = time.time,
    ) -> None:
        self.store = store
        #: the wind field the classifier's drift match uses (``pipeline.classify_with_winds``)
        self.winds = winds if settings.pipeline.classify_with_winds else None
        self.bus = bus
        self.settings = settings
        self.scale = settings.scale
        self.grid = CellGrid(self.scale.cell_size_deg)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sensors = dict(sensors or {})
        self.labels = {
            sid: s.releasable_to for sid, s in self.sensors.items() if "PUBLIC" not in s.releasable_to
        }
        self.clock = clock
        self.cells: dict[int, CellState] = {}
        #: this worker's presence row in ``cell_leases`` (see :meth:`_fair_share`)
        self.presence_id = presence_id(self.worker_id)
        self.stats = WorkerStats()
        self._leases_due = 0.0

    # ------------------------------------------------------------------ leases
    @property
    def rebalancing(self) -> bool:
        """Share the cells with the other live workers (``[scale] rebalance``, no fixed ``cells``)."""
        return bool(self.scale.rebalance) and not self.scale.cells

    def _fair_share(self, leases: Mapping[int, tuple[str, float]], now: float) -> int:
        """ceil(cells with traffic / live workers), after announcing this worker: a presence row in
        ``cell_leases`` (a reserved negative id per worker, renewed with the cells), so a worker
        that holds no cell yet still counts and the others give it its share."""
        self.store.claim_cells(self.worker_id, [self.presence_id], self.scale.lease_s, now)
        live = {o for c, (o, e) in leases.items() if c <= PRESENCE_MAX and e >= now} | {self.worker_id}
        cells = set(self.candidates()) | {c for c in leases if c >= 0} | set(self.cells)
        return max(1, math.ceil(len(cells) / len(live)))

    def candidates(self) -> list[int]:
        """The cells this worker may own: ``[scale] cells``, else every cell with messages."""
        if self.scale.cells:
            return sorted(set(self.scale.cells))
        return list(self.bus.cells_with_messages())

    def poll_leases(self) -> None:
        """Renew held leases (dropping the cells another worker took) and this worker's presence,
        give back what is over its fair share, then claim free cells up to it."""
        now = self.clock()
        if self.cells:
            held = set(self.store.renew_cells(self.worker_id, sorted(self.cells), self.scale.lease_s, now))
            for cell in sorted(set(self.cells) - held):
                log.warning("worker %s: lost the lease of cell %d", self.worker_id, cell)
                self.stats.leases_lost += 1
                self._drop(cell)
        room = self.scale.max_cells - len(self.cells) if self.scale.max_cells else None
        if room is not None and room <= 0 and not self.rebalancing:
            return
        leases = self.store.cell_leases()
        if self.rebalancing:
            share = self._fair_share(leases, now)
            if len(self.cells) > share:
                give = sorted(self.cells)[share:]  # committed and acknowledged: the next owner
                for cell in give:  # restores the snapshot and resumes after it
                    self._drop(cell)
                self.store.release_cells(self.worker_id, give)
                self.stats.released += len(give)
                log.info("worker %s: gives cells %s back (fair share %d)", self.worker_id, give, share)
                leases = {c: v for c, v in leases.items() if c not in give}
            room = share - len(self.cells) if room is None else min(room, share - len(self.cells))
        if room is not None and room <= 0:
            return
        free = [
            c
            for c in self.candidates()
            if c not in self.cells
            and (c not in leases or leases[c][1] < now or leases[c][0] == self.worker_id)
        ]
        if room is not None:
            free = free[:room]
        if not free:
            return
        for cell in self.store.claim_cells(self.worker_id, free, self.scale.lease_s, now):
            previous = leases.get(cell)
            if previous is not None and previous[0] != self.worker_id:
                self.stats.takeovers += 1
                log.info("worker %s: takes cell %d over from %s", self.worker_id, cell, previous[0])
            self._open(cell)

    def _open(self, cell: int) -> None:
        """Take a cell: its snapshot (or a fresh tracker), its consumer from the snapshot's position."""
        state = self._restore(cell)
        state.consumer = self.bus.durable(
            consumer_name(cell),
            _cell_filter(cell),
            start_seq=state.last_seq + 1,
            reset=True,
            ack_wait_s=self.scale.ack_wait_s,
            max_ack_pending=max(4 * self.scale.fetch_batch, 64),
        )
        self.cells[cell] = state
        self.stats.claims += 1

    def _restore(self, cell: int) -> CellState:
        blob = self.store.load_state(state_key(cell))
        if blob:
            snap = pickle.loads(blob)  # the store is trusted (as for the pipeline's snapshot)
            if snap.get("version") == STATE_VERSION and int(snap["cell_id"]) == cell:
                tracker: Tracker = snap["tracker"]
                tracker.sensors.update(self.sensors)
                return CellState(
                    cell,
                    tracker,
                    last_seq=int(snap["last_seq"]),
                    time_s=float(snap["time_s"]),
                    live_ids=np.asarray(snap["live_ids"], np.int64),
                    recent=np.asarray(snap["recent"], np.int64),
                    categories=dict(snap.get("categories") or {}),
                )
            log.warning("cell %d: stored state of another version; starting afresh", cell)
        tracker = Tracker(self.sensors)
        tracker._next_id = first_track_id(cell)
        return CellState(cell, tracker)

    def _drop(self, cell: int) -> None:
        state = self.cells.pop(cell, None)
        if state is not None and state.consumer is not None:
            with contextlib.suppress(Exception):
                state.consumer.close()

    def release(self) -> None:
        """Give every cell back (a graceful stop: another worker may take them at once)."""
        cells = sorted(self.cells)
        for cell in cells:
            self._drop(cell)
        with contextlib.suppress(Exception):
            self.store.release_cells(self.worker_id, [*cells, self.presence_id])

    # ------------------------------------------------------------------ the loop
    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: keep the leases, and work the owned cells in turn."""
        while not stop.is_set():
            self.run_once()
            if not self.cells:
                stop.wait(min(0.5, self.scale.lease_s / 3.0))

    def run_once(self, wait_s: float | None = None) -> int:
        """One round: the leases when due, then one fetch per owned cell (waiting up to ``wait_s``
        for each; by default 0.5 s shared by the cells, at least 0.1 s each); returns the messages applied."""
        if time.monotonic() >= self._leases_due:
            try:
                self.poll_leases()
            except Exception:
                log.exception("worker %s: lease round failed", self.worker_id)
            self._leases_due = time.monotonic() + self.scale.lease_s / 3.0
        done = 0
        wait = max(0.1, 0.5 / max(len(self.cells), 1)) if wait_s is None else wait_s
        for cell in list(self.cells):
            done += self.work_cell(cell, wait)
        return done

    def work_cell(self, cell: int, timeout_s: float = 0.1) -> int:
        state = self.cells.get(cell)
        if state is None:
            return 0
        msgs = state.consumer.fetch(self.scale.fetch_batch, timeout_s)
        if not msgs:
            return 0
        from stratowatch.store.base import LeaseLost

        try:
            self._apply(state, msgs)
        except LeaseLost as exc:
            log.warning("worker %s: %s; dropping the cell", self.worker_id, exc)
            self.stats.leases_lost += 1
            self._drop(cell)
            return 0
        except Exception:
            log.exception("worker %s: cell %d: step failed; resuming from its snapshot", self.worker_id, cell)
            self.stats.resyncs += 1
            self._drop(cell)
            try:
                self._open(cell)
            except Exception:
                log.exception("worker %s: cell %d: cannot reopen; its lease will lapse", self.worker_id, cell)
            return 0
        try:
            state.consumer.ack(msgs)
        except Exception as exc:  # committed: a redelivery is skipped by its sequence
            log.warning("worker %s: cell %d: acknowledgement failed (%s)", self.worker_id, cell, exc)
        return len(msgs)

    # ------------------------------------------------------------------ one batch of one cell
    def _apply(self, state: CellState, msgs: Sequence[Any]) -> None:
        tracker = state.tracker
        new_obs: list[Observation] = []
        new_ids: list[str] = []
        outgoing: list[tuple[int, bytes, str]] = []
        handed: list[int] = []
        last_seq = state.last_seq
        for m in sorted(msgs, key=lambda m: m.stream_seq):
            if m.stream_seq <= state.last_seq:
                continue  # committed before (a redelivery): acknowledged again, not applied
            last_seq = max(last_seq, m.stream_seq)
            self.stats.messages += 1
            if m.subject.endswith(".handover"):
                doc, _from = decode_handover(m.data)
                self._import(state, doc)
                continue
            batch, obs, ids = decode_cell_message(m.data, tracker.identities)
            h = _id_hash(ids)
            _, first = np.unique(h, return_index=True)
            fresh = np.zeros(h.size, bool)
            fresh[first] = True
            fresh &= ~np.isin(h, state.recent)
            self.stats.repeats_dropped += int(h.size - fresh.sum())
            if not np.any(fresh):
                continue
            if not np.all(fresh):
                batch = batch.take(fresh)
                keep = np.flatnonzero(fresh).tolist()
                obs = [obs[i] for i in keep]
                ids = [ids[i] for i in keep]
            state.recent = np.concatenate([state.recent, h[fresh]])[-RECENT_IDS:]
            if batch.category:
                _note_categories(state.categories, batch, tracker.identities)
            t = max(float(batch.time_s.max()), state.time_s)
            tracker.step_batch(t, batch)
            state.time_s = t
            new_obs.extend(obs)
            new_ids.extend(ids)
            self.stats.observations += len(obs)
            handed.extend(self._leaving(state, outgoing))
        t_now = state.time_s
        reported = self._report(state) if math.isfinite(t_now) else []
        ids_now = np.array([t.track_id for t in reported], dtype=np.int64)
        ended = np.setdiff1d(state.live_ids, np.concatenate([ids_now, np.asarray(handed, np.int64)]))
        state.live_ids = ids_now
        state.last_seq = last_seq
        # hand-overs first (acknowledged by the stream), then the commit that removes them here
        acks = [self.bus.publish_cell(dest, data, msg_id=mid, handover=True) for dest, data, mid in outgoing]
        for ack in acks:
            ack.result(timeout=max(30.0, self.scale.lease_s))
        self.stats.handovers_out += len(outgoing)
        stored = self.store.commit_cell(
            state.cell_id,
            self.worker_id,
            observations=new_obs,
            obs_ids=new_ids,
            tracks=reported,
            ended_ids=ended.tolist(),
            ended_s=t_now if math.isfinite(t_now) else 0.0,
            state_key=state_key(state.cell_id),
            state_blob=state.snapshot(),
            history=state.history.mark(reported),
        )
        self.stats.observations_stored += int(stored)
        self.stats.commits += 1
        # then the cell's picture for the other roles (predict, alert, API streams): committed
        # state only; a re-publish of the same step is stored once (its message id)
        if math.isfinite(t_now):
            self.bus.publish(
                "tracks",
                {
                    "time_s": t_now,
                    "audience": "",
                    "cell": state.cell_id,
                    "tracks": [track_to_json(t) for t in reported],
                    "ended": ended.tolist(),
                    "handed": sorted(set(handed)),
                },
                msg_id=f"tracks:{state.cell_id}:{last_seq}",
            )

    def _report(self, state: CellState) -> list[Track]:
        """The cell's reported tracks at its data time, classified as the single process does
        (motion models, identities, emitter categories, the wind match when configured)."""
        from stratowatch.classify import classify_table
        from stratowatch.service.pipeline import drift_wind_match

        tracker = state.tracker
        table = tracker.table(state.time_s)
        names = [tracker.identities.name(int(c)) for c in table.identity.tolist()]
        cats = [state.categories.get(n) if n else None for n in names]
        wind = drift_wind_match(tracker, table, self.winds) if self.winds is not None and len(table) else None
        classes = classify_table(
            table,
            [m.name for m in tracker.models],
            tracker.identities,
            winds=self.winds,
            categories=cats,
            wind=wind,
        )
        return tracker.to_tracks(
            table, classifications=classes, labels=self.labels, originator=self.settings.node.partner
        )

    def _leaving(self, state: CellState, outgoing: list[tuple[int, bytes, str]]) -> list[int]:
        """Hand over the confirmed tracks now in another cell; drop tentative ones born outside.
        Returns the ids handed over."""
        tracker = state.tracker
        tr = tracker.tracks
        if not len(tr):
            return []
        lla = tracker.frame.to_geodetic(tr.xc[:, :3])
        where = self.grid.cell_of(lla[:, 0], lla[:, 1])
        out = where != state.cell_id
        if not np.any(out):
            return []
        tentative = tr.status == TrackStatus.TENTATIVE
        tracker.remove_tracks(tr.track_id[out & tentative])
        tr = tracker.tracks
        lla = tracker.frame.to_geodetic(tr.xc[:, :3]) if len(tr) else np.empty((0, 3))
        where = self.grid.cell_of(lla[:, 0], lla[:, 1]) if len(tr) else np.empty(0, np.int64)
        leave = np.flatnonzero(where != state.cell_id)
        handed: list[int] = []
        for dest in np.unique(where[leave]).tolist():
            rows = leave[where[leave] == dest]
            ids = tr.track_id[rows].copy()
            doc = tracker.export_tracks(ids)
            doc["categories"] = {n: state.categories[n] for n in doc["identity"] if n in state.categories}
            mid = f"ho:{state.cell_id}>{dest}:" + ",".join(
                f"{i}@{t!r}" for i, t in zip(ids.tolist(), tr.t_s[rows].tolist(), strict=True)
            )
            if len(mid) > 200:
                mid = mid[:40] + hashlib.blake2b(mid.encode(), digest_size=16).hexdigest()
            outgoing.append((int(dest), encode_handover(doc, state.cell_id), mid))
            handed.extend(ids.tolist())
        tracker.remove_tracks(handed)
        return handed

    def _import(self, state: CellState, doc: Mapping[str, Any]) -> None:
        """Take handed-over tracks, and merge each with a local track of the same object born
        meanwhile (the older one keeps its id)."""
        tracker = state.tracker
        state.categories.update(doc.get("categories") or {})
        ids = tracker.import_tracks(doc)
        self.stats.handovers_in += int(ids.size)
        if not ids.size:
            return
        # a cell that has seen no plot yet reports the arrivals at their own time, not at its next plot
        state.time_s = max(state.time_s, float(np.max(np.asarray(doc["t_s"], np.float64))))
        tr = tracker.tracks
        imported = np.flatnonzero(np.isin(tr.track_id, ids))
        local = np.flatnonzero(~np.isin(tr.track_id, ids))
        if not local.size:
            return
        losers: set[int] = set()
        xc, Pc = tr.xc, tr.Pc
        for i in imported.tolist():
            t = np.maximum(tr.t_s[local], tr.t_s[i])
            pi = xc[i, :3] + xc[i, 3:] * (t - tr.t_s[i])[:, None]
            pj = xc[local, :3] + xc[local, 3:] * (t - tr.t_s[local])[:, None]
            d = pi - pj
            S = Pc[i, :3, :3][None] + Pc[local, :3, :3] + np.eye(3)[None] * 1.0
            d2 = np.einsum("ni,ni->n", d, np.linalg.solve(S, d[..., None])[..., 0])
            a, b = tr.identity[i], tr.identity[local]
            same = (d2 < self.scale.merge_d2) & ((a < 0) | (b < 0) | (a == b))
            for j in local[same].tolist():
                older_local = (tr.first_s[j], tr.track_id[j]) < (tr.first_s[i], tr.track_id[i])
                loser, winner = (i, j) if older_local else (j, i)
                if tr.identity[winner] < 0 <= tr.identity[loser]:
                    tr.identity[winner] = tr.identity[loser]
                tr.sensor_mask[winner] |= tr.sensor_mask[loser]
                losers.add(int(tr.track_id[loser]))
        if losers:
            self.stats.merged += len(losers)
            tracker.remove_tracks(sorted(losers))


def _note_categories(categories: dict[str, str], batch: ObservationBatch, identities: IdentityCodes) -> None:
    """Remember the emitter categories of identification messages (a few rows per batch)."""
    for i in [i for i, c in enumerate(batch.category) if c]:
        name = identities.name(int(batch.identity[i]))
        if name:
            categories[name] = str(batch.category[i])
    if len(categories) > RECENT_IDS:  # bounded: the oldest entries go first
        for name in list(categories)[: len(categories) - RECENT_IDS]:
            del categories[name]


def _cell_filter(cell: int) -> str:
    from stratowatch.service.bus_nats import cell_filter

    return cell_filter(cell)


def run_track_role(settings: Settings, stop: threading.Event, worker_id: str | None = None) -> None:
    """The track role: a :class:`CellWorker` on the configured store and NATS bus until ``stop``
    is set; then it gives its cells back. Needs ``bus_url = "nats://..."``."""
    from stratowatch.service.bus_nats import open_nats_bus
    from stratowatch.service.pipeline import sensor_registry
    from stratowatch.store import open_store

    if not settings.bus_url.startswith("nats://"):
        raise ValueError(f"the track role consumes NATS: bus_url {settings.bus_url!r} is not nats://")
    registry = sensor_registry(settings)
    store = open_store(settings.store_url, retention=settings.retention.store_settings())
    bus = open_nats_bus(settings.bus_url, name=f"stratowatch-track-{worker_id or os.getpid()}")
    from stratowatch.service.pipeline import wind_field

    winds = wind_field(settings) if settings.pipeline.classify_with_winds else None
    worker = CellWorker(store, bus, settings, worker_id=worker_id, sensors=registry.sensors, winds=winds)
    try:
        for s in registry.sensors.values():
            store.write_sensor(s)
        log.info("track role %s: cells of %g degrees", worker.worker_id, worker.scale.cell_size_deg)
        worker.run(stop)
    finally:
        worker.release()
        bus.close()
        store.close()


__all__ = [
    "CELL_ID_BASE",
    "CELL_ID_BLOCK",
    "CellPublisher",
    "CellState",
    "CellWorker",
    "decode_cell_message",
    "decode_handover",
    "encode_cell_message",
    "encode_handover",
    "first_track_id",
    "halo",
    "positions",
    "route",
    "run_ingest_role",
    "run_track_role",
    "state_key",
]
