"""Motion models for 6-D states [position, velocity] in a Cartesian frame.

Each model is defined in the local east/north/up axes at the target (so "altitude nearly constant"
means what it says anywhere on Earth) and rotated into the tracker's frame (ECEF or a local flat
frame) with the per-target ENU basis. Everything is vectorised over a leading axis: one transition
matrix and one process-noise matrix per (track, detection) pair, each with its own time step.

Continuous white-noise acceleration with spectral density ``q`` (m^2/s^3) per axis gives, for a
step ``dt`` (Bar-Shalom, Li & Kirubarajan 2001, sec. 6.2.2):

    F = [[I, dt I], [0, I]]          Q = q * [[dt^3/3, dt^2/2], [dt^2/2, dt]]

The balloon model adds a mean-reverting (Ornstein-Uhlenbeck) vertical velocity with time constant
``tau_z_s``: a balloon at float bobs around its equilibrium altitude rather than climbing away.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class MotionModel:
    """A nearly-constant-velocity model with per-axis acceleration noise in ENU.

    ``q_h``/``q_v``: horizontal/vertical acceleration spectral densities (m^2/s^3).
    ``tau_z_s``: time constant of vertical-velocity decay (inf = plain constant velocity).
    """

    name: str
    q_h: float
    q_v: float
    tau_z_s: float = float("inf")

    def matrices(self, dt: FloatArray, up: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Transition F and process noise Q, each (k, 6, 6), for steps ``dt`` (k,) at targets
        whose local vertical is ``up`` (k, 3) in frame coordinates.

        A diagonal ENU matrix diag(h, h, v) is, in the frame, h I + (v - h) u u^T: no rotation
        matrices are needed, only the up vector.
        """
        dt = np.asarray(dt, dtype=np.float64)
        k = dt.shape[0]
        adt = np.abs(dt)
        uu = up[:, :, None] * up[:, None, :]
        eye = np.eye(3)
        if np.isfinite(self.tau_z_s):
            a_z = np.exp(-dt / self.tau_z_s)
            b_z = self.tau_z_s * (1.0 - a_z)
        else:
            a_z = np.ones(k)
            b_z = dt
        f = np.zeros((k, 6, 6))
        f[:, 0:3, 0:3] = eye
        f[:, 0:3, 3:6] = dt[:, None, None] * eye + (b_z - dt)[:, None, None] * uu
        f[:, 3:6, 3:6] = eye + (a_z - 1.0)[:, None, None] * uu
        base = self.q_h * eye + (self.q_v - self.q_h) * uu
        q = np.empty((k, 6, 6))
        q[:, 0:3, 0:3] = (adt**3 / 3.0)[:, None, None] * base
        q[:, 0:3, 3:6] = (dt * adt / 2.0)[:, None, None] * base
        q[:, 3:6, 0:3] = q[:, 0:3, 3:6]
        q[:, 3:6, 3:6] = adt[:, None, None] * base
        return f, q


#: Straight, level flight (airliner cruise).
AIRCRAFT_CRUISE = MotionModel("aircraft_cruise", q_h=0.5, q_v=0.1)
#: Turning / climbing aircraft: accelerations of about 1 g over a scan.
AIRCRAFT_MANOEUVRE = MotionModel("aircraft_manoeuvre", q_h=8000.0, q_v=10.0)
#: Balloon drifting with the wind: slowly varying horizontal velocity, altitude nearly constant.
BALLOON_DRIFT = MotionModel("balloon_drift", q_h=0.05, q_v=0.02, tau_z_s=300.0)

DEFAULT_MODELS: tuple[MotionModel, ...] = (AIRCRAFT_CRUISE, AIRCRAFT_MANOEUVRE, BALLOON_DRIFT)


@lru_cache(maxsize=16)
def _eigen(rates: bytes, m: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    lam = np.frombuffer(rates, dtype=np.float64).reshape(m, m)
    w, v = np.linalg.eig(lam)
    return w.real.copy(), v.real.copy(), np.linalg.inv(v).real.copy()


def switching_eigen(rates_per_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Real eigen-decomposition (w, V, V^-1) of a reversible switching generator, cached."""
    return _eigen(np.asarray(rates_per_s, dtype=np.float64).tobytes(), len(rates_per_s))


def transition_probabilities(rates_per_s: FloatArray, dt: FloatArray) -> FloatArray:
    """Markov model-switching matrices Pi(dt) = expm(Lambda |dt|), (k, M, M), rows sum to 1.

    ``rates_per_s`` is the generator Lambda (M, M): off-diagonal switching rates, rows summing
    to zero. Computed for all steps at once from one eigen-decomposition.
    """
    w, v, vinv = _eigen(np.asarray(rates_per_s, dtype=np.float64).tobytes(), len(rates_per_s))
    e = np.exp(np.outer(np.abs(dt), w))  # (k, M)
    pi = (v[None, :, :] * e[:, None, :]) @ vinv
    pi = np.clip(pi, 0.0, None)
    return np.asarray(pi / pi.sum(axis=2, keepdims=True))
