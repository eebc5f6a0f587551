import numpy as np

from stratowatch.tracking import imm
from stratowatch.tracking.motion import DEFAULT_MODELS
from stratowatch.tracking.tracker import default_switching_rates


def _random_state(rng, n, m=3):
    x = rng.normal(size=(n, m, 6)) * [1000, 1000, 100, 50, 50, 5]
    A = rng.normal(size=(n, m, 6, 6))
    P = A @ np.swapaxes(A, -1, -2) + 10 * np.eye(6)
    mu = rng.dirichlet(np.ones(m), size=n)
    return x, P, mu


def test_compiled_kernel_equals_numpy_reference_forward_and_late():
    rng = np.random.default_rng(3)
    n = 40
    x, P, mu = _random_state(rng, n)
    dt = rng.uniform(-30, 60, n)
    up = rng.normal(size=(n, 3))
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    rates = default_switching_rates(DEFAULT_MODELS)
    a = imm.predict_pairs(x, P, mu, dt, up, DEFAULT_MODELS, rates)
    b = imm.predict_pairs_numpy(x, P, mu, dt, up, DEFAULT_MODELS, rates)
    assert np.any(a.late) and not np.all(a.late)
    for name in ("c", "x_prior", "P_prior", "x_meas", "P_meas", "F"):
        assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-6), name


def test_mixing_with_no_switching_keeps_each_model():
    rng = np.random.default_rng(1)
    x, P, mu = _random_state(rng, 5)
    pi = np.tile(np.eye(3), (5, 1, 1))
    x0, P0, c = imm.mix(x, P, mu, pi)
    assert np.allclose(x0, x) and np.allclose(P0, P) and np.allclose(c, mu)


def test_combine_is_moment_matching():
    x = np.array([[[0.0] * 6, [2.0] + [0.0] * 5]])
    P = np.tile(np.eye(6), (1, 2, 1, 1))
    mu = np.array([[0.5, 0.5]])
    xc, Pc = imm.combine(x, P, mu)
    assert np.isclose(xc[0, 0], 1.0)
    assert np.isclose(Pc[0, 0, 0], 1.0 + 1.0)  # within-model + spread


def test_update_moves_probability_to_the_model_that_explains_the_measurement():
    # Two models with different predictions; the measurement agrees with model 1.
    x = np.zeros((1, 2, 6))
    x[0, 1, 0] = 100.0
    P = np.tile(np.eye(6) * 25.0, (1, 2, 1, 1))
    pred = imm.PairPrediction(
        late=np.array([False]),
        c=np.array([[0.5, 0.5]]),
        x_prior=x,
        P_prior=P,
        x_meas=x,
        P_meas=P,
        F=np.tile(np.eye(6), (1, 2, 1, 1)),
    )
    H = np.zeros((1, 2, 3, 6))
    H[..., :3] = np.eye(3)
    zhat = x[..., :3]
    z = np.array([100.0, 0.0, 0.0])
    nu = z - zhat
    _, _, mu, _ = imm.update_pairs(pred, zhat, H, np.eye(3)[None] * 25.0, nu)
    assert mu[0, 1] > 0.99
