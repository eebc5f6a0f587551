import numpy as np

from stratowatch.tracking.gating import identities_compatible, identity_pairs, spatial_candidates


def test_spatial_candidates_equal_brute_force():
    rng = np.random.default_rng(2)
    tp = rng.uniform(0, 1e5, (300, 3))
    dp = rng.uniform(0, 1e5, (400, 3))
    tr = rng.uniform(500, 5000, 300)
    dr = rng.uniform(100, 1000, 400)
    t, d = spatial_candidates(tp, tr, dp, dr)
    dist = np.linalg.norm(tp[:, None] - dp[None], axis=2)
    want = set(zip(*np.nonzero(dist <= tr[:, None] + dr[None]), strict=True))
    assert set(zip(t.tolist(), d.tolist(), strict=True)) == {(int(a), int(b)) for a, b in want}


def test_identity_pairs_and_compatibility():
    tracks = np.array([5, -1, 9, 2])
    dets = np.array([9, 3, -1, 5])
    t, d = identity_pairs(tracks, dets)
    assert set(zip(t.tolist(), d.tolist(), strict=True)) == {(2, 0), (0, 3)}
    ok = identities_compatible(np.array([5, -1, 5, 5]), np.array([5, 7, -1, 6]))
    assert ok.tolist() == [True, True, True, False]
