"""The compiled gating kernels equal the plain numpy equations."""

import numpy as np

from stratowatch.tracking import imm
from stratowatch.tracking._kernels import gate_point3, mahalanobis_logdet
from stratowatch.tracking.motion import DEFAULT_MODELS, switching_eigen
from stratowatch.tracking.tracker import default_switching_rates


def _spd(rng, n, m, scale=1.0):
    A = rng.normal(size=(n, m, m)) * scale
    return A @ np.swapaxes(A, 1, 2) + np.eye(m) * scale


def test_mahalanobis_and_logdet_match_numpy_and_flag_non_spd():
    rng = np.random.default_rng(0)
    for m in (2, 3, 6):
        S = _spd(rng, 50, m)
        nu = rng.normal(size=(50, m))
        d2, ld = mahalanobis_logdet(nu, S)
        assert np.allclose(d2, np.einsum("pi,pi->p", nu, np.linalg.solve(S, nu[..., None])[..., 0]))
        assert np.allclose(ld, np.linalg.slogdet(S)[1])
    bad = -np.eye(3)[None]
    d2, ld = mahalanobis_logdet(np.ones((1, 3)), bad)
    assert np.isinf(d2[0]) and np.isinf(ld[0])


def test_fused_point_gate_equals_the_two_step_computation():
    rng = np.random.default_rng(1)
    n_trk, n_pair = 20, 60
    x = rng.normal(size=(n_trk, 3, 6)) * [1e3, 1e3, 1e2, 50, 50, 2]
    P = np.stack([_spd(rng, n_trk, 6, 30.0) for _ in range(3)], axis=1)
    mu = rng.dirichlet(np.ones(3), size=n_trk)
    xc, Pc = imm.combine(x, P, mu)
    t_trk = rng.uniform(0, 10, n_trk)
    trk = rng.integers(0, n_trk, n_pair)
    det_t = rng.uniform(10, 30, n_pair)
    det_z = xc[trk, :3] + rng.normal(size=(n_pair, 3)) * 200
    det_R = _spd(rng, n_pair, 3, 100.0)
    up = np.tile([0.0, 0.0, 1.0], (n_pair, 1))
    rates = default_switching_rates(DEFAULT_MODELS)
    w, v, vinv = switching_eigen(rates)
    q_h = np.array([m.q_h for m in DEFAULT_MODELS])
    q_v = np.array([m.q_v for m in DEFAULT_MODELS])
    d2, ld = gate_point3(xc, Pc, mu, t_trk, trk, det_t, det_z, det_R, up, q_h, q_v, w, v, vinv)
    xp, Pp = imm.predict_combined(xc[trk], Pc[trk], mu[trk], det_t - t_trk[trk], up, DEFAULT_MODELS, rates)
    S = Pp[:, :3, :3] + det_R
    nu = det_z - xp[:, :3]
    assert np.allclose(d2, np.einsum("pi,pi->p", nu, np.linalg.solve(S, nu[..., None])[..., 0]))
    assert np.allclose(ld, np.linalg.slogdet(S)[1])
