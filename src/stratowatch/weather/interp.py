"""Wind at arbitrary (time, lat, lon, altitude) points of a :class:`WindGrid`, numba-compiled.

Interpolation scheme (one kernel, :func:`sample_wind`, used by the wind_at wrapper and by the
trajectory integrator):

* time: linear between the two bracketing analysis times (a one-time grid is steady);
* latitude/longitude: bilinear in degrees; a query longitude is first brought into the grid's
  convention ``[lon0, lon0 + 360)``, and on a ``global_lon`` grid the cell between the last and
  the first column wraps across the seam;
* altitude: in each of the (up to) 8 surrounding columns the bracketing pair of levels is found
  from that column's own geopotential height (``height_m``), and u, v are interpolated
  **linearly in height** there; the 8 column values are then blended with the time/lat/lon
  weights. Geopotential heights (``WindGrid.heights_geopotential``) are converted to geometric
  metres above mean sea level when the grid is packed, so query altitudes are plain metres (at
  20 km the two differ by about 63 m, at 30 km by 140 m).

Out of the field, every query comes back with a status bit (see ``OUT_*``). Altitude below the
lowest or above the highest level and time before/after the grid use the nearest level/time
(persistence). Latitude or longitude outside a regional grid gives NaN unless the caller asks
to clamp. :func:`wind_at` turns that into a :class:`WindDomainError` (``policy="raise"``, the
default) or clamps everything (``policy="clamp"``).

The grid is packed once per WindGrid into a (nt, ny, nx, nz, 3) array of (height, u, v) so
that a column is contiguous in memory; :func:`pack` caches the packing on the grid object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import numpy.typing as npt

from stratowatch.weather.errors import WindDomainError
from stratowatch.weather.grid import FloatArray, WindGrid
from stratowatch.weather.heights import geopotential_to_geometric_m

OUT_TIME = 1
OUT_LAT = 2
OUT_LON = 4
OUT_BELOW = 8
OUT_ABOVE = 16


@dataclass(frozen=True, slots=True)
class PackedGrid:
    """The arrays the kernels read (see the module docstring)."""

    time_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    log_pressure: FloatArray
    columns: FloatArray
    global_lon: bool
    source: str


_PACK_CACHE: dict[int, tuple[WindGrid, PackedGrid]] = {}


def pack(grid: WindGrid) -> PackedGrid:
    """Pack (and cache by identity) a validated grid for the kernels.

    The packing is kept for the grid object (up to 16 grids): a grid's arrays must not be
    changed in place after its first use (make a new WindGrid instead).
    """
    hit = _PACK_CACHE.get(id(grid))
    if hit is not None and hit[0] is grid:
        return hit[1]
    grid.validate()
    cols = np.empty(grid.u_mps.shape[:1] + grid.u_mps.shape[2:] + grid.u_mps.shape[1:2] + (3,))
    heights = geopotential_to_geometric_m(grid.height_m) if grid.heights_geopotential else grid.height_m
    cols[..., 0] = np.moveaxis(heights, 1, 3)
    cols[..., 1] = np.moveaxis(grid.u_mps, 1, 3)
    cols[..., 2] = np.moveaxis(grid.v_mps, 1, 3)
    if not np.all(np.isfinite(cols)):
        raise ValueError(f"{grid.source}: wind grid holds NaN or infinite values")
    if np.any(np.diff(cols[..., 0], axis=3) <= 0):
        raise ValueError(f"{grid.source}: geopotential heights must ascend with level in every column")
    lon = np.asarray(grid.lon_deg, dtype=np.float64)
    if lon[-1] - lon[0] >= 360.0:
        raise ValueError(f"{grid.source}: longitudes span 360 degrees or more")
    packed = PackedGrid(
        time_s=np.ascontiguousarray(grid.time_s, dtype=np.float64),
        lat_deg=np.ascontiguousarray(grid.lat_deg, dtype=np.float64),
        lon_deg=np.ascontiguousarray(lon),
        log_pressure=np.log(np.asarray(grid.pressure_hpa, dtype=np.float64)),
        columns=np.ascontiguousarray(cols),
        global_lon=bool(grid.global_lon),
        source=grid.source,
    )
    if len(_PACK_CACHE) > 16:
        _PACK_CACHE.clear()
    _PACK_CACHE[id(grid)] = (grid, packed)
    return packed


@numba.njit(cache=True, error_model="numpy", inline="always")
def _bracket(axis: FloatArray, x: float) -> tuple[int, float]:
    """Index i and weight w with axis[i] <= x <= axis[i+1]; x must already be inside.

    The first guess assumes even spacing (exact for regular grids), then walks to the bracket.
    """
    n = axis.shape[0]
    i = int((x - axis[0]) * (n - 1) / (axis[n - 1] - axis[0]))
    if i < 0:
        i = 0
    if i > n - 2:
        i = n - 2
    while i > 0 and axis[i] > x:
        i -= 1
    while i < n - 2 and axis[i + 1] <= x:
        i += 1
    return i, (x - axis[i]) / (axis[i + 1] - axis[i])


@numba.njit(cache=True, error_model="numpy")
def _column(
    columns: FloatArray, it: int, iy: int, ix: int, alt: float, k: int
) -> tuple[float, float, int, int]:
    """u, v at altitude alt in one column; k is a starting guess for the level bracket."""
    nz = columns.shape[3]
    h0 = columns[it, iy, ix, 0, 0]
    htop = columns[it, iy, ix, nz - 1, 0]
    if alt <= h0:
        return columns[it, iy, ix, 0, 1], columns[it, iy, ix, 0, 2], 0, OUT_BELOW if alt < h0 else 0
    if alt >= htop:
        return (
            columns[it, iy, ix, nz - 1, 1],
            columns[it, iy, ix, nz - 1, 2],
            nz - 2,
            OUT_ABOVE if alt > htop else 0,
        )
    if k < 0:
        k = 0
    if k > nz - 2:
        k = nz - 2
    while k > 0 and columns[it, iy, ix, k, 0] > alt:
        k -= 1
    while k < nz - 2 and columns[it, iy, ix, k + 1, 0] <= alt:
        k += 1
    ha = columns[it, iy, ix, k, 0]
    w = (alt - ha) / (columns[it, iy, ix, k + 1, 0] - ha)
    u = columns[it, iy, ix, k, 1] + w * (columns[it, iy, ix, k + 1, 1] - columns[it, iy, ix, k, 1])
    v = columns[it, iy, ix, k, 2] + w * (columns[it, iy, ix, k + 1, 2] - columns[it, iy, ix, k, 2])
    return u, v, k, 0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _horizontal(
    t: float,
    lat: float,
    lon: float,
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    global_lon: bool,
    clamp: bool,
) -> tuple[int, float, int, float, int, int, float, int]:
    """Cell indices and weights: (it, wt, iy, wy, ix0, ix1, wx, status)."""
    status = 0
    nt = times.shape[0]
    if nt == 1:  # a steady field: any time is valid
        it, wt = 0, 0.0
    elif t <= times[0]:
        it, wt = 0, 0.0
        if t < times[0]:
            status |= OUT_TIME
    elif t >= times[nt - 1]:
        it, wt = nt - 2, 1.0
        if t > times[nt - 1]:
            status |= OUT_TIME
    else:
        it, wt = _bracket(times, t)
    ny = lats.shape[0]
    if lat < lats[0] or lat > lats[ny - 1]:
        if not (clamp or global_lon):
            status |= OUT_LAT
        lat = min(max(lat, lats[0]), lats[ny - 1])
    iy, wy = _bracket(lats, lat)
    nx = lons.shape[0]
    x = lon
    if x < lons[0] or x >= lons[0] + 360.0:
        x = x - 360.0 * math.floor((x - lons[0]) / 360.0)
    if x <= lons[nx - 1]:
        ix0, wx = _bracket(lons, x)
        ix1 = ix0 + 1
    elif global_lon:
        ix0, ix1 = nx - 1, 0
        wx = (x - lons[nx - 1]) / (lons[0] + 360.0 - lons[nx - 1])
    else:
        # outside a regional grid: nearest edge (east edge if closer going east)
        if not clamp:
            status |= OUT_LON
        if x - lons[nx - 1] < lons[0] + 360.0 - x:
            ix0, ix1, wx = nx - 2, nx - 1, 1.0
        else:
            ix0, ix1, wx = 0, 1, 0.0
    return it, wt, iy, wy, ix0, ix1, wx, status


@numba.njit(cache=True, error_model="numpy")
def sample_wind(
    t: float,
    lat: float,
    lon: float,
    alt: float,
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    columns: FloatArray,
    global_lon: bool,
    clamp: bool,
    k_guess: int,
) -> tuple[float, float, int, int]:
    """(u, v, status, level index) at one point. NaN winds where status has OUT_LAT/OUT_LON."""
    it, wt, iy, wy, ix0, ix1, wx, status = _horizontal(t, lat, lon, times, lats, lons, global_lon, clamp)
    if status & (OUT_LAT | OUT_LON):
        return np.nan, np.nan, status, k_guess
    u = 0.0
    v = 0.0
    k = k_guess
    vstatus = 0
    for dt_i in range(2):
        w_t = wt if dt_i == 1 else 1.0 - wt
        if w_t == 0.0:
            continue
        for dy in range(2):
            w_ty = w_t * (wy if dy == 1 else 1.0 - wy)
            if w_ty == 0.0:
                continue
            for dx in range(2):
                w = w_ty * (wx if dx == 1 else 1.0 - wx)
                if w == 0.0:
                    continue
                cu, cv, k, s = _column(columns, it + dt_i, iy + dy, ix1 if dx == 1 else ix0, alt, k)
                vstatus |= s
                u += w * cu
                v += w * cv
    return u, v, status | vstatus, k


CACHE_INDEX_SIZE = 6
CACHE_VALUE_SIZE = 28
_FAR = 1e300


@numba.njit(cache=True, error_model="numpy")
def sample_wind_cached(
    t: float,
    lat: float,
    lon: float,
    alt: float,
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    columns: FloatArray,
    global_lon: bool,
    cache_index: npt.NDArray[np.int64],
    cache_value: FloatArray,
    k_guess: int,
) -> tuple[float, float, int, int]:
    """:func:`sample_wind` that keeps the cell it was last called in, for a caller that moves little.

    ``cache_index`` (CACHE_INDEX_SIZE,) holds (valid, it, iy, ix0, ix1, status of the corners)
    and ``cache_value`` (CACHE_VALUE_SIZE,) the 8 corner columns' u (0..7) and v (8..15) at the
    altitude in 16, then the cell's latitude start, 1/height and height (17..19), its longitude
    start, 1/width and width (20..22), the longitude shift into the grid's convention (23), and
    the time interval with its weight (24..27). A call inside the same cell and time interval
    at the same altitude (a float) only computes the weights and blends the cached corners.
    """
    cv = cache_value
    if cache_index[0] == 1 and cv[16] == alt and cv[24] <= t <= cv[26]:
        y = lat - cv[17]
        x = lon + cv[23] - cv[20]
        if 0.0 <= y <= cv[19] and 0.0 <= x <= cv[22]:
            return _blend(cv, y * cv[18], x * cv[21], cv[27] + (t - cv[24]) * cv[25], cache_index[5], k_guess)
    it, wt, iy, wy, ix0, ix1, wx, status = _horizontal(t, lat, lon, times, lats, lons, global_lon, False)
    if status & (OUT_LAT | OUT_LON):
        return np.nan, np.nan, status, k_guess
    k = k_guess
    if not (
        cache_index[0] == 1
        and cache_index[1] == it
        and cache_index[2] == iy
        and cache_index[3] == ix0
        and cache_index[4] == ix1
        and cv[16] == alt
    ):
        vstatus = 0
        nt = times.shape[0]
        for dt_i in range(2):
            if dt_i == 1 and nt == 1:
                break
            for dy in range(2):
                for dx in range(2):
                    c = dt_i * 4 + dy * 2 + dx
                    cu, cvv, k, s = _column(columns, it + dt_i, iy + dy, ix1 if dx == 1 else ix0, alt, k)
                    vstatus |= s
                    cv[c] = cu
                    cv[8 + c] = cvv
        cache_index[0] = 1
        cache_index[1] = it
        cache_index[2] = iy
        cache_index[3] = ix0
        cache_index[4] = ix1
        cache_index[5] = vstatus
        cv[16] = alt
    cache_index[5] = (cache_index[5] & ~OUT_TIME) | (status & OUT_TIME)
    # the cell's geometry, for the fast path of the next calls
    cv[17] = lats[iy]
    cv[19] = lats[iy + 1] - lats[iy]
    cv[18] = 1.0 / cv[19]
    if lat < lats[0] or lat > lats[lats.shape[0] - 1]:
        cv[19] = -1.0  # clamped latitude: no fast path
    x = lon
    if x < lons[0] or x >= lons[0] + 360.0:
        x = x - 360.0 * math.floor((x - lons[0]) / 360.0)
    cv[23] = x - lon
    cv[20] = lons[ix0]
    cv[22] = (lons[ix1] if ix1 > ix0 else lons[0] + 360.0) - lons[ix0]
    cv[21] = 1.0 / cv[22]
    nt = times.shape[0]
    if nt == 1:
        cv[24], cv[25], cv[26], cv[27] = -_FAR, 0.0, _FAR, 0.0
    elif t < times[0]:
        cv[24], cv[25], cv[26], cv[27] = -_FAR, 0.0, times[0], 0.0
    elif t > times[nt - 1]:
        cv[24], cv[25], cv[26], cv[27] = times[nt - 1], 0.0, _FAR, 1.0
    else:
        cv[24], cv[26], cv[27] = times[it], times[it + 1], 0.0
        cv[25] = 1.0 / (times[it + 1] - times[it])
    return _blend(cv, wy, wx, wt, status | cache_index[5], k)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _blend(
    cv: FloatArray, wy: float, wx: float, wt: float, status: int, k: int
) -> tuple[float, float, int, int]:
    w00 = (1.0 - wy) * (1.0 - wx)
    w01 = (1.0 - wy) * wx
    w10 = wy * (1.0 - wx)
    w11 = wy * wx
    u = w00 * cv[0] + w01 * cv[1] + w10 * cv[2] + w11 * cv[3]
    v = w00 * cv[8] + w01 * cv[9] + w10 * cv[10] + w11 * cv[11]
    if wt != 0.0:
        u1 = w00 * cv[4] + w01 * cv[5] + w10 * cv[6] + w11 * cv[7]
        v1 = w00 * cv[12] + w01 * cv[13] + w10 * cv[14] + w11 * cv[15]
        u += wt * (u1 - u)
        v += wt * (v1 - v)
    return u, v, status, k


@numba.njit(cache=True, error_model="numpy")
def height_at_pressure(
    t: float,
    lat: float,
    lon: float,
    log_p: float,
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    log_pressure: FloatArray,
    columns: FloatArray,
    global_lon: bool,
) -> float:
    """Geopotential height (m) of pressure exp(log_p) hPa, linear in log-pressure, clamped."""
    it, wt, iy, wy, ix0, ix1, wx, _status = _horizontal(t, lat, lon, times, lats, lons, global_lon, True)
    nz = log_pressure.shape[0]
    # log_pressure descends with level index
    if log_p >= log_pressure[0]:
        k, wz = 0, 0.0
    elif log_p <= log_pressure[nz - 1]:
        k, wz = nz - 2, 1.0
    else:
        k = 0
        while log_pressure[k + 1] > log_p:
            k += 1
        wz = (log_p - log_pressure[k]) / (log_pressure[k + 1] - log_pressure[k])
    h = 0.0
    for dt_i in range(2):
        w_t = wt if dt_i == 1 else 1.0 - wt
        if w_t == 0.0:
            continue
        for dy in range(2):
            w_ty = w_t * (wy if dy == 1 else 1.0 - wy)
            for dx in range(2):
                w = w_ty * (wx if dx == 1 else 1.0 - wx)
                if w == 0.0:
                    continue
                ix = ix1 if dx == 1 else ix0
                ha = columns[it + dt_i, iy + dy, ix, k, 0]
                hb = columns[it + dt_i, iy + dy, ix, k + 1, 0]
                h += w * (ha + wz * (hb - ha))
    return h


@numba.njit(cache=True, error_model="numpy")
def _sample_many(
    t: FloatArray,
    lat: FloatArray,
    lon: FloatArray,
    alt: FloatArray,
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    columns: FloatArray,
    global_lon: bool,
    clamp: bool,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    n = t.shape[0]
    u = np.empty(n)
    v = np.empty(n)
    status = np.empty(n, dtype=np.int64)
    k = columns.shape[3] // 2
    for i in range(n):
        u[i], v[i], status[i], k = sample_wind(
            t[i], lat[i], lon[i], alt[i], times, lats, lons, columns, global_lon, clamp, k
        )
    return u, v, status


def wind_at(
    grid: WindGrid,
    time_s: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    alt_m: npt.ArrayLike,
    policy: Literal["raise", "clamp"] = "raise",
) -> tuple[FloatArray, FloatArray]:
    """Eastward and northward wind (m/s) at broadcast arrays of points.

    ``policy="raise"`` raises :class:`WindDomainError` naming the first axis (time, latitude,
    longitude or altitude) on which any point is outside the field; a one-time grid accepts any
    time (it is steady). ``policy="clamp"`` uses the nearest time, edge and level instead.
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (time_s, lat_deg, lon_deg, alt_m))
    )
    shape = arrays[0].shape
    t, lat, lon, alt = (np.ascontiguousarray(a.ravel()) for a in arrays)
    g = pack(grid)
    u, v, status = _sample_many(
        t, lat, lon, alt, g.time_s, g.lat_deg, g.lon_deg, g.columns, g.global_lon, policy == "clamp"
    )
    if policy == "raise":
        steady = len(g.time_s) == 1
        _raise_for_status(g, status, t, lat, lon, alt, steady)
    return u.reshape(shape), v.reshape(shape)


def _raise_for_status(
    g: PackedGrid,
    status: npt.NDArray[np.int64],
    t: FloatArray,
    lat: FloatArray,
    lon: FloatArray,
    alt: FloatArray,
    steady: bool,
) -> None:
    checks: list[tuple[int, str, FloatArray, float, float]] = []
    if not steady:
        checks.append((OUT_TIME, "time_s", t, float(g.time_s[0]), float(g.time_s[-1])))
    checks += [
        (OUT_LAT, "latitude", lat, float(g.lat_deg[0]), float(g.lat_deg[-1])),
        (OUT_LON, "longitude", lon, float(g.lon_deg[0]), float(g.lon_deg[-1])),
    ]
    for bit, axis, values, low, high in checks:
        bad = np.flatnonzero(status & bit)
        if bad.size:
            raise WindDomainError(axis, float(values[bad[0]]), low, high, g.source)
    bad = np.flatnonzero(status & (OUT_BELOW | OUT_ABOVE))
    if bad.size:
        heights = g.columns[..., 0]
        raise WindDomainError(
            "altitude_m",
            float(alt[bad[0]]),
            float(heights[..., 0].min()),
            float(heights[..., -1].max()),
            g.source,
        )
