"""GOSPA and continuity metrics against hand values and a brute-force definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stratowatch import geo
from stratowatch.sim import metrics
from stratowatch.sim.metrics import PointSet, gospa, score_tracks


def brute_force_gospa(x: np.ndarray, y: np.ndarray, c: float, p: float) -> float:
    """GOSPA (alpha = 2) straight from the definition: try every partial assignment."""
    best = np.inf
    n, m = len(x), len(y)
    for k in range(min(n, m) + 1):
        for xs in itertools.combinations(range(n), k):
            for ys in itertools.permutations(range(m), k):
                d = np.array([min(np.linalg.norm(x[i] - y[j]), c) for i, j in zip(xs, ys, strict=True)])
                total = np.sum(d**p) + c**p / 2 * (n - k) + c**p / 2 * (m - k)
                best = min(best, total)
    return float(best ** (1 / p))


def test_gospa_hand_values() -> None:
    assert gospa([[0, 0, 0]], [[3, 4, 0]], c_m=10).distance_m == pytest.approx(5.0)
    # beyond the cut-off: one missed + one false = sqrt(c^2/2 + c^2/2) = c
    far = gospa([[0, 0, 0]], [[300, 400, 0]], c_m=10)
    assert far.distance_m == pytest.approx(10.0)
    assert far.localisation_pth == 0.0 and far.missed_pth == 50.0 and far.false_pth == 50.0
    assert far.truth_index.size == 0
    # empty sets
    assert gospa(np.empty((0, 3)), np.empty((0, 3))).distance_m == 0.0
    only_truth = gospa([[0, 0, 0], [1, 1, 1]], np.empty((0, 3)), c_m=100)
    assert only_truth.missed_pth == 2 * 100**2 / 2 and only_truth.distance_m == pytest.approx(100.0)
    # two truths, one track near the second: localisation 1^2, one missed
    step = gospa([[0, 0, 0], [1000, 0, 0]], [[1000, 1, 0]], c_m=100)
    assert step.localisation_pth == pytest.approx(1.0)
    assert step.missed_pth == 5000.0 and step.false_pth == 0.0
    assert step.truth_index.tolist() == [1] and step.track_index.tolist() == [0]
    # p = 1
    assert gospa([[0, 0, 0]], [[0, 0, 7]], c_m=10, p=1).distance_m == pytest.approx(7.0)


@pytest.mark.parametrize("seed", range(12))
def test_gospa_equals_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 5), rng.integers(0, 5)
    x = rng.uniform(0, 3000, (n, 3))
    y = rng.uniform(0, 3000, (m, 3))
    c = float(rng.choice([500.0, 1000.0, 2000.0]))
    p = float(rng.choice([1.0, 2.0, 3.0]))
    step = gospa(x, y, c, p)
    assert step.distance_m == pytest.approx(brute_force_gospa(x, y, c, p), rel=1e-9, abs=1e-9)
    total = step.localisation_pth + step.missed_pth + step.false_pth
    assert total ** (1 / p) == pytest.approx(step.distance_m)


def test_score_over_time_and_continuity() -> None:
    # truth 1 moves along x; truth 2 stays; times 0..5
    t = np.arange(6, dtype=float)
    truth = PointSet(
        np.r_[t, t],
        np.r_[np.full(6, 1), np.full(6, 2)],
        np.r_[np.column_stack([t * 100, 0 * t, 0 * t]), np.column_stack([0 * t + 5000, 0 * t, 0 * t])],
    )
    # track 10 follows truth 1 at t0..2 (10 m off), track 11 at t3..5 (fragment + switch);
    # truth 2 is tracked by 20 at t0, t1 and t4 (a gap is no switch); 99 is a false track at t5
    tr_t = np.r_[t[:3], t[3:], [0.0, 1.0, 4.0], [5.0]]
    tr_id = np.r_[[10, 10, 10], [11, 11, 11], [20, 20, 20], [99]]
    xyz = np.r_[
        np.column_stack([t[:3] * 100, np.full(3, 10.0), np.zeros(3)]),
        np.column_stack([t[3:] * 100, np.full(3, 10.0), np.zeros(3)]),
        np.array([[5000, 0, 0], [5000, 0, 0], [5000, 0, 0]]),
        np.array([[90_000, 0, 0]]),
    ]
    res = score_tracks(truth, PointSet(tr_t, tr_id, xyz), c_m=1000.0)
    s = res.summary()
    assert res.n_times == 6
    assert s["truths_fragmented"] == 1 and s["ids_per_truth_max"] == 2
    assert s["id_switches"] == 1
    assert s["unassigned_track_ids"] == 1 and s["n_track_ids"] == 4
    assert s["truths_never_tracked"] == 0
    # per-time: truth 2 missed at t2, t3, t5; one false at t5
    assert res.missed_pth.tolist() == [0, 0, 5e5, 5e5, 0, 5e5]
    assert res.false_pth.tolist() == [0, 0, 0, 0, 0, 5e5]
    expect = np.sqrt(np.array([100, 100, 100 + 5e5, 100 + 5e5, 100, 100 + 1e6]))
    np.testing.assert_allclose(res.distance_m, expect)
    assert s["gospa_mean_m"] == pytest.approx(expect.mean())
    assert s["rms_pos_err_assigned_m"] == pytest.approx(np.sqrt(6 * 100 / 9))
    matches = {m.track_id: (m.truth_id, m.n_pairs, m.mean_error_m) for m in res.track_matches()}
    assert matches == {10: (1, 3, 10.0), 11: (1, 3, 10.0), 20: (2, 3, 0.0)}


def test_geodetic_points_are_scored_in_ecef() -> None:
    lat, lon, alt = 49.0, -112.0, 19_000.0
    lat2, lon2 = geo.destination(lat, lon, 90.0, 800.0)
    truth = PointSet.from_geodetic([0.0], [1], [lat], [lon], [alt])
    tracks = PointSet.from_geodetic([0.0], [7], [lat2], [lon2], [alt + 600.0])
    res = score_tracks(truth, tracks, c_m=5000.0)
    d = float(res.distance_m[0])
    # ~800 m east and 600 m up: about 1000 m (the sphere vs ellipsoid differs by < 0.5 %)
    assert d == pytest.approx(1000.0, rel=0.005)
    assert res.pair_track_id.tolist() == [7]


def test_times_that_agree_to_a_millisecond_share_a_time() -> None:
    truth = PointSet([10.0], [1], [[0, 0, 0]])
    tracks = PointSet([10.0004], [2], [[3, 4, 0]])
    res = score_tracks(truth, tracks, c_m=100.0)
    assert res.n_times == 1 and res.distance_m[0] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="c > 0"):
        score_tracks(truth, tracks, c_m=0.0)


def test_many_truths_with_noisy_tracks() -> None:
    """200 truths x 60 times with noisy tracks: numbers consistent with the noise."""
    rng = np.random.default_rng(1)
    t = np.repeat(np.arange(60.0), 200)
    ids = np.tile(np.arange(200), 60)
    xyz = rng.uniform(0, 4e5, (200, 3))[ids]
    noise = rng.normal(0, 50.0, xyz.shape)
    res = score_tracks(PointSet(t, ids, xyz), PointSet(t, ids + 1000, xyz + noise), c_m=1000.0)
    s = res.summary()
    assert s["truths_fragmented"] == 0 and s["id_switches"] == 0 and s["unassigned_track_ids"] == 0
    assert s["rms_pos_err_assigned_m"] == pytest.approx(50.0 * np.sqrt(3), rel=0.03)
    assert s["mean_missed_per_scan"] == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_clustered_assignment_equals_the_dense_one(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large sets are solved per cluster of close points: same GOSPA, same pairs."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    x = rng.uniform(0, 20_000, (n, 3))
    keep = rng.random(n) < 0.85
    # tracks: noisy copies (some crowded: noise comparable to the spacing) plus false ones
    y = np.vstack([x[keep] + rng.normal(0, 400, (keep.sum(), 3)), rng.uniform(0, 20_000, (20, 3))])
    rng.shuffle(y)
    dense = gospa(x, y, 1000.0, 2.0)
    monkeypatch.setattr(metrics, "DENSE_LIMIT", 0)
    clustered = gospa(x, y, 1000.0, 2.0)
    assert clustered.distance_m == pytest.approx(dense.distance_m, rel=1e-12)
    assert clustered.missed_pth == dense.missed_pth and clustered.false_pth == dense.false_pth
    got = sorted(zip(clustered.truth_index.tolist(), clustered.track_index.tolist(), strict=True))
    want = sorted(zip(dense.truth_index.tolist(), dense.track_index.tolist(), strict=True))
    assert got == want
    # and small cases against the definition, through the clustered path
    xs, ys = x[:4], y[:4]
    assert gospa(xs, ys, 5000.0, 2.0).distance_m == pytest.approx(brute_force_gospa(xs, ys, 5000.0, 2.0))
