"""Track-to-track fusion of partners' tracks with the local ones (pure numpy, whole tables at once).

A node's tracks and a partner node's tracks of the same object are not independent: both
trackers may have used the same released plots, the same priors, or (through earlier fusion) each
other's estimates. Fusing them as if independent would count shared information twice and
report an over-confident picture. **Covariance intersection** (Julier & Uhlmann) is consistent for
any unknown cross-correlation::

    P^-1 = w Pa^-1 + (1 - w) Pb^-1,    P^-1 x = w Pa^-1 xa + (1 - w) Pb^-1 xb,

with ``w`` in [0, 1] chosen to minimise the trace (or the determinant) of ``P``. The fused
covariance is never smaller than what a naive independent fusion gives, and fusing a track with
itself gives it back unchanged (nothing is double counted).

Everything here works on columnar tables (:class:`TrackSet`): states ``x`` (n, 6) — ECEF position
and velocity, metres and m/s — and covariances ``P`` (n, 6, 6). One call handles every pair:

* :func:`predict` brings every track to one epoch (constant velocity, white acceleration noise);
* :func:`associate` finds the candidate pairs with kd-trees
  (:func:`stratowatch.tracking.gating.spatial_candidates`), applies the chi-square gate on the
  difference with the summed covariances to every candidate pair at once, then the optimal
  one-to-one assignment (:func:`stratowatch.tracking.association.gnn`);
* :func:`covariance_intersection` fuses every matched pair at once, with ``w`` found by a
  golden-section search run on all pairs together (the criteria are convex in ``w``);
* :func:`fuse` folds one partner's table into the fused picture, keeping each fused track's
  contributions (node, track id, time) in columns;
* :class:`GlobalIds` names the fused tracks so that two nodes running the same rule on the same
  pair agree: a fused track is named after the contributor that started first (``"CAN:17"``), and
  a contributor keeps the name it was given (sticky), so a balloon handed over at a border keeps
  its id after the first node's track ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from stratowatch.geo import ecef_to_geodetic, enu_basis, geodetic_to_ecef
from stratowatch.tracking.association import Pairs, gnn
from stratowatch.tracking.gating import chi2_gate, spatial_candidates

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]
Criterion = Literal["trace", "det"]

#: Golden-section iterations of the CI weight search (0.618^40 ~ 4e-9 of the interval).
_GOLDEN_ITERATIONS = 40
_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True, slots=True)
class TrackSet:
    """One node's tracks as columns.

    ``key``: the contributor's name, ``"<partner>:<track id>"``; ``time_s``: the time of the state;
    ``first_s``: when the track started (names the fused track, see :class:`GlobalIds`).
    """

    node: StrArray
    track_id: IntArray
    key: StrArray
    time_s: FloatArray
    first_s: FloatArray
    x: FloatArray  # (n, 6) ECEF position (m), velocity (m/s)
    P: FloatArray  # (n, 6, 6)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @classmethod
    def empty(cls) -> TrackSet:
        return cls(
            node=np.empty(0, dtype="<U16"),
            track_id=np.empty(0, np.int64),
            key=np.empty(0, dtype="<U40"),
            time_s=np.empty(0),
            first_s=np.empty(0),
            x=np.empty((0, 6)),
            P=np.empty((0, 6, 6)),
        )

    @classmethod
    def from_geodetic(
        cls,
        node: npt.ArrayLike,
        track_id: npt.ArrayLike,
        time_s: npt.ArrayLike,
        first_s: npt.ArrayLike,
        lat_deg: npt.ArrayLike,
        lon_deg: npt.ArrayLike,
        alt_m: npt.ArrayLike,
        velocity_enu_mps: npt.ArrayLike,
        position_sigma_enu_m: npt.ArrayLike,
        velocity_sigma_enu_mps: npt.ArrayLike,
    ) -> TrackSet:
        """A table from the tracks' published form (position, ENU velocity, ENU sigmas).

        The published sigmas are the diagonal of the ENU covariance; the ECEF covariance is that
        diagonal rotated, ``B^T diag(s^2) B``."""
        lat = np.asarray(lat_deg, np.float64)
        lon = np.asarray(lon_deg, np.float64)
        n = lat.shape[0]
        basis = enu_basis(lat, lon).reshape(n, 3, 3)  # rows: east, north, up in ECEF
        pos = geodetic_to_ecef(lat, lon, np.asarray(alt_m, np.float64)).reshape(n, 3)
        v_enu = np.asarray(velocity_enu_mps, np.float64).reshape(n, 3)
        vel = np.einsum("nij,ni->nj", basis, v_enu)
        sp = np.asarray(position_sigma_enu_m, np.float64).reshape(n, 3)
        sv = np.broadcast_to(np.asarray(velocity_sigma_enu_mps, np.float64), (n, 3))
        P = np.zeros((n, 6, 6))
        P[:, :3, :3] = np.einsum("nki,nk,nkj->nij", basis, sp * sp, basis)
        P[:, 3:, 3:] = np.einsum("nki,nk,nkj->nij", basis, sv * sv, basis)
        nodes = np.asarray(node, dtype=np.str_).reshape(-1)
        nodes = np.broadcast_to(nodes, (n,)) if nodes.shape[0] == 1 else nodes
        ids = np.asarray(track_id, np.int64).reshape(n)
        return cls(
            node=np.asarray(nodes),
            track_id=ids,
            key=contributor_keys(nodes, ids),
            time_s=np.asarray(time_s, np.float64).reshape(n),
            first_s=np.asarray(first_s, np.float64).reshape(n),
            x=np.concatenate([pos, vel], axis=1),
            P=P,
        )

    def take(self, rows: npt.ArrayLike) -> TrackSet:
        r = np.asarray(rows)
        return TrackSet(
            self.node[r], self.track_id[r], self.key[r], self.time_s[r], self.first_s[r], self.x[r], self.P[r]
        )

    def renamed(self, key: StrArray, first_s: FloatArray) -> TrackSet:
        """The same tracks under other contributor names (see :func:`aliases`)."""
        return TrackSet(self.node, self.track_id, key, self.time_s, first_s, self.x, self.P)


def contributor_keys(node: npt.ArrayLike, track_id: npt.ArrayLike) -> StrArray:
    """``"<node>:<track id>"`` for every row."""
    return np.char.add(
        np.char.add(np.asarray(node, dtype=np.str_), ":"), np.asarray(track_id).astype(np.str_)
    )


def geodetic_state(x: FloatArray, P: FloatArray) -> dict[str, FloatArray]:
    """The published form of states: lat/lon/alt, ENU velocity and one-sigma ENU position and
    velocity uncertainties (the square roots of the rotated covariances' diagonals)."""
    n = x.shape[0]
    llh = ecef_to_geodetic(x[:, :3]).reshape(n, 3)
    basis = enu_basis(llh[:, 0], llh[:, 1]).reshape(n, 3, 3)
    vel = np.einsum("nij,nj->ni", basis, x[:, 3:])
    cp = np.einsum("nij,njk,nlk->nil", basis, P[:, :3, :3], basis)
    cv = np.einsum("nij,njk,nlk->nil", basis, P[:, 3:, 3:], basis)
    return {
        "lat_deg": llh[:, 0],
        "lon_deg": llh[:, 1],
        "alt_m": llh[:, 2],
        "velocity_enu_mps": vel,
        "position_sigma_m": np.sqrt(np.maximum(np.diagonal(cp, axis1=1, axis2=2), 0.0)),
        "velocity_sigma_mps": np.sqrt(np.maximum(np.diagonal(cv, axis1=1, axis2=2), 0.0)),
    }


# --------------------------------------------------------------------------- prediction


def predict(x: FloatArray, P: FloatArray, dt_s: FloatArray, q: float) -> tuple[FloatArray, FloatArray]:
    """Constant velocity over ``dt_s`` (per row, may be negative) with white acceleration noise of
    spectral density ``q`` (m^2/s^3) per axis; the noise grows with ``|dt|`` either way."""
    dt = np.asarray(dt_s, np.float64)
    n = x.shape[0]
    F = np.broadcast_to(np.eye(6), (n, 6, 6)).copy()
    F[:, 0, 3] = F[:, 1, 4] = F[:, 2, 5] = dt
    xo = np.einsum("nij,nj->ni", F, x)
    Po = np.einsum("nij,njk,nlk->nil", F, P, F)
    a = np.abs(dt)
    eye = np.eye(3)
    Po[:, :3, :3] += (q * a**3 / 3.0)[:, None, None] * eye
    Po[:, :3, 3:] += (q * dt**2 / 2.0)[:, None, None] * eye
    Po[:, 3:, :3] += (q * dt**2 / 2.0)[:, None, None] * eye
    Po[:, 3:, 3:] += (q * a)[:, None, None] * eye
    return xo, Po


def at_epoch(tracks: TrackSet, epoch_s: float, q: float) -> TrackSet:
    """Every track predicted to ``epoch_s``."""
    x, P = predict(tracks.x, tracks.P, epoch_s - tracks.time_s, q)
    return TrackSet(
        tracks.node, tracks.track_id, tracks.key, np.full(len(tracks), epoch_s), tracks.first_s, x, P
    )


# --------------------------------------------------------------------------- association


def associate(
    xa: FloatArray,
    Pa: FloatArray,
    xb: FloatArray,
    Pb: FloatArray,
    *,
    gate_probability: float = 0.9999,
    dims: int = 3,
    max_distance_m: float = 100_000.0,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Rows ``(ia, ib)`` of the assigned pairs of two tables at the same epoch, and their squared
    Mahalanobis distances.

    The gate is the chi-square quantile on the first ``dims`` components of the difference
    (3: position only, robust to poorly known velocities; 6: position and velocity) with the
    summed covariances. Candidates come from kd-trees first (each track reaches as far as its
    gate's largest axis, at most ``max_distance_m``); the assignment is the minimum-cost
    one-to-one matching where a track may stay unmatched at the cost of its gate."""
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    if xa.shape[0] == 0 or xb.shape[0] == 0:
        return empty
    gate = chi2_gate(gate_probability, dims)
    ra = np.minimum(np.sqrt(gate * np.trace(Pa[:, :3, :3], axis1=1, axis2=2)), max_distance_m)
    rb = np.minimum(np.sqrt(gate * np.trace(Pb[:, :3, :3], axis1=1, axis2=2)), max_distance_m)
    ia, ib = spatial_candidates(xa[:, :3], ra, xb[:, :3], rb)
    if ia.size == 0:
        return empty
    d = (xa[ia] - xb[ib])[:, :dims]
    S = Pa[ia][:, :dims, :dims] + Pb[ib][:, :dims, :dims]
    L = np.linalg.cholesky(S)
    z = np.linalg.solve(L, d[:, :, None])[:, :, 0]
    d2 = np.einsum("ni,ni->n", z, z)
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    keep = d2 <= gate
    if not keep.any():
        return empty
    pairs = Pairs(
        track=ia[keep],
        det=ib[keep],
        d2=d2[keep],
        logdet_s=logdet[keep],
        gate=np.full(int(keep.sum()), gate),
        dim=np.full(int(keep.sum()), dims, np.int64),
    )
    chosen, _ = gnn(pairs)
    return pairs.track[chosen], pairs.det[chosen], pairs.d2[chosen]


# --------------------------------------------------------------------------- covariance intersection


def _objective(
    info_a: npt.NDArray[Any], info_b: npt.NDArray[Any], w: FloatArray, criterion: Criterion
) -> FloatArray:
    info = w[:, None, None] * info_a + (1.0 - w)[:, None, None] * info_b
    if criterion == "det":
        return np.asarray(-np.linalg.slogdet(info)[1])  # log det P = -log det P^-1
    return np.asarray(np.trace(np.linalg.inv(info), axis1=1, axis2=2))


def ci_weights(Pa: FloatArray, Pb: FloatArray, criterion: Criterion = "trace") -> FloatArray:
    """The weight ``w`` of ``a`` minimising the trace (or determinant) of the fused covariance,
    for every pair at once (golden-section search; both criteria are convex in ``w``)."""
    n = Pa.shape[0]
    if n == 0:
        return np.empty(0)
    info_a, info_b = np.linalg.inv(Pa), np.linalg.inv(Pb)
    lo, hi = np.zeros(n), np.ones(n)
    c = hi - _INV_PHI * (hi - lo)
    d = lo + _INV_PHI * (hi - lo)
    fc, fd = _objective(info_a, info_b, c, criterion), _objective(info_a, info_b, d, criterion)
    for _ in range(_GOLDEN_ITERATIONS):
        left = fc < fd  # the minimum lies in [lo, d]: drop (d, hi], else drop [lo, c)
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        new_c = np.where(left, hi - _INV_PHI * (hi - lo), d)
        new_d = np.where(left, c, lo + _INV_PHI * (hi - lo))
        f_new = _objective(info_a, info_b, np.where(left, new_c, new_d), criterion)
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
        c, d = new_c, new_d
    w = 0.5 * (lo + hi)
    # an end (one estimate alone) may beat every interior point
    zeros, ones = np.zeros(n), np.ones(n)
    f = np.stack([_objective(info_a, info_b, v, criterion) for v in (zeros, w, ones)], axis=1)
    return np.asarray(np.choose(np.argmin(f, axis=1), [zeros, w, ones]))


def covariance_intersection(
    xa: FloatArray, Pa: FloatArray, xb: FloatArray, Pb: FloatArray, criterion: Criterion = "trace"
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Fused states, covariances and weights of pairs ``(a_i, b_i)`` (see the module docstring)."""
    w = ci_weights(Pa, Pb, criterion)
    info_a, info_b = np.linalg.inv(Pa), np.linalg.inv(Pb)
    info = w[:, None, None] * info_a + (1.0 - w)[:, None, None] * info_b
    P = np.linalg.inv(info)
    P = 0.5 * (P + np.swapaxes(P, 1, 2))
    y = w[:, None] * np.einsum("nij,nj->ni", info_a, xa) + (1.0 - w)[:, None] * np.einsum(
        "nij,nj->ni", info_b, xb
    )
    return np.einsum("nij,nj->ni", P, y), P, w


# --------------------------------------------------------------------------- the fused picture


@dataclass(frozen=True, slots=True)
class Fused:
    """The fused picture at one epoch: one row per object, one contribution column per node.

    ``nodes[k]`` names column ``k``; ``key[i, k]`` is node k's contributing track to row i
    (``""``: none), with its ``track_id`` (-1: none), the time of the state it contributed
    (``time_c``, NaN: none) and when it started (``first_c``, +inf: none)."""

    epoch_s: float
    x: FloatArray  # (n, 6) at the epoch
    P: FloatArray  # (n, 6, 6)
    nodes: tuple[str, ...]
    key: StrArray  # (n, m)
    track_id: IntArray  # (n, m)
    time_c: FloatArray  # (n, m)
    first_c: FloatArray  # (n, m)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_contributors(self) -> IntArray:
        return np.asarray((self.key != "").sum(axis=1), np.int64)


def start(tracks: TrackSet, node: str, epoch_s: float, q: float) -> Fused:
    """A fused picture of one node's tracks alone (each its own row)."""
    at = at_epoch(tracks, epoch_s, q)
    return Fused(
        epoch_s=float(epoch_s),
        x=at.x,
        P=at.P,
        nodes=(node,),
        key=tracks.key.astype("<U40")[:, None],
        track_id=tracks.track_id[:, None].copy(),
        time_c=tracks.time_s[:, None].copy(),
        first_c=tracks.first_s[:, None].copy(),
    )


def fuse(
    fused: Fused,
    tracks: TrackSet,
    node: str,
    q: float,
    *,
    gate_probability: float = 0.9999,
    gate_dims: int = 3,
    max_distance_m: float = 100_000.0,
    criterion: Criterion = "trace",
) -> Fused:
    """Fold one more node's tracks into the picture: each is predicted to the picture's epoch,
    associated one-to-one with the fused rows (gate and optimal assignment, :func:`associate`),
    fused by covariance intersection where matched, and added as a new row where not. The node
    becomes a new contribution column."""
    at = at_epoch(tracks, fused.epoch_s, q)
    ia, ib, _ = associate(
        fused.x,
        fused.P,
        at.x,
        at.P,
        gate_probability=gate_probability,
        dims=gate_dims,
        max_distance_m=max_distance_m,
    )
    x, P = fused.x.copy(), fused.P.copy()
    if ia.size:
        x[ia], P[ia], _ = covariance_intersection(fused.x[ia], fused.P[ia], at.x[ib], at.P[ib], criterion)
    n, nb = len(fused), len(tracks)
    alone = np.setdiff1d(np.arange(nb), ib)
    rows = n + alone.size
    m = len(fused.nodes)

    def column(old: npt.NDArray[Any], fill: object, values: npt.NDArray[Any]) -> Any:
        out = np.full((rows, m + 1), fill, dtype=np.result_type(old.dtype, values.dtype))
        out[:n, :m] = old
        out[ia, m] = values[ib]
        out[n:, m] = values[alone]
        return out

    return Fused(
        epoch_s=fused.epoch_s,
        x=np.concatenate([x, at.x[alone]]),
        P=np.concatenate([P, at.P[alone]]),
        nodes=(*fused.nodes, node),
        key=column(fused.key, "", tracks.key),
        track_id=column(fused.track_id, -1, tracks.track_id),
        time_c=column(fused.time_c, np.nan, tracks.time_s),
        first_c=column(fused.first_c, np.inf, tracks.first_s),
    )


def aliases(
    own: TrackSet,
    view: TrackSet,
    epoch_s: float,
    q: float,
    *,
    gate_probability: float = 0.9999,
    max_distance_m: float = 100_000.0,
) -> tuple[IntArray, IntArray]:
    """Rows ``(i_own, i_view)`` where a track of the node's own picture and a track of the
    picture it keeps for a partner (rebuilt from the released observations only, numbered apart)
    follow the same object. A partner knows the node's tracks by their view ids, so the node
    names its contributions by them (:meth:`TrackSet.renamed`)."""
    a, b = at_epoch(own, epoch_s, q), at_epoch(view, epoch_s, q)
    ia, ib, _ = associate(
        a.x, a.P, b.x, b.P, gate_probability=gate_probability, max_distance_m=max_distance_m
    )
    return ia, ib


# --------------------------------------------------------------------------- global ids


class GlobalIds:
    """Stable names of fused tracks (see the module docstring).

    The rule, the same on every node: a fused row is named after the earliest-starting of its
    contributors' names, where a contributor's name is the global id it was given before (sticky)
    or else its own key (``"CAN:17"``), and a name's start is the start of the contributor it was
    first given to; ties go to the smaller name. Every contributor of the row then carries that
    name. A contributor not seen for ``forget_s`` (data time) is forgotten.

    The table is a sorted key array with parallel name/start/last-seen arrays, looked up with
    ``searchsorted`` (no per-track Python)."""

    def __init__(self, forget_s: float = 86_400.0) -> None:
        self.forget_s = forget_s
        self.keys: StrArray = np.empty(0, dtype="<U40")
        self.names: StrArray = np.empty(0, dtype="<U40")
        self.starts: FloatArray = np.empty(0)
        self.seen: FloatArray = np.empty(0)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def lookup(self, keys: StrArray) -> tuple[npt.NDArray[np.bool_], IntArray]:
        """Which ``keys`` have a name, and their rows in the table."""
        if not len(self):
            return np.zeros(keys.shape, bool), np.zeros(keys.shape, np.int64)
        idx = np.minimum(np.searchsorted(self.keys, keys), len(self) - 1).astype(np.int64)
        return np.asarray(self.keys[idx] == keys), idx

    def assign(self, fused: Fused) -> StrArray:
        """The global id of every row of ``fused`` (and remember them)."""
        n = len(fused)
        if n == 0:
            self._forget(fused.epoch_s)
            return np.empty(0, dtype="<U40")
        key = fused.key
        present = key != ""
        found, idx = self.lookup(key)
        found &= present
        if len(self):
            name = np.where(found, self.names[idx], key)
            start = np.where(found, self.starts[idx], fused.first_c)
        else:
            name, start = key, fused.first_c
        start = np.where(present, start, np.inf)
        _, rank = np.unique(name, return_inverse=True)
        rank = rank.reshape(name.shape)
        earliest = start == start.min(axis=1, keepdims=True)
        col = np.argmin(np.where(earliest & present, rank, np.iinfo(np.int64).max), axis=1)
        rows = np.arange(n)
        gid, gstart = name[rows, col], start[rows, col]
        # two rows may claim one name (a coasting track and its successor that no longer
        # associate): the row with more contributors, then the newer state, keeps it; another
        # takes its own earliest contributor's key (primed when that is the name it lost)
        newest = np.max(np.where(present, fused.time_c, -np.inf), axis=1)
        order = np.lexsort((rows, -newest, -present.sum(axis=1), gid))
        lost = order[1:][gid[order][1:] == gid[order][:-1]]
        if lost.size:
            own_col = np.argmin(np.where(present[lost], fused.first_c[lost], np.inf), axis=1)
            alt = key[lost, own_col]
            gid = gid.astype(object)
            gid[lost] = np.where(alt == gid[lost], np.char.add(alt.astype(np.str_), "'"), alt)
            gid = gid.astype(np.str_)
            gstart[lost] = fused.first_c[lost, own_col]
        # remember: every contributor now carries its row's name (new entries win over old ones)
        r, c = np.nonzero(present)
        new_keys = key[r, c]
        keys = np.concatenate([new_keys, self.keys])
        order = np.unique(keys, return_index=True)[1]  # first occurrence: the new entry
        self.keys = keys[order].astype("<U40")
        self.names = np.concatenate([gid[r], self.names])[order].astype("<U40")
        self.starts = np.concatenate([gstart[r], self.starts])[order]
        self.seen = np.concatenate([np.full(new_keys.shape, fused.epoch_s), self.seen])[order]
        self._forget(fused.epoch_s)
        return np.asarray(gid.astype("<U40"))

    def snapshot(self) -> bytes:
        """The table as JSON bytes (kept in the store, so a restarted node keeps its names)."""
        doc = {
            "keys": self.keys.tolist(),
            "names": self.names.tolist(),
            "starts": self.starts.tolist(),
            "seen": self.seen.tolist(),
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def restore(self, blob: bytes) -> None:
        doc = json.loads(blob)
        self.keys = np.asarray(doc["keys"], dtype="<U40")
        self.names = np.asarray(doc["names"], dtype="<U40")
        self.starts = np.asarray(doc["starts"], dtype=np.float64)
        self.seen = np.asarray(doc["seen"], dtype=np.float64)
        order = np.argsort(self.keys, kind="stable")  # lookups need the keys sorted
        self.keys, self.names = self.keys[order], self.names[order]
        self.starts, self.seen = self.starts[order], self.seen[order]

    def _forget(self, now_s: float) -> None:
        keep = self.seen >= now_s - self.forget_s
        if not keep.all():
            self.keys, self.names = self.keys[keep], self.names[keep]
            self.starts, self.seen = self.starts[keep], self.seen[keep]
