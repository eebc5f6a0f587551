"""Interacting multiple model (IMM) filtering, vectorised over (track, detection) pairs.

Every track keeps one Gaussian per motion model (x: (M, 6), P: (M, 6, 6)) and model
probabilities mu (M,). For a pair whose detection is later than the track's last update, the
usual IMM cycle runs (Blom & Bar-Shalom 1988): mix with the switching matrix Pi(dt), predict with
each model, update each model, reweight mu by each model's likelihood.

For an out-of-sequence detection (earlier than the track's last update) mixing is skipped and each
model applies the one-step retrodiction update (Bar-Shalom 2002, "algorithm B" without the
process-noise cross terms): the state is predicted *back* to the detection time for the
innovation, and the current state is corrected through the cross-covariance P F^T H^T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.tracking import kalman
from stratowatch.tracking.motion import MotionModel, transition_probabilities

FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class PairPrediction:
    """Per pair and model: the prior at the update time, and what the measurement sees."""

    late: npt.NDArray[np.bool_]  # (p,) out-of-sequence pairs
    c: FloatArray  # (p, M) predicted model probabilities
    x_prior: FloatArray  # (p, M, 6) state the update corrects (predicted, or current if late)
    P_prior: FloatArray  # (p, M, 6, 6)
    x_meas: FloatArray  # (p, M, 6) state at the detection time (predicted or retrodicted)
    P_meas: FloatArray  # (p, M, 6, 6)
    F: FloatArray  # (p, M, 6, 6)

    def combined_meas(self) -> tuple[FloatArray, FloatArray]:
        """Moment-matched single Gaussian at the detection time (for gating)."""
        return combine(self.x_meas, self.P_meas, self.c)


def mix(
    x: FloatArray, P: FloatArray, mu: FloatArray, pi: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """IMM interaction. x (p, M, 6), P (p, M, 6, 6), mu (p, M), pi (p, M, M) -> x0, P0, c."""
    p, m = mu.shape
    c = (mu[:, None, :] @ pi)[:, 0, :]
    w = pi * mu[:, :, None] / np.maximum(c[:, None, :], 1e-300)  # w[p, i, j] = P(i | j)
    wt = np.swapaxes(w, 1, 2)  # (p, j, i)
    x0 = wt @ x
    P0 = (wt @ P.reshape(p, m, 36)).reshape(p, m, 6, 6)
    d = x[:, None, :, :] - x0[:, :, None, :]  # (p, j, i, 6)
    P0 += np.swapaxes(d * wt[..., None], -1, -2) @ d
    return x0, P0, c


def combine(x: FloatArray, P: FloatArray, mu: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Moment-match a mixture (..., M, 6) with weights (..., M) to one Gaussian."""
    xc = (mu[..., None, :] @ x)[..., 0, :]
    d = x - xc[..., None, :]
    lead = mu.shape
    Pc = (mu[..., None, :] @ P.reshape(*lead, 36)).reshape(*lead[:-1], 6, 6)
    Pc += np.swapaxes(d * mu[..., None], -1, -2) @ d
    return xc, Pc


def predict_pairs(
    x: FloatArray,
    P: FloatArray,
    mu: FloatArray,
    dt: FloatArray,
    up: FloatArray,
    models: Sequence[MotionModel],
    switching_rates: FloatArray,
) -> PairPrediction:
    """Predict each pair's track (x (p, M, 6) ...) by its own dt (p,); ``up`` (p, 3) is the local
    vertical at each track. Compiled kernel; same results as :func:`predict_pairs_numpy`."""
    from stratowatch.tracking._kernels import imm_predict

    dt = np.ascontiguousarray(dt, dtype=np.float64)
    pi = transition_probabilities(switching_rates, np.where(dt < 0, 0.0, dt))
    q_h = np.array([mm.q_h for mm in models])
    q_v = np.array([mm.q_v for mm in models])
    tau = np.array([mm.tau_z_s for mm in models])
    c, x_prior, P_prior, x_meas, P_meas, F = imm_predict(
        np.ascontiguousarray(x),
        np.ascontiguousarray(P),
        np.ascontiguousarray(mu),
        dt,
        np.ascontiguousarray(up, dtype=np.float64),
        q_h,
        q_v,
        tau,
        np.ascontiguousarray(pi),
    )
    return PairPrediction(dt < 0, c, x_prior, P_prior, x_meas, P_meas, F)


def predict_combined(
    xc: FloatArray,
    Pc: FloatArray,
    mu: FloatArray,
    dt: FloatArray,
    up: FloatArray,
    models: Sequence[MotionModel],
    switching_rates: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """One-Gaussian prediction of each row's moment-matched state (for gating and display):
    constant-velocity transition, process noise weighted by the predicted model probabilities
    mu Pi(dt)."""
    from stratowatch.tracking._kernels import predict_combined as kernel
    from stratowatch.tracking.motion import switching_eigen

    w, v, vinv = switching_eigen(switching_rates)
    q_h = np.array([mm.q_h for mm in models])
    q_v = np.array([mm.q_v for mm in models])
    x, P = kernel(
        np.ascontiguousarray(xc),
        np.ascontiguousarray(Pc),
        np.ascontiguousarray(mu),
        np.ascontiguousarray(dt, dtype=np.float64),
        np.ascontiguousarray(up, dtype=np.float64),
        q_h,
        q_v,
        w,
        v,
        vinv,
    )
    return x, P


def predict_pairs_numpy(
    x: FloatArray,
    P: FloatArray,
    mu: FloatArray,
    dt: FloatArray,
    up: FloatArray,
    models: Sequence[MotionModel],
    switching_rates: FloatArray,
) -> PairPrediction:
    """Predict each pair's track (x (p, M, 6) ...) by its own dt (p,); ``up`` (p, 3) is the local
    vertical at each track."""
    p, m = mu.shape
    F = np.empty((p, m, 6, 6))
    Q = np.empty((p, m, 6, 6))
    for k, model in enumerate(models):  # a handful of models, each vectorised over all pairs
        F[:, k], Q[:, k] = model.matrices(dt, up)
    late = dt < 0
    pi = transition_probabilities(switching_rates, np.where(late, 0.0, dt))
    x0, P0, c = mix(x, P, mu, pi)
    Ft = np.swapaxes(F, -1, -2)
    if np.any(late):
        x0[late], P0[late], c[late] = x[late], P[late], mu[late]
    x_meas = (F @ x0[..., None])[..., 0]
    FPF = F @ P0 @ Ft
    P_meas = FPF + Q
    x_prior, P_prior = x_meas, P_meas
    if np.any(late):
        # Forward: F P0 F^T + Q.  Backward (late): F (P + Q) F^T, retrodicted from the current state.
        P_meas = P_meas.copy()
        P_meas[late] = FPF[late] + F[late] @ Q[late] @ Ft[late]
        x_prior, P_prior = x_meas.copy(), P_meas.copy()
        x_prior[late], P_prior[late] = x0[late], P0[late]
    return PairPrediction(late, c, x_prior, P_prior, x_meas, P_meas, F)


def update_pairs(
    pred: PairPrediction,
    zhat: FloatArray,
    H: FloatArray,
    R: FloatArray,
    nu: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Model-conditioned Kalman updates for assigned pairs.

    zhat, H, nu: per pair and model ((p, M, m), (p, M, m, 6), (p, M, m)); R (p, m, m).
    Returns x (p, M, 6), P (p, M, 6, 6), mu (p, M) and log-likelihoods (p, M).
    """
    Ht = np.swapaxes(H, -1, -2)
    S = H @ pred.P_meas @ Ht + R[:, None]
    cross = np.where(
        pred.late[:, None, None, None],
        pred.P_prior @ np.swapaxes(pred.F, -1, -2) @ Ht,
        pred.P_meas @ Ht,
    )
    x_new, P_new = kalman.update(pred.x_prior, pred.P_prior, nu, H, S, cross)
    loglik = kalman.gaussian_log_likelihood(nu, S)
    shifted = loglik - loglik.max(axis=1, keepdims=True)
    w = pred.c * np.exp(shifted)
    mu_new = w / w.sum(axis=1, keepdims=True)
    mu_new = np.where(pred.late[:, None], pred.c, mu_new)
    return x_new, P_new, mu_new, loglik
