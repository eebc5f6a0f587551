"""Compiled (numba) kernel of the IMM prediction, the tracker's innermost hot path.

It computes exactly what :func:`stratowatch.tracking.imm.predict_pairs_numpy` computes (the
tests hold the two equal); it exists because stacks of 6x6 products are dominated by numpy's
per-call overhead at the sizes a scan has. One loop over pairs in compiled code, no Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=False)
def imm_predict(x, P, mu, dt, up, q_h, q_v, tau, pi):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    n, m = mu.shape
    F = np.zeros((n, m, 6, 6))
    x_prior = np.empty((n, m, 6))
    P_prior = np.empty((n, m, 6, 6))
    x_meas = np.empty((n, m, 6))
    P_meas = np.empty((n, m, 6, 6))
    c = np.empty((n, m))
    x0 = np.empty((m, 6))
    P0 = np.empty((m, 6, 6))
    Q = np.empty((6, 6))
    FP = np.empty((6, 6))
    uu = np.empty((3, 3))
    for p in range(n):
        late = dt[p] < 0.0
        a = abs(dt[p])
        for i in range(3):
            for j in range(3):
                uu[i, j] = up[p, i] * up[p, j]
        # --- mixing
        if late:
            for j in range(m):
                c[p, j] = mu[p, j]
                for s in range(6):
                    x0[j, s] = x[p, j, s]
                    for t in range(6):
                        P0[j, s, t] = P[p, j, s, t]
        else:
            for j in range(m):
                cj = 0.0
                for i in range(m):
                    cj += pi[p, i, j] * mu[p, i]
                c[p, j] = cj
                for s in range(6):
                    acc = 0.0
                    for i in range(m):
                        acc += pi[p, i, j] * mu[p, i] * x[p, i, s]
                    x0[j, s] = acc / cj if cj > 1e-300 else x[p, j, s]
                for s in range(6):
                    for t in range(6):
                        P0[j, s, t] = 0.0
                for i in range(m):
                    w = pi[p, i, j] * mu[p, i] / cj if cj > 1e-300 else (1.0 if i == j else 0.0)
                    if w == 0.0:
                        continue
                    for s in range(6):
                        ds = x[p, i, s] - x0[j, s]
                        for t in range(6):
                            P0[j, s, t] += w * (P[p, i, s, t] + ds * (x[p, i, t] - x0[j, t]))
        # --- per model: F, Q, predict
        for k in range(m):
            if np.isfinite(tau[k]):
                a_z = np.exp(-dt[p] / tau[k])
                b_z = tau[k] * (1.0 - a_z)
            else:
                a_z = 1.0
                b_z = dt[p]
            Fk = F[p, k]
            for i in range(6):
                Fk[i, i] = 1.0
            for i in range(3):
                for j in range(3):
                    eye = 1.0 if i == j else 0.0
                    Fk[i, 3 + j] = dt[p] * eye + (b_z - dt[p]) * uu[i, j]
                    Fk[3 + i, 3 + j] = eye + (a_z - 1.0) * uu[i, j]
            q11 = a * a * a / 3.0
            q12 = dt[p] * a / 2.0
            q22 = a
            for i in range(3):
                for j in range(3):
                    eye = 1.0 if i == j else 0.0
                    base = q_h[k] * eye + (q_v[k] - q_h[k]) * uu[i, j]
                    Q[i, j] = q11 * base
                    Q[i, 3 + j] = q12 * base
                    Q[3 + i, j] = q12 * base
                    Q[3 + i, 3 + j] = q22 * base
            # x_meas = F x0
            for s in range(6):
                acc = 0.0
                for t in range(6):
                    acc += Fk[s, t] * x0[k, t]
                x_meas[p, k, s] = acc
            # FP = F (P0 [+ Q if late])
            for s in range(6):
                for t in range(6):
                    acc = 0.0
                    for u in range(6):
                        pv = P0[k, u, t]
                        if late:
                            pv += Q[u, t]
                        acc += Fk[s, u] * pv
                    FP[s, t] = acc
            for s in range(6):
                for t in range(6):
                    acc = 0.0
                    for u in range(6):
                        acc += FP[s, u] * Fk[t, u]
                    P_meas[p, k, s, t] = acc if late else acc + Q[s, t]
            if late:
                for s in range(6):
                    x_prior[p, k, s] = x0[k, s]
                    for t in range(6):
                        P_prior[p, k, s, t] = P0[k, s, t]
            else:
                for s in range(6):
                    x_prior[p, k, s] = x_meas[p, k, s]
                    for t in range(6):
                        P_prior[p, k, s, t] = P_meas[p, k, s, t]
    return c, x_prior, P_prior, x_meas, P_meas, F


@njit(cache=True)
def _switching(w, v, vinv, adt, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Pi(dt) = V exp(W |dt|) V^-1, clipped at zero and row-normalised, into ``out``."""
    m = w.shape[0]
    e = np.empty(m)
    for k in range(m):
        e[k] = np.exp(w[k] * adt)
    for i in range(m):
        tot = 0.0
        for j in range(m):
            acc = 0.0
            for k in range(m):
                acc += v[i, k] * e[k] * vinv[k, j]
            acc = max(acc, 0.0)
            out[i, j] = acc
            tot += acc
        for j in range(m):
            out[i, j] /= tot


@njit(cache=True)
def predict_combined(xc, Pc, mu, dt, up, q_h, q_v, w, v, vinv):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Predict the moment-matched (single Gaussian) state of each row by its own dt with the
    nearly-constant-velocity transition and the model-probability-weighted process noise.

    Used for gating and display, where one Gaussian per track is enough; the exact IMM cycle
    (:func:`imm_predict`) runs only for the pairs that are assigned.
    """
    n = xc.shape[0]
    m = mu.shape[1]
    x = np.empty((n, 6))
    P = np.empty((n, 6, 6))
    pi = np.empty((m, m))
    c = np.empty(m)
    for p in range(n):
        d = dt[p]
        a = abs(d)
        _switching(w, v, vinv, a, pi)
        for j in range(m):
            acc = 0.0
            for i in range(m):
                acc += mu[p, i] * pi[i, j]
            c[j] = acc
        qh = 0.0
        qv = 0.0
        for k in range(m):
            qh += c[k] * q_h[k]
            qv += c[k] * q_v[k]
        for s in range(3):
            x[p, s] = xc[p, s] + d * xc[p, 3 + s]
            x[p, 3 + s] = xc[p, 3 + s]
        # F P F^T with F = [[I, dI], [0, I]], by blocks
        for i in range(3):
            for j in range(3):
                ppp = Pc[p, i, j]
                ppv = Pc[p, i, 3 + j]
                pvp = Pc[p, 3 + i, j]
                pvv = Pc[p, 3 + i, 3 + j]
                base = (qh if i == j else 0.0) + (qv - qh) * up[p, i] * up[p, j]
                P[p, i, j] = ppp + d * (ppv + pvp) + d * d * pvv + base * a * a * a / 3.0
                P[p, i, 3 + j] = ppv + d * pvv + base * d * a / 2.0
                P[p, 3 + i, j] = pvp + d * pvv + base * d * a / 2.0
                P[p, 3 + i, 3 + j] = pvv + base * a
    return x, P


def warm_up() -> None:
    """Load (or compile, the first time on a machine) the kernels before any timed work."""
    x = np.zeros((1, 3, 6))
    P = np.tile(np.eye(6), (1, 3, 1, 1))
    mu = np.full((1, 3), 1.0 / 3.0)
    dt = np.ones(1)
    up = np.array([[0.0, 0.0, 1.0]])
    q = np.ones(3)
    imm_predict(x, P, mu, dt, up, q, q, np.full(3, np.inf), np.tile(np.eye(3), (1, 1, 1)))
    eye = np.eye(3)
    predict_combined(x[:, 0], P[:, 0], mu, dt, up, q, q, np.zeros(3), eye, eye)
    mahalanobis_logdet(np.zeros((1, 3)), np.tile(np.eye(3), (1, 1, 1)))
    idx = np.zeros(1, np.int64)
    gate_point3(
        x[:, 0], P[:, 0], mu, dt, idx, dt, np.zeros((1, 3)), P[:, 0, :3, :3], up, q, q, np.zeros(3), eye, eye
    )


@njit(cache=True)
def _cholesky_d2(S, nu, L, y):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """(nu^T S^-1 nu, log det S) of one small SPD matrix by Cholesky, using the scratch arrays
    L and y; (inf, inf) when S is not positive definite."""
    m = nu.shape[0]
    ld = 0.0
    for i in range(m):
        for j in range(i + 1):
            acc = S[i, j]
            for k in range(j):
                acc -= L[i, k] * L[j, k]
            if i == j:
                if acc <= 0.0:
                    return np.inf, np.inf
                L[i, i] = np.sqrt(acc)
                ld += 2.0 * np.log(L[i, i])
            else:
                L[i, j] = acc / L[j, j]
    d2 = 0.0
    for i in range(m):
        acc = nu[i]
        for k in range(i):
            acc -= L[i, k] * y[k]
        y[i] = acc / L[i, i]
        d2 += y[i] * y[i]
    return d2, ld


@njit(cache=True)
def mahalanobis_logdet(nu, S):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Squared Mahalanobis distance nu^T S^-1 nu and log det S for stacks of small SPD matrices
    (rows whose S is not positive definite get d2 = inf)."""
    n, m = nu.shape
    d2 = np.empty(n)
    logdet = np.empty(n)
    L = np.empty((m, m))
    y = np.empty(m)
    for p in range(n):
        d2[p], logdet[p] = _cholesky_d2(S[p], nu[p], L, y)
    return d2, logdet


@njit(cache=True)
def gate_point3(xc, Pc, mu, t_trk, trk, det_t, det_z, det_R, up, q_h, q_v, w, v, vinv):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Fused gating for 3-D point measurements (H = [I 0]): for each (track, detection) pair,
    the moment-matched prediction to the detection time, the innovation covariance
    S = P_pos + R and its squared Mahalanobis distance and log-determinant — read straight from
    the track table by index, with no per-pair copies of states or covariances."""
    n = trk.shape[0]
    m = mu.shape[1]
    d2 = np.empty(n)
    logdet = np.empty(n)
    pi = np.empty((m, m))
    S = np.empty((3, 3))
    L = np.empty((3, 3))
    nu = np.empty(3)
    y = np.empty(3)
    for p in range(n):
        i = trk[p]
        d = det_t[p] - t_trk[i]
        a = abs(d)
        _switching(w, v, vinv, a, pi)
        qh = 0.0
        qv = 0.0
        for k in range(m):
            ck = 0.0
            for j in range(m):
                ck += mu[i, j] * pi[j, k]
            qh += ck * q_h[k]
            qv += ck * q_v[k]
        for r in range(3):
            nu[r] = det_z[p, r] - (xc[i, r] + d * xc[i, 3 + r])
            for c in range(3):
                base = (qh if r == c else 0.0) + (qv - qh) * up[p, r] * up[p, c]
                S[r, c] = (
                    Pc[i, r, c]
                    + d * (Pc[i, r, 3 + c] + Pc[i, 3 + r, c])
                    + d * d * Pc[i, 3 + r, 3 + c]
                    + base * a * a * a / 3.0
                    + det_R[p, r, c]
                )
        d2[p], logdet[p] = _cholesky_d2(S, nu, L, y)
    return d2, logdet
