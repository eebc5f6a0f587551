"""Data association over sparse (track, detection) candidate pairs.

Both methods take the gated pairs as flat arrays (no per-track or per-detection Python loop):

* ``gnn`` — global nearest neighbour: the minimum-cost one-to-one assignment in which each track
  may also stay unassigned (at a miss cost) and each detection may stay free (it may start a
  track). Solved exactly by LAPJV on a sparse augmented bipartite graph (scipy's
  ``min_weight_full_bipartite_matching``): cost only grows with the number of gated pairs, and
  disconnected clusters never interact, so it is equivalent to ``linear_sum_assignment`` per
  connected cluster without a Python loop over clusters.
* ``jpda`` — joint probabilistic data association with Fitzgerald's "cheap JPDA" marginals
  beta_ij = G_ij / (T_i + D_j - G_ij + B), T_i = sum_j G_ij, D_j = sum_i G_ij, where
  G_ij = P_D N(nu_ij; 0, S_ij) / lambda is the likelihood ratio against clutter density lambda.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Pairs:
    """Gated candidate pairs: track row, detection row, and the pair's statistics."""

    track: IntArray
    det: IntArray
    d2: FloatArray  # squared Mahalanobis distance of the innovation
    logdet_s: FloatArray  # log det of the innovation covariance
    gate: FloatArray  # chi-square gate of the pair's measurement dimension
    dim: IntArray

    def __len__(self) -> int:
        return int(self.track.shape[0])

    def take(self, sel: npt.ArrayLike) -> Pairs:
        s = np.asarray(sel)
        return Pairs(self.track[s], self.det[s], self.d2[s], self.logdet_s[s], self.gate[s], self.dim[s])


def gnn(pairs: Pairs) -> tuple[IntArray, IntArray]:
    """Indices into ``pairs`` of the assigned pairs (track rows and det rows are each unique).

    Pair cost d2 + log|S| (the negative log-likelihood up to a constant); a track's miss cost is
    its gate plus its smallest log|S|, so a lone track takes a detection exactly when it is
    inside the gate.
    """
    n = len(pairs)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    tracks, t_idx = np.unique(pairs.track, return_inverse=True)
    dets, d_idx = np.unique(pairs.det, return_inverse=True)
    nt, nd = tracks.size, dets.size
    cost = pairs.d2 + pairs.logdet_s
    min_logdet = np.full(nt, np.inf)
    np.minimum.at(min_logdet, t_idx, pairs.logdet_s + pairs.gate)
    if nt * (nd + nt) <= _DENSE_MAX:
        return _gnn_dense(pairs, t_idx, d_idx, nt, nd, cost, min_logdet)
    # Rows: tracks [0, nt), detection dummies [nt, nt+nd). Cols: dets [0, nd), track dummies [nd, nd+nt).
    rows = np.concatenate([t_idx, np.arange(nt), nt + np.arange(nd), nt + d_idx])
    cols = np.concatenate([d_idx, nd + np.arange(nt), np.arange(nd), nd + t_idx])
    w = np.concatenate([cost, min_logdet, np.zeros(nd), np.zeros(n)])
    w = w - w.min() + 1.0  # all full matchings have nt+nd edges: a shift keeps the optimum
    graph = coo_matrix((w, (rows, cols)), shape=(nt + nd, nd + nt)).tocsr()
    r, c = min_weight_full_bipartite_matching(graph)
    real = (r < nt) & (c < nd)
    # Map matched (track, det) back to pair indices.
    key = t_idx.astype(np.int64) * nd + d_idx
    order = np.argsort(key)
    want = r[real].astype(np.int64) * nd + c[real]
    pos = np.searchsorted(key[order], want)
    chosen = order[pos]
    return chosen, np.asarray(pairs.track[chosen])


_DENSE_MAX = 20_000  # below this many cells a dense Hungarian solve is faster than building a graph


def _gnn_dense(
    pairs: Pairs, t_idx: IntArray, d_idx: IntArray, nt: int, nd: int, cost: FloatArray, miss: FloatArray
) -> tuple[IntArray, IntArray]:
    """The same optimum on a small problem: tracks x (detections + one private miss column each);
    a detection left unassigned costs nothing (it may start a track)."""
    big = float(np.max(cost, initial=0.0) + np.max(miss) + 1.0) * 10.0
    matrix = np.full((nt, nd + nt), big)
    matrix[t_idx, d_idx] = cost
    matrix[np.arange(nt), nd + np.arange(nt)] = miss
    rows, cols = linear_sum_assignment(matrix)
    real = (cols < nd) & (matrix[rows, cols] < big)
    want = rows[real].astype(np.int64) * nd + cols[real]
    key = t_idx.astype(np.int64) * nd + d_idx
    order = np.argsort(key)
    chosen = order[np.searchsorted(key[order], want)]
    return chosen, np.asarray(pairs.track[chosen])


def cheap_jpda(pairs: Pairs, p_detect: float, clutter_density: float, p_gate: float = 0.999) -> FloatArray:
    """Marginal association probabilities beta for every pair (missed-detection mass is
    1 - sum over the track's pairs)."""
    if len(pairs) == 0:
        return np.empty(0)
    log_like = -0.5 * (pairs.d2 + pairs.logdet_s + pairs.dim * np.log(2.0 * np.pi))
    g = p_detect * np.exp(log_like) / max(clutter_density, 1e-300)
    nt = int(pairs.track.max()) + 1
    nd = int(pairs.det.max()) + 1
    t_sum = np.bincount(pairs.track, weights=g, minlength=nt)
    d_sum = np.bincount(pairs.det, weights=g, minlength=nd)
    b = 1.0 - p_detect * p_gate
    beta = g / (t_sum[pairs.track] + d_sum[pairs.det] - g + b)
    # Normalise so that no track's detection probabilities exceed one.
    tot = np.bincount(pairs.track, weights=beta, minlength=nt)
    scale = np.where(tot > 1.0, 1.0 / np.maximum(tot, 1e-300), 1.0)
    return np.asarray(beta * scale[pairs.track])
