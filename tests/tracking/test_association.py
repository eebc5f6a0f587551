import itertools

import numpy as np

from stratowatch.tracking.association import Pairs, cheap_jpda, gnn


def _pairs(cost, gate=9.0):
    t, d = np.nonzero(np.isfinite(cost))
    return Pairs(
        t.astype(np.int64),
        d.astype(np.int64),
        cost[t, d],
        np.zeros(t.size),
        np.full(t.size, gate),
        np.full(t.size, 3),
    )


def _brute_force(cost, gate):
    nt, nd = cost.shape
    best, best_set = np.inf, None
    for perm in itertools.product(
        *[[-1] + [j for j in range(nd) if np.isfinite(cost[i, j])] for i in range(nt)]
    ):
        used = [j for j in perm if j >= 0]
        if len(used) != len(set(used)):
            continue
        c = sum(cost[i, j] if j >= 0 else gate for i, j in enumerate(perm))
        if c < best:
            best, best_set = c, {(i, j) for i, j in enumerate(perm) if j >= 0}
    return best_set


def test_gnn_resolves_a_contested_detection_globally():
    # track 0 is closest to det 0, but giving det 0 to track 1 and det 1 to track 0 is cheaper overall
    cost = np.array([[1.0, 2.0], [1.5, np.inf]])
    sel, _ = gnn(_pairs(cost))
    p = _pairs(cost)
    assert {(int(p.track[s]), int(p.det[s])) for s in sel} == {(0, 1), (1, 0)}


def test_gnn_equals_brute_force_on_random_sparse_problems():
    rng = np.random.default_rng(7)
    for _ in range(40):
        nt, nd = rng.integers(1, 5), rng.integers(1, 5)
        cost = rng.uniform(0, 12, size=(nt, nd))
        cost[rng.random((nt, nd)) < 0.4] = np.inf
        cost[cost > 9.0] = np.inf  # outside the gate
        if not np.isfinite(cost).any():
            continue
        p = _pairs(cost)
        sel, _ = gnn(p)
        got = {(int(p.track[s]), int(p.det[s])) for s in sel}
        want = _brute_force(cost, 9.0)
        got_cost = sum(cost[i, j] for i, j in got) + 9.0 * (nt - len(got))
        want_cost = sum(cost[i, j] for i, j in want) + 9.0 * (nt - len(want))
        assert np.isclose(got_cost, want_cost)


def test_gnn_handles_independent_clusters_in_one_call():
    # 1000 separate one-track/one-detection clusters plus one 2x2 conflict
    n = 1000
    t = np.r_[np.arange(n), n, n, n + 1]
    d = np.r_[np.arange(n), n, n + 1, n]
    c = np.r_[np.full(n, 1.0), 0.5, 0.6, 0.1]
    p = Pairs(t, d, c, np.zeros(t.size), np.full(t.size, 9.0), np.full(t.size, 3))
    sel, _ = gnn(p)
    assert sel.size == n + 2
    chosen = {(int(p.track[s]), int(p.det[s])) for s in sel}
    assert (n, n + 1) in chosen and (n + 1, n) in chosen


def test_cheap_jpda_probabilities():
    # one track, two detections at equal distance: equal shares below one
    p = Pairs(
        np.array([0, 0]), np.array([0, 1]), np.array([1.0, 1.0]), np.zeros(2), np.full(2, 9.0), np.full(2, 3)
    )
    beta = cheap_jpda(p, p_detect=0.9, clutter_density=1e-4)
    assert np.isclose(beta[0], beta[1]) and beta.sum() <= 1.0
    # a far detection gets far less weight than a near one
    p2 = Pairs(
        np.array([0, 0]), np.array([0, 1]), np.array([0.5, 8.0]), np.zeros(2), np.full(2, 9.0), np.full(2, 3)
    )
    b2 = cheap_jpda(p2, p_detect=0.9, clutter_density=1e-4)
    assert b2[0] > 10 * b2[1]


def test_dense_and_sparse_solvers_agree(monkeypatch):
    import stratowatch.tracking.association as assoc

    rng = np.random.default_rng(11)
    for _ in range(30):
        nt, nd = rng.integers(2, 30), rng.integers(2, 30)
        cost = rng.uniform(0, 12, size=(nt, nd))
        cost[rng.random((nt, nd)) < 0.7] = np.inf
        cost[cost > 9.0] = np.inf
        if not np.isfinite(cost).any():
            continue
        p = _pairs(cost)
        monkeypatch.setattr(assoc, "_DENSE_MAX", 10**9)
        dense, _ = gnn(p)
        monkeypatch.setattr(assoc, "_DENSE_MAX", 0)
        sparse, _ = gnn(p)
        n_tracks = len(np.unique(p.track))
        assert np.isclose(
            p.d2[dense].sum() + 9.0 * (n_tracks - dense.size),
            p.d2[sparse].sum() + 9.0 * (n_tracks - sparse.size),
        )
