"""Gating: which (track, detection) pairs are worth scoring.

Two passes, both over whole arrays:

1. a spatial pre-gate with a kd-tree over detection points: a pair survives when the points are
   closer than the track's and the detection's uncertainty radii together (this is what keeps
   10,000 and 100,000 targets affordable: pairs grow with the picture, not with its square);
2. the chi-square gate on the squared Mahalanobis distance of each surviving pair's innovation,
   computed for all pairs at once (see :mod:`stratowatch.tracking.tracker`).

Identity-bearing reports (an ADS-B ICAO address) bind to the track with the same identity before
any kinematic test; pairs whose identities disagree are never formed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree
from scipy.stats import chi2

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@lru_cache(maxsize=64)
def chi2_gate(probability: float, dim: int) -> float:
    """The chi-square quantile that a true pair's squared Mahalanobis distance stays under."""
    return float(chi2.ppf(probability, dim))


def spatial_candidates(
    track_points: FloatArray, track_radius: FloatArray, det_points: FloatArray, det_radius: FloatArray
) -> tuple[IntArray, IntArray]:
    """All (track, detection) index pairs whose points lie within the sum of their radii.

    Tracks are split into a few classes of similar radius (tentative tracks reach much further
    than confirmed ones); each class is one kd-tree x kd-tree sparse distance query in C, so no
    per-track list ever reaches Python.
    """
    if track_points.shape[0] == 0 or det_points.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    det_tree = cKDTree(det_points)
    r_det = float(det_radius.max())
    cls = np.floor(np.log2(np.maximum(track_radius, 1.0))).astype(np.int64)
    out_t, out_d = [], []
    for c in np.unique(cls):  # a handful of radius classes (octaves), not one query per track
        idx = np.flatnonzero(cls == c)
        tree = cKDTree(track_points[idx])
        m = tree.sparse_distance_matrix(
            det_tree, float(track_radius[idx].max()) + r_det, output_type="ndarray"
        )
        trk = idx[m["i"]]
        det = m["j"].astype(np.int64)
        keep = m["v"] <= track_radius[trk] + det_radius[det]
        out_t.append(trk[keep])
        out_d.append(det[keep])
    return np.concatenate(out_t).astype(np.int64), np.concatenate(out_d)


def identity_pairs(track_identity: IntArray, det_identity: IntArray) -> tuple[IntArray, IntArray]:
    """(track, detection) pairs with the same identity code (codes >= 0)."""
    has = np.flatnonzero(det_identity >= 0)
    if has.size == 0 or track_identity.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(track_identity, kind="stable")
    sorted_ids = track_identity[order]
    pos = np.searchsorted(sorted_ids, det_identity[has])
    pos = np.minimum(pos, sorted_ids.size - 1)
    hit = sorted_ids[pos] == det_identity[has]
    return order[pos[hit]].astype(np.int64), has[hit].astype(np.int64)


def identities_compatible(track_identity: IntArray, det_identity: IntArray) -> npt.NDArray[np.bool_]:
    """A pair may associate unless both carry identities and they differ."""
    return (track_identity < 0) | (det_identity < 0) | (track_identity == det_identity)
