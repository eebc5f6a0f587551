import numpy as np

from stratowatch.tracking import kalman


def test_scalar_predict_update_matches_hand_computation():
    # 1-D constant position: x=1, P=2, Q=0.5 -> predicted P=2.5; measurement z=2 with R=2.5.
    x, P = kalman.predict(np.array([1.0]), np.array([[2.0]]), np.array([[1.0]]), np.array([[0.5]]))
    assert P[0, 0] == 2.5
    H = np.array([[1.0]])
    S = kalman.innovation_covariance(P, H, np.array([[2.5]]))
    assert S[0, 0] == 5.0
    x2, P2 = kalman.update(x, P, np.array([2.0]) - x, H, S)
    # gain 0.5: halfway, variance halved
    assert np.isclose(x2[0], 1.5)
    assert np.isclose(P2[0, 0], 1.25)


def test_update_is_vectorised_over_leading_axes():
    rng = np.random.default_rng(0)
    n = 50
    A = rng.normal(size=(n, 4, 4))
    P = A @ np.swapaxes(A, 1, 2) + np.eye(4)
    x = rng.normal(size=(n, 4))
    H = np.tile(np.eye(2, 4), (n, 1, 1))
    R = np.tile(np.eye(2), (n, 1, 1))
    z = rng.normal(size=(n, 2))
    nu = z - x[:, :2]
    S = kalman.innovation_covariance(P, H, R)
    xs, Ps = kalman.update(x, P, nu, H, S)
    for i in range(0, n, 7):
        K = P[i] @ H[i].T @ np.linalg.inv(S[i])
        assert np.allclose(xs[i], x[i] + K @ nu[i])
        assert np.allclose(Ps[i], (np.eye(4) - K @ H[i]) @ P[i])


def test_mahalanobis_and_likelihood():
    nu = np.array([[3.0, 4.0]])
    S = np.array([[[1.0, 0.0], [0.0, 4.0]]])
    assert np.isclose(kalman.mahalanobis_sq(nu, S)[0], 9.0 + 4.0)
    ll = kalman.gaussian_log_likelihood(nu, S)[0]
    assert np.isclose(ll, -0.5 * (13.0 + np.log(4.0) + 2 * np.log(2 * np.pi)))
