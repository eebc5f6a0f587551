"""Vertical flight profiles: float at constant altitude or pressure, or ascent-burst-descent.

The vertical motion is part of the integrated state (see :mod:`stratowatch.prediction.integrate`):

* ``float``: constant altitude ``alt_m`` (the start altitude of each member);
* ``float-pressure``: stays on the isobaric surface ``float_pressure_hpa``; its altitude is the
  wind field's geopotential height of that pressure where the balloon is (log-pressure interpolation);
* ``ascent-burst-descent``: rises at ``ascent_rate_mps`` to ``burst_alt_m``, then falls under its
  parachute at a terminal speed that scales with air density as ``v(h) = v0 * sqrt(rho0 / rho(h))``
  (drag = weight, so v² ∝ 1/rho), ``v0`` being ``descent_rate_mps`` at sea level, until it reaches
  ``ground_alt_m``; density is the 1976 US Standard Atmosphere's.
* ``descent``: a flight that has already burst (or a cut-down payload) falling from its start altitude.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np

ProfileKind = Literal["float", "float-pressure", "ascent-burst-descent", "descent"]

# vertical modes inside the kernel
MODE_FLOAT = 0
MODE_FLOAT_PRESSURE = 1
MODE_ASCENT = 2
MODE_DESCENT = 3

_KIND_MODE = {
    "float": MODE_FLOAT,
    "float-pressure": MODE_FLOAT_PRESSURE,
    "ascent-burst-descent": MODE_ASCENT,
    "descent": MODE_DESCENT,
}


@dataclass(frozen=True, slots=True)
class FlightProfile:
    """How a balloon moves vertically; the ``*_sigma`` fields spread ensemble members."""

    kind: ProfileKind = "float"
    ascent_rate_mps: float = 5.0
    burst_alt_m: float = 30000.0
    descent_rate_mps: float = 5.0
    ground_alt_m: float = 0.0
    float_pressure_hpa: float = float("nan")
    ascent_rate_sigma_mps: float = 0.0
    burst_alt_sigma_m: float = 0.0
    descent_rate_sigma_mps: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KIND_MODE:
            raise ValueError(f"unknown flight profile {self.kind!r}; one of {', '.join(_KIND_MODE)}")
        if self.kind == "ascent-burst-descent" and not self.ascent_rate_mps > 0:
            raise ValueError(f"ascent rate must be positive, got {self.ascent_rate_mps}")
        if self.kind in ("ascent-burst-descent", "descent") and not self.descent_rate_mps > 0:
            raise ValueError(f"descent rate must be positive, got {self.descent_rate_mps}")
        if self.kind == "float-pressure" and not self.float_pressure_hpa > 0:
            raise ValueError("float-pressure profile needs float_pressure_hpa > 0")

    @property
    def mode(self) -> int:
        return _KIND_MODE[self.kind]


# 1976 US Standard Atmosphere layers: base height (m), base temperature (K), lapse rate (K/m)
_LAYERS = np.array(
    [
        [0.0, 288.15, -0.0065],
        [11000.0, 216.65, 0.0],
        [20000.0, 216.65, 0.001],
        [32000.0, 228.65, 0.0028],
        [47000.0, 270.65, 0.0],
        [51000.0, 270.65, -0.0028],
        [71000.0, 214.65, -0.002],
    ]
)
_G0 = 9.80665
_R_AIR = 287.053


def _layer_base_pressures() -> np.ndarray:
    p = np.empty(len(_LAYERS))
    p[0] = 101325.0
    for i in range(1, len(_LAYERS)):
        h0, t0, lapse = _LAYERS[i - 1]
        dh = _LAYERS[i, 0] - h0
        if lapse == 0.0:
            p[i] = p[i - 1] * np.exp(-_G0 * dh / (_R_AIR * t0))
        else:
            p[i] = p[i - 1] * ((t0 + lapse * dh) / t0) ** (-_G0 / (_R_AIR * lapse))
    return p


_BASE_P = _layer_base_pressures()
_RHO0 = 101325.0 / (_R_AIR * 288.15)


@numba.njit(cache=True, error_model="numpy")
def density_ratio(h: float) -> float:
    """rho(h) / rho(0) in the US Standard Atmosphere (h in metres, clamped to 0..84 km)."""
    h = min(max(h, 0.0), 84000.0)
    i = _LAYERS.shape[0] - 1
    while _LAYERS[i, 0] > h:
        i -= 1
    h0 = _LAYERS[i, 0]
    t0 = _LAYERS[i, 1]
    lapse = _LAYERS[i, 2]
    t = t0 + lapse * (h - h0)
    if lapse == 0.0:
        p = _BASE_P[i] * np.exp(-_G0 * (h - h0) / (_R_AIR * t0))
    else:
        p = _BASE_P[i] * (t / t0) ** (-_G0 / (_R_AIR * lapse))
    return p / (_R_AIR * t) / _RHO0


def pressure_hpa(alt_m: float) -> float:
    """Standard-atmosphere pressure (hPa) at an altitude; for defaults and notes only."""
    h = min(max(alt_m, 0.0), 84000.0)
    i = int(np.searchsorted(_LAYERS[:, 0], h, side="right") - 1)
    h0, t0, lapse = _LAYERS[i]
    if lapse == 0.0:
        return float(_BASE_P[i] * np.exp(-_G0 * (h - h0) / (_R_AIR * t0)) / 100.0)
    return float(_BASE_P[i] * ((t0 + lapse * (h - h0)) / t0) ** (-_G0 / (_R_AIR * lapse)) / 100.0)
