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

from itertools import chain

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree
from scipy.stats import chi2

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def chi2_gate(probability: float, dim: int) -> float:
    return float(chi2.ppf(probability, dim))


def spatial_candidates(
    track_points: FloatArray,
    track_radius: FloatArray,
    det_points: FloatArray,
    det_radius: FloatArray,
) -> tuple[IntArray, IntArray]:
    """All (track, detection) index pairs whose points lie within the sum of their radii."""
    if track_points.shape[0] == 0 or det_points.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    tree = cKDTree(det_points)
    reach = track_radius + float(det_radius.max())
    lists = tree.query_ball_point(track_points, reach, return_sorted=False)
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    det = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(counts.sum()))
    trk = np.repeat(np.arange(track_points.shape[0], dtype=np.int64), counts)
    if det.size:
        d = np.linalg.norm(track_points[trk] - det_points[det], axis=1)
        keep = d <= track_radius[trk] + det_radius[det]
        trk, det = trk[keep], det[keep]
    return trk, det


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
