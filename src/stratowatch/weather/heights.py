"""Pressure <-> height, from the field's own geopotential heights or the standard atmosphere.

Heights in a :class:`~stratowatch.weather.grid.WindGrid` (``height_m``) are *geopotential*
heights (gpm), as analyses and soundings give them. Positions (GPS, ADS-B geometric altitude)
are *geometric* heights above mean sea level. The two differ by ``z**2 / R`` (about 60 m at
20 km, 140 m at 30 km); the conversion used throughout is the US Standard Atmosphere 1976 one::

    h = R * z / (R - z)        z = R * h / (R + h)        R = 6 356 766 m

Per-column conversion interpolates linearly in ``ln p`` between the column's levels, which is
exact for an isothermal layer and within a few metres for real layers 25-50 hPa thick. Outside
the column's levels the standard-atmosphere shape is used, anchored at the nearest level
(stated fallback, never silent NaN).

The standard atmosphere (ICAO/ISA = US 1976 up to 86 km) is used only where a field has no heights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from stratowatch.weather.grid import WindGrid

FloatArray = npt.NDArray[np.float64]

#: Effective Earth radius of the US Standard Atmosphere 1976 for geopotential <-> geometric, m.
GEOPOTENTIAL_EARTH_RADIUS_M = 6356766.0
#: Standard gravity, m/s^2.
G0_MPS2 = 9.80665
#: Specific gas constant of dry air, J/(kg K).
R_DRY_J_PER_KG_K = 287.05287

# ISA layers: base geopotential height (m) and lapse rate (K/m).
_ISA_BASE_Z_M = np.array([0.0, 11000.0, 20000.0, 32000.0, 47000.0, 51000.0, 71000.0, 84852.0])
_ISA_LAPSE_K_PER_M = np.array([-0.0065, 0.0, 0.001, 0.0028, 0.0, -0.0028, -0.002, 0.0])


def _isa_bases() -> tuple[FloatArray, FloatArray]:
    temps = [288.15]
    press = [1013.25]
    for i in range(len(_ISA_BASE_Z_M) - 1):
        dz = _ISA_BASE_Z_M[i + 1] - _ISA_BASE_Z_M[i]
        t0, p0, lapse = temps[-1], press[-1], _ISA_LAPSE_K_PER_M[i]
        t1 = t0 + lapse * dz
        if lapse == 0.0:
            p1 = p0 * np.exp(-G0_MPS2 * dz / (R_DRY_J_PER_KG_K * t0))
        else:
            p1 = p0 * (t1 / t0) ** (-G0_MPS2 / (R_DRY_J_PER_KG_K * lapse))
        temps.append(t1)
        press.append(p1)
    return np.array(temps), np.array(press)


_ISA_BASE_T_K, _ISA_BASE_P_HPA = _isa_bases()


def isa_pressure_hpa(height_m: npt.ArrayLike) -> FloatArray:
    """Standard-atmosphere pressure (hPa) at a geopotential height (m); valid -500 m..86 km."""
    z = np.asarray(height_m, dtype=np.float64)
    i = np.clip(np.searchsorted(_ISA_BASE_Z_M, z, side="right") - 1, 0, len(_ISA_BASE_Z_M) - 1)
    t0, p0, lapse, z0 = (
        _ISA_BASE_T_K[i],
        _ISA_BASE_P_HPA[i],
        _ISA_LAPSE_K_PER_M[i],
        _ISA_BASE_Z_M[i],
    )
    dz = z - z0
    iso = lapse == 0.0
    safe_lapse = np.where(iso, 1.0, lapse)
    grad = p0 * ((t0 + safe_lapse * dz) / t0) ** (-G0_MPS2 / (R_DRY_J_PER_KG_K * safe_lapse))
    isothermal = p0 * np.exp(-G0_MPS2 * dz / (R_DRY_J_PER_KG_K * t0))
    return np.asarray(np.where(iso, isothermal, grad), dtype=np.float64)


def isa_height_m(pressure_hpa: npt.ArrayLike) -> FloatArray:
    """Standard-atmosphere geopotential height (m) of a pressure (hPa); valid 1050..0.004 hPa."""
    p = np.asarray(pressure_hpa, dtype=np.float64)
    # layer index: base pressures descend, so count bases with pressure >= p
    i = np.clip(np.sum(p[..., None] <= _ISA_BASE_P_HPA, axis=-1) - 1, 0, len(_ISA_BASE_Z_M) - 1)
    t0, p0, lapse, z0 = (
        _ISA_BASE_T_K[i],
        _ISA_BASE_P_HPA[i],
        _ISA_LAPSE_K_PER_M[i],
        _ISA_BASE_Z_M[i],
    )
    iso = lapse == 0.0
    safe_lapse = np.where(iso, 1.0, lapse)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = z0 + t0 / safe_lapse * ((p / p0) ** (-R_DRY_J_PER_KG_K * safe_lapse / G0_MPS2) - 1.0)
        isothermal = z0 - R_DRY_J_PER_KG_K * t0 / G0_MPS2 * np.log(p / p0)
    return np.asarray(np.where(iso, isothermal, grad), dtype=np.float64)


def isa_temperature_k(height_m: npt.ArrayLike) -> FloatArray:
    """Standard-atmosphere temperature (K) at a geopotential height (m)."""
    z = np.asarray(height_m, dtype=np.float64)
    i = np.clip(np.searchsorted(_ISA_BASE_Z_M, z, side="right") - 1, 0, len(_ISA_BASE_Z_M) - 1)
    return np.asarray(_ISA_BASE_T_K[i] + _ISA_LAPSE_K_PER_M[i] * (z - _ISA_BASE_Z_M[i]), dtype=np.float64)


def geopotential_to_geometric_m(geopotential_height_m: npt.ArrayLike) -> FloatArray:
    """Geometric height above mean sea level (m) of a geopotential height (gpm)."""
    z = np.asarray(geopotential_height_m, dtype=np.float64)
    r = GEOPOTENTIAL_EARTH_RADIUS_M
    return np.asarray(r * z / (r - z), dtype=np.float64)


def geometric_to_geopotential_m(geometric_height_m: npt.ArrayLike) -> FloatArray:
    """Geopotential height (gpm) of a geometric height above mean sea level (m)."""
    h = np.asarray(geometric_height_m, dtype=np.float64)
    r = GEOPOTENTIAL_EARTH_RADIUS_M
    return np.asarray(r * h / (r + h), dtype=np.float64)


def pressure_to_height(
    pressure_hpa: npt.ArrayLike, levels_hpa: npt.ArrayLike, column_heights_m: npt.ArrayLike
) -> FloatArray:
    """Geometric height (m) of pressures in columns of geopotential heights.

    ``levels_hpa`` (nz,) strictly descending; ``column_heights_m`` (..., nz) geopotential
    heights of those levels for each query (broadcast against ``pressure_hpa`` (...)).
    Linear in ln p inside the column; the standard-atmosphere shape anchored at the nearest
    level outside it. NaN heights in a column make the result NaN for that column.
    """
    p = np.asarray(pressure_hpa, dtype=np.float64)
    lv = np.asarray(levels_hpa, dtype=np.float64)
    zc = np.asarray(column_heights_m, dtype=np.float64)
    zc, p = np.broadcast_arrays(zc, p[..., None])
    p = p[..., 0]
    x = -np.log(lv)  # ascending
    xq = -np.log(p)
    k = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, len(lv) - 2)
    frac = (xq - x[k]) / (x[k + 1] - x[k])
    z0 = np.take_along_axis(zc, k[..., None], axis=-1)[..., 0]
    z1 = np.take_along_axis(zc, (k + 1)[..., None], axis=-1)[..., 0]
    z = z0 + frac * (z1 - z0)
    below = p > lv[0]
    above = p < lv[-1]
    isa_q = isa_height_m(p)
    z = np.where(below, zc[..., 0] + isa_q - isa_height_m(lv[0]), z)
    z = np.where(above, zc[..., -1] + isa_q - isa_height_m(lv[-1]), z)
    return geopotential_to_geometric_m(z)


def height_to_pressure(
    alt_m: npt.ArrayLike, levels_hpa: npt.ArrayLike, column_heights_m: npt.ArrayLike
) -> FloatArray:
    """Pressure (hPa) at geometric heights (m) in columns of geopotential heights.

    The inverse of :func:`pressure_to_height` (same interpolation and the same fallback).
    Column heights must ascend with the descending levels (they always do in real data).
    """
    z = geometric_to_geopotential_m(alt_m)
    lv = np.asarray(levels_hpa, dtype=np.float64)
    zc = np.asarray(column_heights_m, dtype=np.float64)
    zc, z = np.broadcast_arrays(zc, z[..., None])
    z = z[..., 0]
    nz = lv.shape[0]
    k = np.clip(np.sum(zc <= z[..., None], axis=-1) - 1, 0, nz - 2)
    z0 = np.take_along_axis(zc, k[..., None], axis=-1)[..., 0]
    z1 = np.take_along_axis(zc, (k + 1)[..., None], axis=-1)[..., 0]
    lnp = np.log(lv)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (z - z0) / (z1 - z0)
    p = np.exp(lnp[k] + frac * (lnp[k + 1] - lnp[k]))
    below = z < zc[..., 0]
    above = z > zc[..., -1]
    p = np.where(below, isa_pressure_hpa(isa_height_m(lv[0]) + z - zc[..., 0]), p)
    p = np.where(above, isa_pressure_hpa(isa_height_m(lv[-1]) + z - zc[..., -1]), p)
    return np.asarray(p, dtype=np.float64)


def grid_pressure_to_height(
    grid: WindGrid,
    time_s: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    pressure_hpa: npt.ArrayLike,
) -> FloatArray:
    """Geometric height (m) of pressures at points, from the field's own columns of
    geopotential height (bilinear in lat/lon, linear in time; NaN outside its area)."""
    cols = grid.column_heights(time_s, lat_deg, lon_deg)
    p = np.broadcast_to(np.asarray(pressure_hpa, dtype=np.float64), (cols.shape[0],))
    return pressure_to_height(p, grid.pressure_hpa, cols)


def grid_height_to_pressure(
    grid: WindGrid,
    time_s: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    alt_m: npt.ArrayLike,
) -> FloatArray:
    """Pressure (hPa) at geometric altitudes at points, from the field's own heights."""
    cols = grid.column_heights(time_s, lat_deg, lon_deg)
    z = np.broadcast_to(np.asarray(alt_m, dtype=np.float64), (cols.shape[0],))
    return height_to_pressure(z, grid.pressure_hpa, cols)
