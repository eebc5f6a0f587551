"""The multi-sensor, multi-target tracker: glue over the parts in this package.

``Tracker.step(time, observations)`` is the push API for the live service; ``Tracker.replay``
iterates over recorded scans. Each step splits its observations into sub-scans (one sensor, one
revisit, each identity at most once), and for each sub-scan:

1. builds measurement sets (:mod:`.measurements`),
2. gates all tracks against all detections (kd-tree pre-gate, then chi-square on every surviving
   pair at once, each pair predicted to its own detection time by the IMM: :mod:`.gating`,
   :mod:`.imm`),
3. associates: identity-bound pairs first, then confirmed tracks, then tentative ones
   (:mod:`.association`, GNN or cheap JPDA),
4. updates the assigned tracks (late detections by retrodiction, never dropped), counts misses
   only where the sensor could have seen the track, and starts tentative tracks from free
   detections.

Then track management: M-of-N confirmation, deletion by misses, coasting time and covariance
growth, and merging of duplicate tracks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from stratowatch.model import (
    PUBLIC,
    Classification,
    IdentityCodes,
    Observation,
    ObservationBatch,
    Sensor,
    Track,
    TrackStatus,
)
from stratowatch.tracking import association, gating, imm
from stratowatch.tracking._kernels import gate_point3, mahalanobis_logdet
from stratowatch.tracking.frames import EcefFrame, Frame, LocalFrame
from stratowatch.tracking.measurements import (
    MeasurementSet,
    build_sets,
    innovation,
    predict_measurement,
)
from stratowatch.tracking.motion import DEFAULT_MODELS, MotionModel, switching_eigen
from stratowatch.tracking.tracks import TrackArrays, TrackTable

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_CHUNK = 200_000  # (track, detection) pairs scored at once

#: Sensor kinds that report only cooperative targets: their silence is no evidence of absence.
COOPERATIVE_KINDS = frozenset({"adsb", "modes", "aprs", "radiosonde", "sonde", "wspr", "sighting", "partner"})


def default_switching_rates(models: Sequence[MotionModel]) -> FloatArray:
    """Generator matrix: aircraft models switch about once a minute; between the aircraft and the
    balloon models once in ten minutes. (An aircraft never becomes a balloon, but a straight,
    level aircraft fits the drift model too: the filter must be able to leave it when the
    aircraft turns.)"""
    m = len(models)
    rates = np.full((m, m), 1.0 / 600.0)
    names = [mm.name for mm in models]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j and a.startswith("aircraft") and b.startswith("aircraft"):
                rates[i, j] = 1.0 / 60.0
    np.fill_diagonal(rates, 0.0)
    np.fill_diagonal(rates, -rates.sum(axis=1))
    return rates


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Tuning of the tracker. Defaults suit 1-12 s radar scans, 1 Hz ADS-B and balloons seen
    every few minutes."""

    association: str = "gnn"  # "gnn" or "jpda"
    gate_probability: float = 0.9995
    confirm_hits: int = 3  # M of M-of-N confirmation
    confirm_window: int = 4  # N
    # A confirmed track is deleted when its run of misses in coverage is as unlikely as
    # `max_misses` misses of a sensor with detection probability `p_detect`: three misses of a
    # Pd 0.9 radar, six of a Pd 0.7 one.
    max_misses: int = 3
    max_coast_s: float = 60.0
    max_coast_balloon_s: float = 1800.0
    max_position_sigma_m: float = 20_000.0
    report_max_misses: int = 1  # coasting tracks are reported for this many misses
    init_speed_sigma_mps: float = 150.0
    init_vertical_speed_sigma_mps: float = 15.0
    max_speed_mps: float = 400.0
    models: tuple[MotionModel, ...] = DEFAULT_MODELS
    initial_model_probabilities: tuple[float, ...] = (0.45, 0.1, 0.45)
    p_detect: float = 0.9
    clutter_density_per_m3: float = 1e-15
    merge_d2: float = 3.0
    max_pairs_per_track: int = 12
    alt_prior_m: tuple[float, float] = (15_000.0, 8_000.0)
    balloon_model: str = "balloon_drift"

    def __post_init__(self) -> None:
        if self.association not in ("gnn", "jpda"):
            raise ValueError(f"association must be 'gnn' or 'jpda', not {self.association!r}")
        if not 1 <= self.confirm_hits <= self.confirm_window:
            raise ValueError("confirmation needs 1 <= M <= N")
        if len(self.initial_model_probabilities) != len(self.models):
            raise ValueError("one initial probability per motion model")


@dataclass(slots=True)
class _Scored:
    """Gated pairs of one measurement set with everything the update needs."""

    ms: MeasurementSet
    trk: IntArray
    row: IntArray  # row in ms
    forced: BoolArray
    d2: FloatArray
    logdet: FloatArray


@dataclass(slots=True)
class StepStats:
    observations: int = 0
    sub_scans: int = 0
    pairs: int = 0
    updates: int = 0
    births: int = 0
    deletions: int = 0
    merges: int = 0
    late: int = 0
    per_family: dict[str, int] = field(default_factory=dict)


class Tracker:
    """Multi-sensor, multi-target IMM tracker. See the module docstring for the cycle."""

    def __init__(
        self,
        sensors: Mapping[str, Sensor] | None = None,
        config: TrackerConfig | None = None,
        frame: Frame | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self.sensors: dict[str, Sensor] = dict(sensors or {})
        self.frame: Frame = frame or EcefFrame()
        self.identities = IdentityCodes()
        self.models = self.config.models
        self._rates = default_switching_rates(self.models)
        self._mu0 = np.asarray(self.config.initial_model_probabilities, dtype=np.float64)
        self._mu0 = self._mu0 / self._mu0.sum()
        self._balloon = [m.name for m in self.models].index(self.config.balloon_model)
        self._q_h = np.array([m.q_h for m in self.models])
        self._q_v = np.array([m.q_v for m in self.models])
        self.tracks = TrackArrays.empty(len(self.models))
        self._next_id = 1
        self._time_s = -np.inf
        self._sensor_bits: dict[str, int] = {}
        self._last_scan_s: dict[str, float] = {}
        self._period_s: dict[str, float] = {}
        self.last_stats = StepStats()
        from stratowatch.tracking._kernels import warm_up

        warm_up()

    # ------------------------------------------------------------------ public API
    def step(
        self, time_s: float, observations: Sequence[Observation], scanned: Sequence[str] = ()
    ) -> list[Track]:
        """Process observations up to ``time_s``; return the reported tracks at ``time_s``."""
        batch = ObservationBatch.from_observations(observations, self.identities)
        return self.to_tracks(self.step_batch(time_s, batch, scanned))

    def step_batch(self, time_s: float, batch: ObservationBatch, scanned: Sequence[str] = ()) -> TrackTable:
        """Columnar fast path of :meth:`step`: returns the reported tracks as a TrackTable.

        ``scanned`` names sensors that completed a scan in this step without any plot (a radar's
        north marker with an empty sweep): their silence counts as a miss where they cover.
        """
        self.last_stats = StepStats(observations=len(batch))
        seen = set(batch.sensor_ids[i] for i in np.unique(batch.sensor_index)) if len(batch) else set()
        for sid in scanned:
            if sid not in seen and len(self.tracks):
                self.sensors.setdefault(sid, Sensor(sensor_id=sid))
                empty = ObservationBatch.empty()
                empty.sensor_ids = [sid]
                self._count_misses(sid, empty, float(time_s), np.zeros(len(self.tracks), bool))
        for sid in batch.sensor_ids:
            if sid not in self.sensors:
                self.sensors[sid] = Sensor(sensor_id=sid)
        if len(batch):
            for sub in self._sub_scans(batch):
                self._process(sub)
        self._time_s = max(self._time_s, float(time_s))
        self._manage(float(time_s))
        return self.table(float(time_s))

    def replay(
        self, scans: Iterable[tuple[float, Sequence[Observation]]]
    ) -> Iterator[tuple[float, list[Track]]]:
        """Iterate over recorded scans, yielding (time, reported tracks) after each."""
        for time_s, observations in scans:
            yield time_s, self.step(time_s, observations)

    def table(self, time_s: float, reported_only: bool = True) -> TrackTable:
        """Tracks predicted to ``time_s`` (without changing them)."""
        tr = self.tracks
        sel = np.ones(len(tr), bool)
        if reported_only:
            sel = (tr.status != TrackStatus.TENTATIVE) & (tr.misses_run <= self.config.report_max_misses)
        idx = np.flatnonzero(sel)
        dt = np.maximum(time_s - tr.t_s[idx], 0.0)
        xc0, Pc0 = tr.combined()
        x, P = imm.predict_combined(
            xc0[idx], Pc0[idx], tr.mu[idx], dt, self._up(xc0[idx, :3]), self.models, self._rates
        )
        return TrackTable(
            time_s=time_s,
            track_id=tr.track_id[idx],
            status=tr.status[idx],
            x=x,
            P=P,
            mu=tr.mu[idx],
            last_update_s=tr.t_s[idx],
            first_s=tr.first_s[idx],
            identity=tr.identity[idx],
            sensor_mask=tr.sensor_mask[idx],
            n_updates=tr.n_updates[idx],
            misses_run=tr.misses_run[idx],
            frame=self.frame,
        )

    def to_tracks(
        self,
        table: TrackTable,
        classifications: Sequence[Classification] | None = None,
        *,
        labels: Mapping[str, frozenset[str]] | None = None,
        audience: str = "",
        originator: str = "",
    ) -> list[Track]:
        """Frozen Track snapshots (with classification) for people and APIs. ``classifications``
        (one per row) replaces the default classification (the service adds the wind match).
        ``labels`` (sensor id -> releasability label) gives each track the meet of its
        contributing sensors' labels; ``audience`` names the picture the tracks belong to."""
        from stratowatch.classify import classify_table
        from stratowatch.sharing.labels import meet_all

        classes = (
            classifications
            if classifications is not None
            else classify_table(table, [m.name for m in self.models], self.identities)
        )
        bits = {b: s for s, b in self._sensor_bits.items()}
        names = [m.name for m in self.models]
        out = []
        by_mask: dict[int, tuple[tuple[str, ...], frozenset[str]]] = {}
        statuses = {int(s): s for s in TrackStatus}
        idents: dict[int, tuple[str, ...]] = {}
        # columns as Python lists once: indexing numpy arrays element by element costs more
        ids, status, masks, ident_codes = (
            table.track_id.tolist(),
            table.status.tolist(),
            table.sensor_mask.tolist(),
            table.identity.tolist(),
        )
        lat, lon, alt = table.lat_deg.tolist(), table.lon_deg.tolist(), table.alt_m.tolist()
        vel, sigma = table.velocity_enu_mps.tolist(), table.position_sigma_enu_m.tolist()
        vsigma = table.velocity_sigma_enu_mps.tolist()
        mu, first, last, n_upd = (
            table.mu.tolist(),
            table.first_s.tolist(),
            table.last_update_s.tolist(),
            table.n_updates.tolist(),
        )
        time_s = float(table.time_s)
        for i in range(len(ids)):  # output edge: one snapshot per reported track
            mask = int(masks[i])
            seen = by_mask.get(mask)
            if seen is None:
                sensors = tuple(sorted(s for b, s in bits.items() if mask >> b & 1))
                label = meet_all(labels.get(s, PUBLIC) for s in sensors) if labels else PUBLIC
                seen = by_mask[mask] = (sensors, label)
            code = ident_codes[i]
            ident = idents.get(code)
            if ident is None:
                name = self.identities.name(int(code))
                ident = idents[code] = (name,) if name else ()
            v, sg, vs = vel[i], sigma[i], vsigma[i]
            out.append(
                Track(
                    track_id=ids[i],
                    time_s=time_s,
                    status=statuses[status[i]],
                    lat_deg=lat[i],
                    lon_deg=lon[i],
                    alt_m=alt[i],
                    velocity_enu_mps=(v[0], v[1], v[2]),
                    position_sigma_m=(sg[0], sg[1], sg[2]),
                    model_probabilities=dict(zip(names, mu[i], strict=True)),
                    identities=ident,
                    sensors=seen[0],
                    first_time_s=first[i],
                    last_update_s=last[i],
                    n_updates=n_upd[i],
                    classification=classes[i],
                    releasable_to=seen[1],
                    audience=audience,
                    originator=originator,
                    velocity_sigma_mps=(vs[0], vs[1], vs[2]),
                )
            )
        return out

    # ------------------------------------------------------------------ hand-over between trackers
    #: TrackArrays fields that carry this tracker's own codes (converted on export) or a cache.
    _LOCAL_FIELDS = ("identity", "sensor_mask", "xc", "Pc")

    def export_tracks(self, track_ids: npt.ArrayLike) -> dict[str, Any]:
        """The full state of the given live tracks (unknown ids are left out), free of this
        tracker's codes: identities as strings, contributing sensors as their ids. Another
        tracker's :meth:`import_tracks` takes them with the same ids (a hand-over between cells)."""
        tr = self.tracks
        rows = np.flatnonzero(np.isin(tr.track_id, np.asarray(track_ids, dtype=np.int64)))
        doc: dict[str, Any] = {
            f.name: getattr(tr, f.name)[rows].copy() for f in fields(tr) if f.name not in self._LOCAL_FIELDS
        }
        doc["models"] = [m.name for m in self.models]
        doc["identity"] = [self.identities.name(int(c)) or "" for c in tr.identity[rows]]
        bits = {b: sid for sid, b in self._sensor_bits.items()}
        doc["sensors"] = [[bits[b] for b in sorted(bits) if int(m) >> b & 1] for m in tr.sensor_mask[rows]]
        return doc

    def import_tracks(self, doc: Mapping[str, Any]) -> IntArray:
        """Insert exported tracks (:meth:`export_tracks`) keeping their ids; returns the ids taken.
        A track this tracker already has under the same id is replaced when the import is newer
        (its last update is later) and kept otherwise, so importing twice changes nothing."""
        names = [m.name for m in self.models]
        if list(doc["models"]) != names:
            raise ValueError(f"tracks of motion models {list(doc['models'])}, this tracker has {names}")
        tr = self.tracks
        ids = np.asarray(doc["track_id"], dtype=np.int64)
        t_s = np.asarray(doc["t_s"], dtype=np.float64)
        rows = np.searchsorted(tr.track_id, ids) if len(tr) else np.zeros(ids.size, np.int64)
        rows = np.minimum(rows, max(len(tr) - 1, 0))
        have = (tr.track_id[rows] == ids) if len(tr) else np.zeros(ids.size, bool)
        take = ~have | (t_s > (tr.t_s[rows] if len(tr) else t_s))
        if not np.any(take):
            return np.empty(0, np.int64)
        if np.any(have & take):
            tr.keep(~np.isin(tr.track_id, ids[have & take]))
        sel = np.flatnonzero(take)
        for sensors in doc["sensors"]:
            for sid in sensors:
                self.sensors.setdefault(sid, Sensor(sensor_id=sid))
        masks = np.array(
            [
                np.bitwise_or.reduce(
                    [
                        np.uint64(0),
                        *(np.uint64(1) << np.uint64(self._sensor_bit(sid)) for sid in doc["sensors"][i]),
                    ]
                )
                for i in sel
            ],
            dtype=np.uint64,
        )
        new = TrackArrays(
            **{
                f.name: np.asarray(doc[f.name])[sel].astype(getattr(tr, f.name).dtype)
                for f in fields(tr)
                if f.name not in self._LOCAL_FIELDS
            },
            identity=self.identities.codes(doc["identity"][i] or None for i in sel),
            sensor_mask=masks,
            xc=np.zeros((sel.size, 6)),
            Pc=np.zeros((sel.size, 6, 6)),
        )
        new.refresh()
        tr.append(new)
        tr.keep(np.argsort(tr.track_id, kind="stable"))  # rows stay in id order
        return ids[sel]

    def remove_tracks(self, track_ids: npt.ArrayLike) -> int:
        """Drop the given tracks (handed over elsewhere) without counting them as deletions."""
        gone = np.isin(self.tracks.track_id, np.asarray(track_ids, dtype=np.int64))
        if np.any(gone):
            self.tracks.keep(~gone)
        return int(gone.sum())

    def _up(self, pos: FloatArray) -> FloatArray:
        """Local vertical unit vectors (n, 3) at frame positions."""
        if isinstance(self.frame, LocalFrame):
            up = np.zeros_like(pos)
            up[:, 2] = 1.0
            return up
        if not pos.shape[0]:
            return np.zeros((0, 3))
        return self.frame.enu_basis(pos)[:, 2, :]

    # ------------------------------------------------------------------ one sub-scan
    def _sub_scans(self, batch: ObservationBatch) -> Iterator[ObservationBatch]:
        """Split a batch so that each part is one sensor's revisit with each identity once."""
        n = len(batch)
        one_sensor = bool(np.all(batch.sensor_index == batch.sensor_index[0]))
        has_id = batch.identity >= 0
        if one_sensor and not has_id.any():
            sid = batch.sensor_ids[int(batch.sensor_index[0])]
            revisit = self.sensors[sid].update_period_s if sid in self.sensors else np.inf
            if not (np.isfinite(revisit) and revisit > 0) or np.ptp(batch.time_s) < revisit:
                yield batch  # the common case: one sensor's one revisit
                return
        rank = np.zeros(n, np.int64)
        if np.any(has_id):
            idx = np.flatnonzero(has_id)
            order = idx[np.lexsort((batch.time_s[idx], batch.identity[idx]))]
            ids = batch.identity[order]
            start = np.r_[True, ids[1:] != ids[:-1]]
            first = np.maximum.accumulate(np.where(start, np.arange(order.size), 0))
            rank[order] = np.arange(order.size) - first
        period = np.array(
            [self.sensors[s].update_period_s if s in self.sensors else np.inf for s in batch.sensor_ids]
        )[batch.sensor_index]
        t0 = batch.time_s.min()
        tbin = np.where(
            np.isfinite(period) & (period > 0),
            np.floor((batch.time_s - t0) / np.where(period > 0, period, 1.0)),
            0,
        )
        keys = np.stack([batch.sensor_index, tbin.astype(np.int64), rank], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(uniq.shape[0] + 1))
        groups = [order[bounds[g] : bounds[g + 1]] for g in range(uniq.shape[0])]
        groups.sort(key=lambda g: float(batch.time_s[g].min()))
        for g in groups:  # a handful of sub-scans per step (sensors x revisits)
            yield batch.take(g)

    def _process(self, sub: ObservationBatch) -> None:
        cfg = self.config
        stats = self.last_stats
        stats.sub_scans += 1
        sets = build_sets(sub, self.frame, self.sensors, cfg.alt_prior_m)
        sensor_id = sub.sensor_ids[int(sub.sensor_index[0])]
        t_ref = float(np.median(sub.time_s))
        n_before = len(self.tracks)
        used = np.zeros(len(sub), bool)
        updated = np.zeros(n_before, bool)
        scored: list[_Scored] = []
        if n_before:
            scored = [self._score(ms, t_ref, sub) for ms in sets]
            stats.pairs += sum(s.trk.size for s in scored)
            updated, used = self._associate_and_update(scored, sub)
            self._count_misses(sensor_id, sub, t_ref, updated)
        self._births(sets, sub, used)
        self._note_scan(sensor_id, t_ref)

    def _score(self, ms: MeasurementSet, t_ref: float, sub: ObservationBatch) -> _Scored:
        """Candidate pairs of one measurement set, predicted and chi-square gated."""
        tr = self.tracks
        cfg = self.config
        xc, Pc = tr.combined()
        dt_ref = t_ref - tr.t_s
        p_ref = xc[:, :3] + xc[:, 3:] * dt_ref[:, None]
        # Radii from a bound that no gated pair can exceed: d2 = nu' S^-1 nu >= |nu|^2 / lmax(S)
        # and lmax(S) <= lmax(P) + lmax(R), each bounded by its largest absolute row sum.
        adt = np.abs(dt_ref)[:, None, None]
        qmax = max(m.q_h for m in self.models)
        p_pos = (
            Pc[:, :3, :3]
            + dt_ref[:, None, None] * (Pc[:, :3, 3:] + Pc[:, 3:, :3])
            + adt * adt * Pc[:, 3:, 3:]
            + (qmax * adt**3 / 3.0) * np.eye(3)
        )
        lam_t = np.abs(p_pos).sum(axis=2).max(axis=1)
        g = np.sqrt(gating.chi2_gate(cfg.gate_probability, 3))
        spread = float(np.max(np.abs(ms.time_s - t_ref)))
        speed = np.linalg.norm(xc[:, 3:], axis=1)
        r_trk = g * np.sqrt(lam_t) + (speed + 50.0) * spread
        points = self.frame.ground(p_ref) if ms.family == "ground2" else p_ref
        det_r = ms.gate_radius * np.sqrt(max(g * g / 20.0, 1.0))  # built for a 3-dof gate of 20
        trk, row = gating.spatial_candidates(points, r_trk, ms.gate_point, det_r)
        ftrk, frow = gating.identity_pairs(tr.identity, ms.identity)
        forced = np.zeros(trk.size, bool)
        if ftrk.size:
            key = trk * len(ms) + row
            fkey = ftrk * len(ms) + frow
            new = ~np.isin(fkey, key)
            trk = np.concatenate([trk, ftrk[new]])
            row = np.concatenate([row, frow[new]])
            forced = np.isin(trk * len(ms) + row, fkey)
        ok = gating.identities_compatible(tr.identity[trk], ms.identity[row])
        trk, row, forced = trk[ok], row[ok], forced[ok]
        # Score in bounded chunks so that a dense picture cannot blow memory up.
        parts = [
            self._gate_chunk(ms, trk[i : i + _CHUNK], row[i : i + _CHUNK], forced[i : i + _CHUNK])
            for i in range(0, max(trk.size, 1), _CHUNK)
        ]
        trk, row, forced, d2, logdet = (np.concatenate(c) for c in zip(*parts, strict=True))
        # A track with more candidates than it could ever tell apart keeps its best few.
        if trk.size > cfg.max_pairs_per_track * max(len(np.unique(trk)), 1) * 0.5:
            order = np.lexsort((np.where(forced, -1.0, d2), trk))
            t_sorted = trk[order]
            start = np.r_[True, t_sorted[1:] != t_sorted[:-1]]
            first = np.maximum.accumulate(np.where(start, np.arange(order.size), 0))
            best = order[(np.arange(order.size) - first) < cfg.max_pairs_per_track]
            trk, row, forced, d2, logdet = trk[best], row[best], forced[best], d2[best], logdet[best]
        return _Scored(ms, trk, row, forced, d2, logdet)

    def _gate_chunk(
        self, ms: MeasurementSet, trk: IntArray, row: IntArray, forced: BoolArray
    ) -> tuple[IntArray, IntArray, BoolArray, FloatArray, FloatArray]:
        tr = self.tracks
        xc, Pc = tr.combined()
        if ms.family == "pos3" and trk.size:
            w, v, vinv = switching_eigen(self._rates)
            d2, logdet = gate_point3(
                xc,
                Pc,
                tr.mu,
                tr.t_s,
                trk,
                ms.time_s[row],
                ms.z[row],
                ms.R[row],
                self._up(xc[trk, :3]),
                self._q_h,
                self._q_v,
                w,
                v,
                vinv,
            )
            keep = (d2 < gating.chi2_gate(self.config.gate_probability, 3)) | forced
            return trk[keep], row[keep], forced[keep], d2[keep], logdet[keep]
        dt = ms.time_s[row] - tr.t_s[trk]
        x_m, P_m = imm.predict_combined(
            xc[trk], Pc[trk], tr.mu[trk], dt, self._up(xc[trk, :3]), self.models, self._rates
        )
        zhat, H = predict_measurement(ms, row, x_m, self.frame)
        nu = innovation(ms, row, zhat)
        if ms.family == "pos3":  # H = [I 0]: S is the position block plus R
            S = P_m[:, :3, :3] + ms.R[row]
        elif ms.family == "pos3vel":
            S = P_m + ms.R[row]
        else:  # H touches position only
            Hp = H[:, :, :3]
            S = Hp @ P_m[:, :3, :3] @ np.swapaxes(Hp, -1, -2) + ms.R[row]
        if trk.size:
            d2, logdet = mahalanobis_logdet(np.ascontiguousarray(nu), np.ascontiguousarray(S))
        else:
            d2, logdet = np.empty(0), np.empty(0)
        keep = (d2 < gating.chi2_gate(self.config.gate_probability, ms.dim)) | forced
        return trk[keep], row[keep], forced[keep], d2[keep], logdet[keep]

    def _associate_and_update(
        self, scored: list[_Scored], sub: ObservationBatch
    ) -> tuple[BoolArray, BoolArray]:
        cfg = self.config
        tr = self.tracks
        n = len(tr)
        # Flatten all sets' pairs into one Pairs with global detection rows (rows of `sub`).
        set_of = (
            np.concatenate([np.full(s.trk.size, k) for k, s in enumerate(scored)])
            if scored
            else np.empty(0, np.int64)
        )
        pair_row = (
            np.concatenate([np.arange(s.trk.size) for s in scored]) if scored else np.empty(0, np.int64)
        )
        trk = np.concatenate([s.trk for s in scored]) if scored else np.empty(0, np.int64)
        det = np.concatenate([s.ms.det[s.row] for s in scored]) if scored else np.empty(0, np.int64)
        forced = np.concatenate([s.forced for s in scored]) if scored else np.empty(0, bool)
        d2 = np.concatenate([s.d2 for s in scored]) if scored else np.empty(0)
        logdet = np.concatenate([s.logdet for s in scored]) if scored else np.empty(0)
        dims = (
            np.concatenate([np.full(s.trk.size, s.ms.dim) for s in scored])
            if scored
            else np.empty(0, np.int64)
        )
        gates = np.array([gating.chi2_gate(cfg.gate_probability, d) for d in range(1, 7)])[dims - 1]
        pairs = association.Pairs(trk, det, d2, logdet, gates, dims)

        used = np.zeros(len(sub), bool)
        updated = np.zeros(n, bool)
        chosen_parts: list[IntArray] = []
        # 1. identity-bound pairs
        f_idx = np.flatnonzero(forced)
        if f_idx.size:
            _, first = np.unique(pairs.track[f_idx], return_index=True)
            f_idx = f_idx[first]
            _, first = np.unique(pairs.det[f_idx], return_index=True)
            f_idx = f_idx[first]
            chosen_parts.append(f_idx)
            used[pairs.det[f_idx]] = True
            updated[pairs.track[f_idx]] = True
        free = ~used[pairs.det] & ~updated[pairs.track]
        confirmed = tr.status[pairs.track] != 0
        # 2. confirmed tracks
        stage1 = np.flatnonzero(free & confirmed)
        if cfg.association == "jpda" and stage1.size:
            beta = association.cheap_jpda(pairs.take(stage1), cfg.p_detect, cfg.clutter_density_per_m3)
            got = np.bincount(pairs.det[stage1], weights=beta, minlength=len(sub))
            self._pda_update(scored, set_of[stage1], pair_row[stage1], pairs.track[stage1], beta)
            updated[np.unique(pairs.track[stage1])] = True
            used |= got >= 0.5
        elif stage1.size:
            sel, _ = association.gnn(pairs.take(stage1))
            chosen_parts.append(stage1[sel])
            used[pairs.det[stage1[sel]]] = True
            updated[pairs.track[stage1[sel]]] = True
        # 3. tentative tracks take what is left
        free = ~used[pairs.det] & ~updated[pairs.track]
        stage2 = np.flatnonzero(free & ~confirmed)
        if stage2.size:
            sel, _ = association.gnn(pairs.take(stage2))
            chosen_parts.append(stage2[sel])
            used[pairs.det[stage2[sel]]] = True
            updated[pairs.track[stage2[sel]]] = True
        chosen = np.concatenate(chosen_parts) if chosen_parts else np.empty(0, np.int64)
        for k, s in enumerate(scored):  # one vectorised update per measurement family
            rows = pair_row[chosen[set_of[chosen] == k]]
            if rows.size:
                self._gnn_update(s, rows, sub)
        return updated, used

    def _model_measurements(
        self, s: _Scored, rows: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, imm.PairPrediction]:
        tr = self.tracks
        t = s.trk[rows]
        dt = s.ms.time_s[s.row[rows]] - tr.t_s[t]
        pred = imm.predict_pairs(
            tr.x[t], tr.P[t], tr.mu[t], dt, self._up(tr.xc[t, :3]), self.models, self._rates
        )
        p, m = pred.c.shape
        det_rows = np.repeat(s.row[rows], m)
        zhat, H = predict_measurement(s.ms, det_rows, pred.x_meas.reshape(p * m, 6), self.frame)
        nu = innovation(s.ms, det_rows, zhat)
        dim = s.ms.dim
        return zhat.reshape(p, m, dim), H.reshape(p, m, dim, 6), nu.reshape(p, m, dim), pred

    def _gnn_update(self, s: _Scored, rows: IntArray, sub: ObservationBatch) -> None:
        tr = self.tracks
        zhat, H, nu, pred = self._model_measurements(s, rows)
        x, P, mu, _ = imm.update_pairs(pred, zhat, H, s.ms.R[s.row[rows]], nu)
        t = s.trk[rows]
        det_rows = s.ms.det[s.row[rows]]
        tr.x[t], tr.P[t], tr.mu[t] = (
            x,
            P,
            np.maximum(mu, 1e-6) / np.maximum(mu, 1e-6).sum(1, keepdims=True),
        )
        tr.t_s[t] = np.maximum(tr.t_s[t], s.ms.time_s[s.row[rows]])
        tr.refresh(t)
        self._after_update(t, s.ms.identity[s.row[rows]], sub, det_rows)
        self.last_stats.updates += t.size
        self.last_stats.late += int(pred.late.sum())

    def _pda_update(
        self,
        scored: list[_Scored],
        set_of: IntArray,
        pair_row: IntArray,
        trk: IntArray,
        beta: FloatArray,
    ) -> None:
        """Cheap-JPDA update: each track takes the beta-weighted corrections of its pairs,
        with the spread-of-innovations term, per motion model."""
        cfg = self.config
        tr = self.tracks
        m = len(self.models)
        deltas, kss, lls, priors_x, priors_p, cs, lates = [], [], [], [], [], [], []
        order_parts = []
        for k, s in enumerate(scored):
            sel = np.flatnonzero(set_of == k)
            if not sel.size:
                continue
            rows = pair_row[sel]
            _zhat, H, nu, pred = self._model_measurements(s, rows)
            Ht = np.swapaxes(H, -1, -2)
            S = H @ pred.P_meas @ Ht + s.ms.R[s.row[rows]][:, None]
            cross = np.where(
                pred.late[:, None, None, None],
                pred.P_prior @ np.swapaxes(pred.F, -1, -2) @ Ht,
                pred.P_meas @ Ht,
            )
            K = cross @ np.linalg.inv(S)
            deltas.append(np.einsum("pmij,pmj->pmi", K, nu))
            kss.append(K @ S @ np.swapaxes(K, -1, -2))
            from stratowatch.tracking.kalman import gaussian_log_likelihood

            lls.append(gaussian_log_likelihood(nu, S))
            priors_x.append(pred.x_prior)
            priors_p.append(pred.P_prior)
            cs.append(pred.c)
            lates.append(pred.late)
            order_parts.append(sel)
        if not order_parts:
            return
        order = np.concatenate(order_parts)
        b = beta[order]
        t = trk[order]
        delta = np.concatenate(deltas)
        ksk = np.concatenate(kss)
        ll = np.concatenate(lls)
        px, pp, c = np.concatenate(priors_x), np.concatenate(priors_p), np.concatenate(cs)
        uniq, inv = np.unique(t, return_inverse=True)
        # Prior of each track: the one of its most probable pair.
        best = np.full(uniq.size, -1.0)
        np.maximum.at(best, inv, b)
        is_best = b >= best[inv]
        first_best = np.full(uniq.size, -1, np.int64)
        first_best[inv[is_best][::-1]] = np.flatnonzero(is_best)[::-1]
        x0, P0, c0 = px[first_best], pp[first_best], c[first_best]
        dx = np.zeros((uniq.size, m, 6))
        np.add.at(dx, inv, b[:, None, None] * delta)
        corr = np.zeros((uniq.size, m, 6, 6))
        np.add.at(corr, inv, b[:, None, None, None] * (np.einsum("pmi,pmj->pmij", delta, delta) - ksk))
        x_new = x0 + dx
        P_new = P0 + corr - np.einsum("umi,umj->umij", dx, dx)
        P_new = 0.5 * (P_new + np.swapaxes(P_new, -1, -2))
        g = cfg.p_detect * np.exp(ll - ll.max())
        like = np.zeros((uniq.size, m))
        np.add.at(like, inv, g)
        like += (1.0 - cfg.p_detect) * np.exp(-ll.max()) * cfg.clutter_density_per_m3
        mu = c0 * like
        mu = np.maximum(mu / np.maximum(mu.sum(1, keepdims=True), 1e-300), 1e-6)
        mu /= mu.sum(1, keepdims=True)
        tr.x[uniq], tr.P[uniq], tr.mu[uniq] = x_new, P_new, mu
        tr.refresh(uniq)
        times = np.concatenate(
            [
                scored[k].ms.time_s[scored[k].row[pair_row[set_of == k]]]
                for k in range(len(scored))
                if np.any(set_of == k)
            ]
        )
        tmax = np.full(uniq.size, -np.inf)
        np.maximum.at(tmax, inv, times)
        tr.t_s[uniq] = np.maximum(tr.t_s[uniq], tmax)
        self.last_stats.updates += uniq.size
        self.last_stats.late += int(np.concatenate(lates).sum())
        tr.hits[uniq] += 1
        tr.misses_run[uniq] = 0
        tr.miss_logp[uniq] = 0.0
        tr.n_updates[uniq] += 1

    def _after_update(
        self, t: IntArray, identity: IntArray, sub: ObservationBatch, det_rows: IntArray
    ) -> None:
        tr = self.tracks
        tr.hits[t] += 1
        tr.misses_run[t] = 0
        tr.miss_logp[t] = 0.0
        tr.n_updates[t] += 1
        take_id = (tr.identity[t] < 0) & (identity >= 0)
        tr.identity[t[take_id]] = identity[take_id]
        tr.sensor_mask[t] |= self._sensor_bit_array(sub, det_rows)

    def _sensor_bit_array(self, sub: ObservationBatch, det_rows: IntArray) -> npt.NDArray[np.uint64]:
        bits = np.array([self._sensor_bit(s) for s in sub.sensor_ids], dtype=np.uint64)
        return np.left_shift(np.uint64(1), bits[sub.sensor_index[det_rows]])

    def _sensor_bit(self, sensor_id: str) -> int:
        if sensor_id not in self._sensor_bits:
            self._sensor_bits[sensor_id] = min(len(self._sensor_bits), 63)
        return self._sensor_bits[sensor_id]

    def _count_misses(self, sensor_id: str, sub: ObservationBatch, t_ref: float, updated: BoolArray) -> None:
        """A track not updated by this sub-scan counts a miss only where the sensor could have
        seen it: a non-cooperative sensor, within range, within the swept azimuths, and not
        already seen during this revisit."""
        sensor = self.sensors[sensor_id]
        if sensor.kind in COOPERATIVE_KINDS:
            return
        tr = self.tracks
        n = updated.size
        period = (
            sensor.update_period_s
            if np.isfinite(sensor.update_period_s)
            else self._period_s.get(sensor_id, 0.0)
        )
        cand = ~updated & (t_ref - tr.t_s[:n] > 0.5 * period)
        if sensor.has_site and np.any(cand):
            xc, _ = tr.combined()
            site_pos, site_basis = self.frame.site(
                np.array([sensor.lat_deg]), np.array([sensor.lon_deg]), np.array([sensor.alt_m])
            )
            enu = (xc[:n, :3] - site_pos[0]) @ site_basis[0].T
            rng = np.linalg.norm(enu, axis=1)
            elev = np.degrees(np.arctan2(enu[:, 2], np.hypot(enu[:, 0], enu[:, 1])))
            cand &= (rng <= sensor.max_range_m) & (elev <= sensor.max_elevation_deg)
            polar = np.isin(sub.kind, (2, 3))
            if np.any(polar):
                az = sub.value[polar, 1] % 360.0
                track_az = np.degrees(np.arctan2(enu[:, 0], enu[:, 1])) % 360.0
                cand &= _within_sweep(track_az, az)
        tr.misses_run[:n][cand] += 1
        tr.misses_total[:n][cand] += 1
        tr.miss_logp[:n][cand] += np.log(1.0 - min(max(sensor.p_detect, 0.01), 0.99))

    def _births(self, sets: list[MeasurementSet], sub: ObservationBatch, used: BoolArray) -> None:
        cfg = self.config
        m = len(self.models)
        for ms in sets:
            free = np.flatnonzero(~used[ms.det])
            if not free.size or ms.init_pos is None or ms.init_cov is None:
                continue
            k = free.size
            pos = ms.init_pos[free]
            basis = self.frame.enu_basis(pos)
            x = np.zeros((k, 6))
            x[:, :3] = pos
            P = np.zeros((k, 6, 6))
            P[:, :3, :3] = ms.init_cov[free]
            sv = (
                np.array(
                    [
                        cfg.init_speed_sigma_mps,
                        cfg.init_speed_sigma_mps,
                        cfg.init_vertical_speed_sigma_mps,
                    ]
                )
                ** 2
            )
            P[:, 3:, 3:] = np.einsum("kji,j,kjl->kil", basis, sv, basis)
            if ms.family == "pos3vel":
                x[:, 3:] = ms.z[free, 3:]
                P[:, 3:, 3:] = ms.R[free, 3:, 3:]
            det_rows = ms.det[free]
            new = TrackArrays(
                track_id=np.arange(self._next_id, self._next_id + k, dtype=np.int64),
                t_s=ms.time_s[free].copy(),
                x=np.repeat(x[:, None], m, axis=1),
                P=np.repeat(P[:, None], m, axis=1),
                mu=np.repeat(self._mu0[None], k, axis=0),
                status=np.zeros(k, np.int8),
                hits=np.ones(k, np.int64),
                misses_total=np.zeros(k, np.int64),
                misses_run=np.zeros(k, np.int64),
                miss_logp=np.zeros(k),
                first_s=ms.time_s[free].copy(),
                identity=ms.identity[free].copy(),
                sensor_mask=self._sensor_bit_array(sub, det_rows),
                n_updates=np.ones(k, np.int64),
                xc=x,
                Pc=P,
            )
            self._next_id += k
            self.tracks.append(new)
            self.last_stats.births += k

    def _note_scan(self, sensor_id: str, t_ref: float) -> None:
        last = self._last_scan_s.get(sensor_id)
        if last is not None and t_ref > last:
            dt = t_ref - last
            old = self._period_s.get(sensor_id)
            self._period_s[sensor_id] = dt if old is None else 0.8 * old + 0.2 * dt
        self._last_scan_s[sensor_id] = max(t_ref, last if last is not None else t_ref)

    # ------------------------------------------------------------------ management
    def _manage(self, time_s: float) -> None:
        cfg = self.config
        tr = self.tracks
        if not len(tr):
            return
        tent = tr.status == TrackStatus.TENTATIVE
        confirm = tent & (tr.hits >= cfg.confirm_hits)
        tr.status[confirm] = TrackStatus.CONFIRMED
        fail = tent & (tr.misses_total > cfg.confirm_window - cfg.confirm_hits)
        conf = tr.status != TrackStatus.TENTATIVE
        xc, Pc = tr.combined()
        speed = np.linalg.norm(xc[:, 3:], axis=1)
        balloonish = (tr.mu[:, self._balloon] > 0.5) & (speed < 60.0)
        coast = np.where(balloonish, cfg.max_coast_balloon_s, cfg.max_coast_s)
        age = time_s - tr.t_s
        sigma = np.sqrt(
            np.trace(Pc[:, :3, :3], axis1=1, axis2=2) + np.trace(Pc[:, 3:, 3:], axis1=1, axis2=2) * age * age
        )
        unlikely = tr.miss_logp < cfg.max_misses * np.log(1.0 - cfg.p_detect) + 1e-9
        lost = conf & (unlikely | (age > coast) | (sigma > cfg.max_position_sigma_m))
        tent_old = tent & ~confirm & (age > coast)
        tr.status[conf & (tr.misses_run > 0)] = TrackStatus.COASTING
        tr.status[conf & (tr.misses_run == 0)] = TrackStatus.CONFIRMED
        dead = fail | lost | tent_old
        dead |= self._duplicates(time_s, ~dead)
        self.last_stats.deletions += int(dead.sum())
        if np.any(dead):
            tr.keep(~dead)

    def _duplicates(self, time_s: float, alive: BoolArray) -> BoolArray:
        """Tracks that duplicate a better one (same object, compatible identities)."""
        tr = self.tracks
        dead = np.zeros(len(tr), bool)
        idx = np.flatnonzero(alive & (tr.status != TrackStatus.TENTATIVE))
        if idx.size < 2:
            return dead
        xc, Pc = tr.combined()
        dt = (time_s - tr.t_s[idx])[:, None]
        pos = xc[idx, :3] + xc[idx, 3:] * dt
        radius = 3.0 * np.sqrt(np.trace(Pc[idx, :3, :3], axis1=1, axis2=2)).max()
        pairs = cKDTree(pos).query_pairs(r=min(radius, 20_000.0), output_type="ndarray")
        if not len(pairs):
            return dead
        a, b = idx[pairs[:, 0]], idx[pairs[:, 1]]
        ok = gating.identities_compatible(tr.identity[a], tr.identity[b])
        a, b = a[ok], b[ok]
        if not a.size:
            return dead
        d = np.concatenate([pos[pairs[ok, 0]] - pos[pairs[ok, 1]], xc[a, 3:] - xc[b, 3:]], axis=1)
        d2 = np.einsum("pi,pi->p", d, np.linalg.solve(Pc[a] + Pc[b], d[..., None])[..., 0])
        dup = d2 < self.config.merge_d2
        a, b = a[dup], b[dup]
        if not a.size:
            return dead
        a_wins = (tr.n_updates[a] > tr.n_updates[b]) | (
            (tr.n_updates[a] == tr.n_updates[b]) & (tr.track_id[a] < tr.track_id[b])
        )
        win = np.where(a_wins, a, b)
        lose = np.where(a_wins, b, a)
        keep_lose = ~np.isin(lose, win)  # a loser that also wins elsewhere is resolved next step
        win, lose = win[keep_lose], lose[keep_lose]
        give_id = (tr.identity[win] < 0) & (tr.identity[lose] >= 0)
        tr.identity[win[give_id]] = tr.identity[lose[give_id]]
        np.bitwise_or.at(tr.sensor_mask, win, tr.sensor_mask[lose])
        dead[lose] = True
        self.last_stats.merges += int(np.unique(lose).size)
        return dead


def _within_sweep(track_az: FloatArray, plot_az: FloatArray) -> BoolArray:
    """Whether each track azimuth lies in the sector swept by a sub-scan's plots (with a margin),
    handling the wrap at north. A full rotation covers everything."""
    s = np.sort(plot_az)
    gaps = np.diff(np.r_[s, s[0] + 360.0])
    k = int(np.argmax(gaps))
    if gaps[k] < 90.0:  # plots all around: a full rotation
        return np.ones(track_az.shape, bool)
    start = s[(k + 1) % s.size] - 5.0
    width = 360.0 - gaps[k] + 10.0
    return np.asarray(((track_az - start) % 360.0) <= width)


def local_tracker(config: TrackerConfig | None = None) -> Tracker:
    """A tracker for plots in local flat metres (the benchmark format)."""
    return Tracker(config=config, frame=LocalFrame())
