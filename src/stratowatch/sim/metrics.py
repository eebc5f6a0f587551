"""Tracking metrics: GOSPA over time and track continuity.

GOSPA with alpha = 2 (García-Fernández, Svensson & Morelande, 2017) between the truth set X and
the track set Y at one time, with cut-off ``c`` and order ``p``::

    d(X, Y) = ( min over assignments γ of  Σ_(i,j)∈γ d(x_i, y_j)^p
                + c^p/2 · (|X| − |γ|) + c^p/2 · (|Y| − |γ|) )^(1/p)

It is computed exactly by a rectangular optimal assignment on ``min(d, c)^p`` (for large sets,
one per cluster of points closer than c, which gives the same optimum); an assigned pair at
distance ≥ c counts as one missed truth plus one false track. The parts are reported as
p-th power sums (localisation, missed, false), the way Stone Soup reports them, and averaged
over every time present in either set. Distances are 3-D Euclidean: local ``x/y/z`` metres, or
ECEF metres for geodetic positions (:meth:`PointSet.from_geodetic`), which is exact at any
range, unlike a flat local plane.

Continuity uses the per-time GOSPA assignment (pairs closer than ``c``): the number of distinct
track ids each truth was given (1 = unfragmented), the id switches along each truth (changes of
assigned id between consecutive assigned times; gaps do not count) and the track ids never
assigned to any truth (false tracks). These semantics match the shared benchmark scorer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from stratowatch.geo import geodetic_to_ecef

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Above this many truth x track pairs at one time, the assignment is split into clusters.
DENSE_LIMIT = 250_000

#: Times are grouped at this resolution (seconds): rows whose times agree to 1 ms share a time.
TIME_DECIMALS = 3


@dataclass(slots=True)
class PointSet:
    """Labelled positions over time: ``time_s`` (n,), ``ids`` (n,) and ``xyz_m`` (n, 3)."""

    time_s: FloatArray
    ids: IntArray
    xyz_m: FloatArray

    def __post_init__(self) -> None:
        self.time_s = np.asarray(self.time_s, dtype=np.float64).reshape(-1)
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        self.xyz_m = np.asarray(self.xyz_m, dtype=np.float64).reshape(-1, 3)
        if not (self.time_s.size == self.ids.size == self.xyz_m.shape[0]):
            raise ValueError("time_s, ids and xyz_m must have the same length")

    def __len__(self) -> int:
        return int(self.time_s.size)

    @classmethod
    def from_geodetic(
        cls,
        time_s: npt.ArrayLike,
        ids: npt.ArrayLike,
        lat_deg: npt.ArrayLike,
        lon_deg: npt.ArrayLike,
        alt_m: npt.ArrayLike,
    ) -> PointSet:
        """Geodetic positions, scored in ECEF (straight-line distances in metres)."""
        return cls(np.asarray(time_s), np.asarray(ids), geodetic_to_ecef(lat_deg, lon_deg, alt_m))

    @classmethod
    def empty(cls) -> PointSet:
        return cls(np.empty(0), np.empty(0, np.int64), np.empty((0, 3)))


@dataclass(frozen=True, slots=True)
class GospaStep:
    """GOSPA at one time; ``truth_index``/``track_index`` are the pairs closer than c."""

    distance_m: float
    localisation_pth: float
    missed_pth: float
    false_pth: float
    truth_index: IntArray
    track_index: IntArray
    pair_distance_m: FloatArray


def gospa(
    truth_xyz_m: npt.ArrayLike, track_xyz_m: npt.ArrayLike, c_m: float = 1000.0, p: float = 2.0
) -> GospaStep:
    """GOSPA (alpha = 2) between two point sets (n, 3) and (m, 3) at one time."""
    x = np.asarray(truth_xyz_m, dtype=np.float64).reshape(-1, 3)
    y = np.asarray(track_xyz_m, dtype=np.float64).reshape(-1, 3)
    half = c_m**p / 2.0
    no_pairs = np.empty(0, np.int64)
    if len(x) == 0 or len(y) == 0:
        missed, false = half * len(x), half * len(y)
        return GospaStep((missed + false) ** (1.0 / p), 0.0, missed, false, no_pairs, no_pairs, np.empty(0))
    if len(x) * len(y) <= DENSE_LIMIT:
        rows, cols, d = _assign_dense(x, y, c_m, p)
    else:
        rows, cols, d = _assign_clustered(x, y, c_m, p)
    k = int(rows.size)
    loc = float(np.sum(d**p))
    missed, false = half * (len(x) - k), half * (len(y) - k)
    return GospaStep(
        (loc + missed + false) ** (1.0 / p),
        loc,
        missed,
        false,
        rows.astype(np.int64),
        cols.astype(np.int64),
        d,
    )


def _assign_dense(
    x: FloatArray, y: FloatArray, c_m: float, p: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """Optimal pairs closer than c: one assignment over the whole cost matrix."""
    dist = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(np.minimum(dist, c_m) ** p)
    d = dist[rows, cols]
    real = d < c_m
    return rows[real].astype(np.int64), cols[real].astype(np.int64), d[real]


def _assign_clustered(
    x: FloatArray, y: FloatArray, c_m: float, p: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """The same optimum for large sets, without an n x m matrix.

    A pair at distance >= c costs c^p, exactly what leaving both unassigned costs, so the
    optimum splits over the connected components of the graph of pairs closer than c. Components
    of one truth and one track pair directly (all at once); the others are solved one by one.
    """
    n = len(x)
    pairs = cKDTree(x).sparse_distance_matrix(cKDTree(y), c_m, output_type="ndarray")
    close = pairs["v"] < c_m
    ei = pairs["i"][close].astype(np.int64)
    ej = pairs["j"][close].astype(np.int64)
    ed = pairs["v"][close].astype(np.float64)
    if ei.size == 0:
        return ei, ej, ed
    graph = coo_matrix((np.ones(ei.size), (ei, n + ej)), shape=(n + len(y), n + len(y)))
    _n_comp, label = connected_components(graph, directed=False)
    comp = label[ei]
    size = np.bincount(label)
    single = size[comp] == 2  # exactly one truth and one track
    out_i, out_j, out_d = [ei[single]], [ej[single]], [ed[single]]
    rest = np.flatnonzero(~single)
    if rest.size:
        order = rest[np.argsort(comp[rest], kind="stable")]
        starts = np.flatnonzero(np.r_[True, np.diff(comp[order]) != 0])
        ends = np.r_[starts[1:], order.size]
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):  # crowded clusters only
            e = order[a:b]
            ri, ri_inv = np.unique(ei[e], return_inverse=True)
            cj, cj_inv = np.unique(ej[e], return_inverse=True)
            cost = np.full((ri.size, cj.size), c_m**p)
            dist = np.full((ri.size, cj.size), np.inf)
            cost[ri_inv, cj_inv] = ed[e] ** p
            dist[ri_inv, cj_inv] = ed[e]
            r, c = linear_sum_assignment(cost)
            real = dist[r, c] < c_m
            out_i.append(ri[r[real]])
            out_j.append(cj[c[real]])
            out_d.append(dist[r[real], c[real]])
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


@dataclass(frozen=True, slots=True)
class TrackMatch:
    """The truth a track followed most (by assigned times) and how closely."""

    track_id: int
    truth_id: int
    n_pairs: int
    mean_error_m: float


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """GOSPA per time and the assignment pairs behind it; :meth:`summary` gives the figures."""

    c_m: float
    p: float
    times_s: FloatArray
    distance_m: FloatArray
    localisation_pth: FloatArray
    missed_pth: FloatArray
    false_pth: FloatArray
    n_truth: IntArray
    n_tracks: IntArray
    pair_time_s: FloatArray
    pair_truth_id: IntArray
    pair_track_id: IntArray
    pair_distance_m: FloatArray
    truth_ids: IntArray
    track_ids: IntArray

    @property
    def n_times(self) -> int:
        return int(self.times_s.size)

    def ids_per_truth(self) -> tuple[IntArray, IntArray]:
        """(truth ids, number of distinct track ids assigned to each)."""
        pairs = np.unique(np.column_stack([self.pair_truth_id, self.pair_track_id]), axis=0)
        counts = np.zeros(self.truth_ids.size, dtype=np.int64)
        if pairs.size:
            idx = np.searchsorted(self.truth_ids, pairs[:, 0])
            np.add.at(counts, idx, 1)
        return self.truth_ids, counts

    def id_switches(self) -> int:
        order = np.lexsort((self.pair_time_s, self.pair_truth_id))
        truth, track = self.pair_truth_id[order], self.pair_track_id[order]
        return int(np.sum((truth[1:] == truth[:-1]) & (track[1:] != track[:-1])))

    def unassigned_track_ids(self) -> IntArray:
        return np.setdiff1d(self.track_ids, self.pair_track_id)

    def track_matches(self) -> list[TrackMatch]:
        """For each track id that was ever assigned: its main truth and mean distance to it."""
        if self.pair_track_id.size == 0:
            return []
        combos, inverse, counts = np.unique(
            np.column_stack([self.pair_track_id, self.pair_truth_id]),
            axis=0,
            return_inverse=True,
            return_counts=True,
        )
        sums = np.bincount(inverse.reshape(-1), weights=self.pair_distance_m, minlength=len(combos))
        # Best truth per track: the most pairs (ties: the lower truth id, which sorts first).
        order = np.lexsort((combos[:, 1], -counts, combos[:, 0]))
        first = order[np.r_[True, np.diff(combos[order, 0]) != 0]]
        return [
            TrackMatch(int(combos[i, 0]), int(combos[i, 1]), int(counts[i]), float(sums[i] / counts[i]))
            for i in first.tolist()
        ]

    def summary(self) -> dict[str, float | int]:
        """The headline figures (same names and meaning as the shared benchmark scorer)."""
        half = self.c_m**self.p / 2.0
        n = self.n_times

        def mean(a: npt.NDArray[np.float64] | IntArray) -> float:
            return float(np.mean(a)) if n else float("nan")

        _ids, ipt = self.ids_per_truth()
        tracked = ipt[ipt > 0]
        n_pairs = self.pair_distance_m.size
        return {
            "c_m": self.c_m,
            "p": self.p,
            "alpha": 2,
            "n_times": n,
            "gospa_mean_m": mean(self.distance_m),
            "gospa_rms_over_time_m": float(np.sqrt(np.mean(self.distance_m**2))) if n else float("nan"),
            "localisation_mean_pth": mean(self.localisation_pth),
            "missed_mean_pth": mean(self.missed_pth),
            "false_mean_pth": mean(self.false_pth),
            "mean_truths_per_scan": mean(self.n_truth),
            "mean_tracks_per_scan": mean(self.n_tracks),
            "mean_missed_per_scan": mean(self.missed_pth) / half,
            "mean_false_per_scan": mean(self.false_pth) / half,
            "rms_pos_err_assigned_m": (
                float(np.sqrt(np.mean(self.pair_distance_m**2))) if n_pairs else float("nan")
            ),
            "n_truths": int(self.truth_ids.size),
            "n_track_ids": int(self.track_ids.size),
            "truths_never_tracked": int(np.sum(ipt == 0)),
            "ids_per_truth_mean_tracked": float(tracked.mean()) if tracked.size else 0.0,
            "ids_per_truth_max": int(ipt.max()) if ipt.size else 0,
            "truths_fragmented": int(np.sum(ipt > 1)),
            "id_switches": self.id_switches(),
            "unassigned_track_ids": int(self.unassigned_track_ids().size),
        }


def score_tracks(truth: PointSet, tracks: PointSet, c_m: float = 1000.0, p: float = 2.0) -> ScoreResult:
    """GOSPA at every time present in either set, and the continuity pairs behind it."""
    if not (c_m > 0 and np.isfinite(c_m)) or not (p >= 1 and np.isfinite(p)):
        raise ValueError(f"GOSPA needs c > 0 and p >= 1, got c={c_m}, p={p}")
    tk = np.round(truth.time_s, TIME_DECIMALS)
    rk = np.round(tracks.time_s, TIME_DECIMALS)
    t_order = np.argsort(tk, kind="stable")
    r_order = np.argsort(rk, kind="stable")
    tk, rk = tk[t_order], rk[r_order]
    t_xyz, t_ids = truth.xyz_m[t_order], truth.ids[t_order]
    r_xyz, r_ids = tracks.xyz_m[r_order], tracks.ids[r_order]
    times = np.union1d(tk, rk)
    t_lo, t_hi = np.searchsorted(tk, times, "left"), np.searchsorted(tk, times, "right")
    r_lo, r_hi = np.searchsorted(rk, times, "left"), np.searchsorted(rk, times, "right")

    n = times.size
    dist = np.empty(n)
    loc = np.empty(n)
    mis = np.empty(n)
    fal = np.empty(n)
    pair_time: list[FloatArray] = []
    pair_truth: list[IntArray] = []
    pair_track: list[IntArray] = []
    pair_dist: list[FloatArray] = []
    for k in range(n):  # one assignment problem per time (the objects are arrays within it)
        a, b, c, d = int(t_lo[k]), int(t_hi[k]), int(r_lo[k]), int(r_hi[k])
        step = gospa(t_xyz[a:b], r_xyz[c:d], c_m, p)
        dist[k], loc[k], mis[k], fal[k] = (
            step.distance_m,
            step.localisation_pth,
            step.missed_pth,
            step.false_pth,
        )
        if step.truth_index.size:
            pair_time.append(np.full(step.truth_index.size, times[k]))
            pair_truth.append(t_ids[a + step.truth_index])
            pair_track.append(r_ids[c + step.track_index])
            pair_dist.append(step.pair_distance_m)

    def cat(parts: list[npt.NDArray[np.float64]] | list[IntArray], dtype: type) -> npt.NDArray[np.generic]:
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    return ScoreResult(
        c_m=float(c_m),
        p=float(p),
        times_s=times,
        distance_m=dist,
        localisation_pth=loc,
        missed_pth=mis,
        false_pth=fal,
        n_truth=(t_hi - t_lo).astype(np.int64),
        n_tracks=(r_hi - r_lo).astype(np.int64),
        pair_time_s=np.asarray(cat(pair_time, np.float64), dtype=np.float64),
        pair_truth_id=np.asarray(cat(pair_truth, np.int64), dtype=np.int64),
        pair_track_id=np.asarray(cat(pair_track, np.int64), dtype=np.int64),
        pair_distance_m=np.asarray(cat(pair_dist, np.float64), dtype=np.float64),
        truth_ids=np.unique(truth.ids),
        track_ids=np.unique(tracks.ids),
    )
