"""Does a track drift with the wind? Evidence for the classifier from a wind field.

A free balloon moves with the air: its horizontal ground velocity equals the wind at its
altitude to within the wind analysis error (a few m/s in the stratosphere). An aircraft flies
through the air at 60-250 m/s and matches the wind only by accident. For each track we take the
wind at its time, position and altitude (:func:`stratowatch.weather.interp.wind_at`, time and
altitude clamped to the field: persistence), the mismatch ``|v - w|`` of the horizontal vectors,
and turn it into a log-likelihood ratio (balloon : aircraft)::

    |v - w| (m/s)   0 .. 3    5      10    >= 20
    LLR             +1.5      +0.75  0     -0.5

The penalty for a mismatch is mild on purpose: forecast winds can be several m/s off, and speed
already says "aircraft" for fast movers. There is no evidence (LLR 0) where the track's
velocity is too uncertain (``max_velocity_sigma_mps``) or the track is outside the field's
horizontal domain. The reason names the pressure level whose height is nearest the track's
altitude: "drifts with the 70 hPa wind within 3 m/s: balloon-like".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.weather.grid import WindGrid
from stratowatch.weather.interp import wind_at

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class WindMatchConfig:
    mismatch_points_mps: tuple[float, ...] = (0.0, 3.0, 5.0, 10.0, 20.0)
    mismatch_llr: tuple[float, ...] = (1.5, 1.5, 0.75, 0.0, -0.5)
    max_velocity_sigma_mps: float = 6.0


@dataclass(frozen=True, slots=True)
class WindMatch:
    """Per track: the wind (east, north; NaN where unknown), the mismatch, the nearest pressure
    level, the evidence, and whether the comparison was made at all."""

    wind_enu_mps: FloatArray  # (n, 2)
    mismatch_mps: FloatArray  # (n,)
    pressure_hpa: FloatArray  # (n,)
    llr: FloatArray  # (n,)
    usable: BoolArray  # (n,)

    def __len__(self) -> int:
        return int(self.llr.shape[0])

    def reason(self, i: int) -> str | None:
        """The human-readable line for track ``i`` (None when no comparison was made)."""
        if not self.usable[i]:
            return None
        d = float(self.mismatch_mps[i])
        p = _level(float(self.pressure_hpa[i]))
        if self.llr[i] >= 1.0:
            return f"drifts with the {p} hPa wind within {max(1, math.ceil(d))} m/s: balloon-like"
        if self.llr[i] > 0.0:
            return f"{d:.0f} m/s off the {p} hPa wind: slightly balloon-like"
        if self.llr[i] > -0.25:
            return f"{d:.0f} m/s off the {p} hPa wind: either"
        return f"moves {d:.0f} m/s across the {p} hPa wind: not drifting"


def _level(p: float) -> str:
    return f"{p:.0f}" if p >= 10 else f"{p:g}"


def _in_domain(grid: WindGrid, lat: FloatArray, lon: FloatArray) -> BoolArray:
    ok = np.isfinite(lat) & np.isfinite(lon) & (lat >= grid.lat_deg[0]) & (lat <= grid.lat_deg[-1])
    if not grid.global_lon:
        x = grid.wrap_lon(np.where(np.isfinite(lon), lon, 0.0))
        ok &= (x >= grid.lon_deg[0]) & (x <= grid.lon_deg[-1])
    return np.asarray(ok)


def wind_match(
    grid: WindGrid,
    time_s: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    alt_m: npt.ArrayLike,
    velocity_en_mps: npt.ArrayLike,
    velocity_sigma_mps: npt.ArrayLike | None = None,
    config: WindMatchConfig | None = None,
) -> WindMatch:
    """Compare each track's horizontal velocity (n, 2: east, north) with the wind at its point.

    ``velocity_sigma_mps`` (n,) is the 1-sigma horizontal velocity uncertainty (e.g. from the
    tracker's covariance); tracks above ``max_velocity_sigma_mps`` give no evidence.
    """
    cfg = config or WindMatchConfig()
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
    n = lat.shape[0]
    lon = np.broadcast_to(np.asarray(lon_deg, dtype=np.float64), (n,))
    alt = np.broadcast_to(np.asarray(alt_m, dtype=np.float64), (n,))
    t = np.broadcast_to(np.asarray(time_s, dtype=np.float64), (n,))
    vel = np.asarray(velocity_en_mps, dtype=np.float64).reshape(n, 2)
    sig = (
        np.zeros(n)
        if velocity_sigma_mps is None
        else np.broadcast_to(np.asarray(velocity_sigma_mps, dtype=np.float64), (n,))
    )
    usable = _in_domain(grid, lat, lon) & np.isfinite(alt) & np.all(np.isfinite(vel), axis=1)
    usable &= sig <= cfg.max_velocity_sigma_mps
    wind = np.full((n, 2), np.nan)
    pressure = np.full(n, np.nan)
    idx = np.flatnonzero(usable)
    if idx.size:
        u, v = wind_at(grid, t[idx], lat[idx], lon[idx], alt[idx], policy="clamp")
        wind[idx, 0], wind[idx, 1] = u, v
        heights = grid.column_heights(t[idx], lat[idx], lon[idx])
        k = np.argmin(np.abs(heights - alt[idx, None]), axis=1)
        pressure[idx] = grid.pressure_hpa[k]
    usable &= np.all(np.isfinite(wind), axis=1)
    mismatch = np.hypot(vel[:, 0] - wind[:, 0], vel[:, 1] - wind[:, 1])
    llr = np.where(
        usable,
        np.interp(np.nan_to_num(mismatch, nan=1e9), cfg.mismatch_points_mps, cfg.mismatch_llr),
        0.0,
    )
    return WindMatch(wind, mismatch, pressure, llr, usable)
