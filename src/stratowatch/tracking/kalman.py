"""Kalman filter equations over stacks of states (leading axes broadcast).

Pure functions: arrays in, arrays out; no state, no IO. Notation follows the textbook
(x: state mean, P: covariance, F: transition, Q: process noise, H: measurement Jacobian,
R: measurement noise, nu: innovation, S: innovation covariance, K: gain).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def predict(x: FloatArray, P: FloatArray, F: FloatArray, Q: FloatArray) -> tuple[FloatArray, FloatArray]:
    """x' = F x ;  P' = F P F^T + Q."""
    x_pred = np.einsum("...ij,...j->...i", F, x)
    P_pred = F @ P @ np.swapaxes(F, -1, -2) + Q
    return x_pred, P_pred


def innovation_covariance(P: FloatArray, H: FloatArray, R: FloatArray) -> FloatArray:
    """S = H P H^T + R."""
    return H @ P @ np.swapaxes(H, -1, -2) + R


def update(
    x: FloatArray,
    P: FloatArray,
    nu: FloatArray,
    H: FloatArray,
    S: FloatArray,
    cross: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Kalman update with innovation ``nu`` and its covariance ``S``.

    ``cross`` is the state/measurement cross-covariance C = cov(x, z) (default P H^T). An
    out-of-sequence measurement passes the retrodicted cross-covariance here.
    K = C S^-1 ;  x+ = x + K nu ;  P+ = P - K S K^T (symmetrised).
    """
    C = P @ np.swapaxes(H, -1, -2) if cross is None else cross
    S_inv = np.linalg.inv(S)
    K = C @ S_inv
    x_new = x + np.einsum("...ij,...j->...i", K, nu)
    P_new = P - K @ S @ np.swapaxes(K, -1, -2)
    P_new = 0.5 * (P_new + np.swapaxes(P_new, -1, -2))
    return x_new, P_new


def mahalanobis_sq(nu: FloatArray, S: FloatArray) -> FloatArray:
    """nu^T S^-1 nu for stacks of innovations."""
    return np.einsum("...i,...i->...", nu, np.linalg.solve(S, nu[..., None])[..., 0])


def gaussian_log_likelihood(nu: FloatArray, S: FloatArray) -> FloatArray:
    """log N(nu; 0, S)."""
    m = nu.shape[-1]
    _, logdet = np.linalg.slogdet(S)
    return -0.5 * (mahalanobis_sq(nu, S) + logdet + m * np.log(2.0 * np.pi))
