import numpy as np

from stratowatch import geo
from stratowatch.tracking.motion import (
    AIRCRAFT_CRUISE,
    BALLOON_DRIFT,
    MotionModel,
    transition_probabilities,
)


def test_constant_velocity_matrices_are_the_textbook_ones_with_z_up():
    dt = np.array([10.0])
    up = np.array([[0.0, 0.0, 1.0]])
    m = MotionModel("cv", q_h=2.0, q_v=2.0)
    F, Q = m.matrices(dt, up)
    expected_f = np.eye(6)
    expected_f[:3, 3:] = 10.0 * np.eye(3)
    assert np.allclose(F[0], expected_f)
    assert np.allclose(Q[0, :3, :3], 2.0 * 1000.0 / 3.0 * np.eye(3))
    assert np.allclose(Q[0, :3, 3:], 2.0 * 50.0 * np.eye(3))
    assert np.allclose(Q[0, 3:, 3:], 2.0 * 10.0 * np.eye(3))


def test_models_are_rotation_consistent_anywhere_on_earth():
    # In ECEF at 60N 100W, the balloon model's vertical-velocity decay acts along the local up.
    lat, lon = 60.0, -100.0
    basis = geo.enu_basis(lat, lon)
    up = basis[2][None]
    F, Q = BALLOON_DRIFT.matrices(np.array([300.0]), up)
    v_up = basis[2] * 2.0  # 2 m/s climb
    v_east = basis[0] * 20.0
    out_up = F[0, 3:, 3:] @ v_up
    out_east = F[0, 3:, 3:] @ v_east
    assert np.allclose(out_east, v_east)  # horizontal velocity kept
    assert np.allclose(out_up, v_up * np.exp(-1.0))  # vertical velocity decays with tau=300 s
    # Q is symmetric positive definite, and its vertical part is the small one
    assert np.allclose(Q[0], Q[0].T)
    assert np.all(np.linalg.eigvalsh(Q[0]) > 0)
    assert basis[2] @ Q[0, 3:, 3:] @ basis[2] < basis[0] @ Q[0, 3:, 3:] @ basis[0]


def test_backward_steps_invert_forward_steps():
    up = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    F, _ = BALLOON_DRIFT.matrices(np.array([120.0, -120.0]), up)
    assert np.allclose(F[1] @ F[0], np.eye(6))
    F, _ = AIRCRAFT_CRUISE.matrices(np.array([5.0, -5.0]), up)
    assert np.allclose(F[1] @ F[0], np.eye(6))


def test_transition_probabilities_are_stochastic_and_tend_to_uniform():
    rates = np.array([[-0.1, 0.1], [0.1, -0.1]])
    pi = transition_probabilities(rates, np.array([0.0, 1.0, 1e4]))
    assert np.allclose(pi.sum(axis=2), 1.0)
    assert np.allclose(pi[0], np.eye(2))
    assert np.isclose(pi[1, 0, 1], 0.5 * (1 - np.exp(-0.2)))
    assert np.allclose(pi[2], 0.5)
