"""Trajectory integration of many members at once on the sphere, forward or backward in time.

Equations. On a sphere of radius R = 6 371 008.8 m the wind (u east, v north) at altitude h
moves a point as

    dφ/dt = v / (R + h),    dλ/dt = u / ((R + h) cos φ)

and classical RK4 advances (φ, λ, h) with these away from the poles (|φ| < 80°); longitudes
run on unwrapped (the wind lookup brings them into the grid's convention), so the
antimeridian needs no special case. Near the poles the same RK4 step is taken on the unit
vector p = (cos φ cos λ, cos φ sin λ, sin φ) instead, with

    dp/dt = (u ê + v n̂) / (R + h),    ê = (-sin λ, cos λ, 0),  n̂ = (-sin φ cos λ, -sin φ sin λ, cos φ)

(p renormalised at every stage), where nothing divides by cos φ: members cross the poles.
h follows the flight profile (see :mod:`stratowatch.prediction.profiles`). Backward runs use
a negative step.

Speed. The 4 RK4 stages are one loop over the same code, and the wind lookup keeps the cell
it last used (its 4 or 8 corner columns already interpolated to the member's altitude): a
float at constant altitude only recomputes bilinear weights until it changes cell. The fast
path is written in the kernel itself, because calling a function with the grid arrays costs
their reference counting on every call.

Wind error. Each member adds to the interpolated wind its own offset (du, dv), an
Ornstein-Uhlenbeck process with decorrelation time τ and a standard deviation that grows with
lead time, σ(t) = σ0 + g·|t - t0| (see :class:`WindErrorModel`); it is updated once per step
with the exact OU transition, du ← φ du + sqrt(1-φ²) σ ξ, φ = exp(-|Δt|/τ), ξ ~ N(0, 1) from
numba's generator, seeded afresh for every member from its own seed (:func:`member_seeds`, drawn
from ``seed`` by member index), so a member's path does not depend on which other members run
with it: an ensemble split across workers by member index gives the same paths. The offsets
start at the given initial values (e.g. the observed drift minus the model wind).

The kernel loops over members inside numba (one core) and records every ``output_every_s``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numba
import numpy as np
import numpy.typing as npt

from stratowatch.prediction.profiles import (
    MODE_ASCENT,
    MODE_DESCENT,
    MODE_FLOAT,
    MODE_FLOAT_PRESSURE,
    FlightProfile,
    density_ratio,
)
from stratowatch.weather.grid import FloatArray, WindGrid
from stratowatch.weather.interp import (
    CACHE_INDEX_SIZE,
    CACHE_VALUE_SIZE,
    OUT_ABOVE,
    OUT_BELOW,
    OUT_LAT,
    OUT_LON,
    OUT_TIME,
    height_at_pressure,
    pack,
    sample_wind_cached,
)

log = logging.getLogger(__name__)

RADIUS_M = 6371008.8
STATUS_ALOFT = 0
STATUS_LANDED = 1
STATUS_LEFT_FIELD = 2


@dataclass(frozen=True, slots=True)
class WindErrorModel:
    """Per-member wind error: an OU process, σ(t) = sigma_mps + growth_mps_per_day · lead days.

    Each ensemble member's σ is further multiplied by its own log-normal factor
    exp(s·ξ - s²) with s = ``scale_spread`` (unit mean square), which gives the ensemble the
    heavier tails real forecast errors have. The defaults (σ0 = 2.4 m/s, no growth, τ = 12 h,
    s = 0.3) are what ``bench/cone_calibration.py`` found to put the truth inside the 90% cone
    89-93% of the time (four seeds of 80 simulated 72 h flights) and inside the 50% cone 46-50%,
    in random error fields whose RMS grows from 2 m/s by 1.5 m/s a day (see
    :mod:`stratowatch.prediction.calibration`).
    """

    sigma_mps: float = 2.4
    growth_mps_per_day: float = 0.0
    decorrelation_s: float = 12.0 * 3600.0
    scale_spread: float = 0.3

    def __post_init__(self) -> None:
        if self.sigma_mps < 0 or self.growth_mps_per_day < 0 or not self.decorrelation_s > 0:
            raise ValueError("wind error sigma and growth must be >= 0 and decorrelation > 0")
        if self.scale_spread < 0:
            raise ValueError("scale_spread must be >= 0")


@dataclass(frozen=True, slots=True)
class Prediction:
    """Member paths sampled every ``output_every_s``; member 0 is the deterministic run.

    ``status`` per member: 0 still aloft at the end, 1 landed, 2 left the wind field (its later
    positions are NaN). ``end_time_s`` is the landing or exit time (NaN if aloft);
    ``burst_time_s`` the burst time of ascent-burst-descent members (NaN otherwise).
    """

    time_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    status: npt.NDArray[np.int8]
    end_time_s: FloatArray
    burst_time_s: FloatArray
    backward: bool = False
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: per member, the wind-lookup flags its run raised (outside the field's times or levels)
    member_flags: npt.NDArray[np.int64] | None = None

    @property
    def members(self) -> int:
        return int(self.lat_deg.shape[0])

    @property
    def lead_s(self) -> FloatArray:
        return np.abs(self.time_s - self.time_s[0])

    def end_points(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Each member's last known position (landing point, exit point or final position)."""
        finite = np.isfinite(self.lat_deg)
        last = np.where(finite.any(axis=1), finite.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1), 0)
        rows = np.arange(self.members)
        return self.lat_deg[rows, last], self.lon_deg[rows, last], self.alt_m[rows, last]

    def held(self) -> Prediction:
        """A copy where members that left the wind field stay at their exit point (not NaN)."""
        finite = np.isfinite(self.lat_deg)
        if finite.all():
            return self
        idx = np.where(finite, np.arange(finite.shape[1])[None, :], 0)
        idx = np.maximum.accumulate(idx, axis=1)
        rows = np.arange(self.members)[:, None]
        return replace(
            self,
            lat_deg=self.lat_deg[rows, idx],
            lon_deg=self.lon_deg[rows, idx],
            alt_m=self.alt_m[rows, idx],
        )

    def median_path(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per-time median of the members' latitude, longitude (unwrapped about member 0) and altitude."""
        ref = self.lon_deg[:1]
        lon = ref + ((self.lon_deg - ref + 180.0) % 360.0 - 180.0)
        with np.errstate(invalid="ignore"):
            med_lon = np.nanmedian(np.where(np.isfinite(lon), lon, np.nan), axis=0)
        return (
            np.nanmedian(self.lat_deg, axis=0),
            (med_lon + 180.0) % 360.0 - 180.0,
            np.nanmedian(self.alt_m, axis=0),
        )


_DEG = 180.0 / math.pi
_POLAR_LAT_DEG = 80.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def _rates(
    lat: float,
    lon: float,
    h: float,
    t: float,
    mode: int,
    du: float,
    dv: float,
    ascent: float,
    descent: float,
    log_p: float,
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    log_pressure: FloatArray,
    columns: FloatArray,
    global_lon: bool,
    cache_index: npt.NDArray[np.int64],
    cache_value: FloatArray,
    k: int,
) -> tuple[float, float, float, float, int, int]:
    """(u, v, dh/dt, altitude used, status, level guess) at one stage point."""
    if mode == MODE_FLOAT_PRESSURE:
        h = height_at_pressure(t, lat, lon, log_p, times, lats, lons, log_pressure, columns, global_lon)
    u, v, status, k = sample_wind_cached(
        t, lat, lon, h, times, lats, lons, columns, global_lon, cache_index, cache_value, k
    )
    if mode == MODE_ASCENT:
        dh = ascent
    elif mode == MODE_DESCENT:
        dh = -descent / math.sqrt(density_ratio(h))
    else:
        dh = 0.0
    return u + du, v + dv, dh, h, status, k


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tangent(x: float, y: float, z: float, u: float, v: float, h: float) -> tuple[float, float, float]:
    """dp/dt = (u ê + v n̂)/(R+h) at the unit vector p = (x, y, z)."""
    r = math.sqrt(x * x + y * y)
    scale = 1.0 / (RADIUS_M + h)
    if r > 1e-12:
        return (-u * y / r - v * z * x / r) * scale, (u * x / r - v * z * y / r) * scale, v * r * scale
    return -v * z * scale, u * scale, 0.0  # exactly at a pole: any orthonormal pair


@numba.njit(cache=True, error_model="numpy", inline="always")
def _unit_to_latlon(x: float, y: float, z: float) -> tuple[float, float]:
    return _DEG * math.atan2(z, math.sqrt(x * x + y * y)), _DEG * math.atan2(y, x)


@numba.njit(cache=True, error_model="numpy")
def _step_vector(
    lat: float,
    lon: float,
    h: float,
    t: float,
    dt: float,
    mode: int,
    du: float,
    dv: float,
    ascent: float,
    descent: float,
    log_p: float,
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    log_pressure: FloatArray,
    columns: FloatArray,
    global_lon: bool,
    ci: npt.NDArray[np.int64],
    cv: FloatArray,
    k: int,
) -> tuple[float, float, float, int, int, int]:
    """One RK4 step of the unit vector p (no 1/cos lat): used near the poles."""
    half = 0.5 * dt
    x = math.cos(lat / _DEG) * math.cos(lon / _DEG)
    y = math.cos(lat / _DEG) * math.sin(lon / _DEG)
    z = math.sin(lat / _DEG)
    u, v, dh1, h1, s1, k = _rates(
        lat, lon, h, t, mode, du, dv, ascent, descent, log_p,
        times, lats, lons, log_pressure, columns, global_lon, ci, cv, k,
    )  # fmt: skip
    k1x, k1y, k1z = _tangent(x, y, z, u, v, h1)
    x2, y2, z2 = x + half * k1x, y + half * k1y, z + half * k1z
    n2 = math.sqrt(x2 * x2 + y2 * y2 + z2 * z2)
    x2, y2, z2 = x2 / n2, y2 / n2, z2 / n2
    la2, lo2 = _unit_to_latlon(x2, y2, z2)
    u, v, dh2, h2, s2, k = _rates(
        la2, lo2, h + half * dh1, t + half, mode, du, dv, ascent, descent, log_p,
        times, lats, lons, log_pressure, columns, global_lon, ci, cv, k,
    )  # fmt: skip
    k2x, k2y, k2z = _tangent(x2, y2, z2, u, v, h2)
    x3, y3, z3 = x + half * k2x, y + half * k2y, z + half * k2z
    n3 = math.sqrt(x3 * x3 + y3 * y3 + z3 * z3)
    x3, y3, z3 = x3 / n3, y3 / n3, z3 / n3
    la3, lo3 = _unit_to_latlon(x3, y3, z3)
    u, v, dh3, h3, s3, k = _rates(
        la3, lo3, h + half * dh2, t + half, mode, du, dv, ascent, descent, log_p,
        times, lats, lons, log_pressure, columns, global_lon, ci, cv, k,
    )  # fmt: skip
    k3x, k3y, k3z = _tangent(x3, y3, z3, u, v, h3)
    x4, y4, z4 = x + dt * k3x, y + dt * k3y, z + dt * k3z
    n4 = math.sqrt(x4 * x4 + y4 * y4 + z4 * z4)
    x4, y4, z4 = x4 / n4, y4 / n4, z4 / n4
    la4, lo4 = _unit_to_latlon(x4, y4, z4)
    u, v, dh4, h4, s4, k = _rates(
        la4, lo4, h + dt * dh3, t + dt, mode, du, dv, ascent, descent, log_p,
        times, lats, lons, log_pressure, columns, global_lon, ci, cv, k,
    )  # fmt: skip
    k4x, k4y, k4z = _tangent(x4, y4, z4, u, v, h4)
    sixth = dt / 6.0
    xn = x + sixth * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
    yn = y + sixth * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
    zn = z + sixth * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
    lat_n, lon_n = _unit_to_latlon(xn, yn, zn)
    h_n = h4 if mode == MODE_FLOAT_PRESSURE else h + sixth * (dh1 + 2.0 * dh2 + 2.0 * dh3 + dh4)
    return lat_n, lon_n, h_n, s1 | s2 | s3 | s4, k, 0


@numba.njit(cache=True, error_model="numpy")
def _integrate_kernel(
    t0: float,
    dt: float,
    n_steps: int,
    out_every: int,
    lat0: FloatArray,
    lon0: FloatArray,
    alt0: FloatArray,
    mode0: npt.NDArray[np.int64],
    ascent_rate: FloatArray,
    burst_alt: FloatArray,
    descent_rate: FloatArray,
    ground_alt: float,
    log_p_float: float,
    du0: FloatArray,
    dv0: FloatArray,
    noise_scale: FloatArray,
    sigma0: float,
    sigma_growth_per_s: float,
    tau_s: float,
    member_seed: npt.NDArray[np.int64],
    times: FloatArray,
    lats: FloatArray,
    lons: FloatArray,
    log_pressure: FloatArray,
    columns: FloatArray,
    global_lon: bool,
    out_lat: FloatArray,
    out_lon: FloatArray,
    out_alt: FloatArray,
    status_out: npt.NDArray[np.int8],
    end_time: FloatArray,
    burst_time: FloatArray,
    flags_out: npt.NDArray[np.int64],
) -> None:
    n_members = lat0.shape[0]
    phi = math.exp(-abs(dt) / tau_s)
    kick = math.sqrt(max(0.0, 1.0 - phi * phi))
    nz = columns.shape[3]
    ci = np.zeros(CACHE_INDEX_SIZE, dtype=np.int64)
    cv = np.zeros(CACHE_VALUE_SIZE)
    n_out = out_lat.shape[1]
    half = 0.5 * dt
    sixth = dt / 6.0
    for m in range(n_members):
        lat = lat0[m]
        lon = lon0[m]
        h = alt0[m]
        mode = mode0[m]
        du = du0[m]
        dv = dv0[m]
        ascent = ascent_rate[m]
        descent = descent_rate[m]
        k = nz // 2
        ci[0] = 0
        if noise_scale[m] > 0.0:
            np.random.seed(member_seed[m])  # noqa: NPY002 (numba supports only the legacy API)
        flags = 0
        t = t0
        if mode == MODE_FLOAT_PRESSURE:
            h = height_at_pressure(
                t, lat, lon, log_p_float, times, lats, lons, log_pressure, columns, global_lon
            )
        out_lat[m, 0] = lat
        out_lon[m, 0] = ((lon + 180.0) % 360.0) - 180.0
        out_alt[m, 0] = h
        status_out[m] = STATUS_ALOFT
        end_time[m] = np.nan
        burst_time[m] = np.nan
        for s in range(n_steps):
            if noise_scale[m] > 0.0:
                sig = noise_scale[m] * (sigma0 + sigma_growth_per_s * abs(t - t0))
                du = phi * du + kick * sig * np.random.standard_normal()  # noqa: NPY002
                dv = phi * dv + kick * sig * np.random.standard_normal()  # noqa: NPY002
            if abs(lat) < _POLAR_LAT_DEG:
                # RK4 in (lat, lon, h) as a loop over the 4 stages (one copy of the wind code)
                sum_a = 0.0
                sum_b = 0.0
                sum_h = 0.0
                st = 0
                la, lo, hh, tt = lat, lon, h, t
                h_n = h
                for stage in range(4):
                    if mode == MODE_FLOAT_PRESSURE:
                        hh = height_at_pressure(
                            tt, la, lo, log_p_float, times, lats, lons, log_pressure, columns, global_lon
                        )
                    # the cached cell's fast path, written out here: calling a function with
                    # the grid arrays costs their reference counting on every call
                    hit = False
                    if ci[0] == 1 and cv[16] == hh and cv[24] <= tt <= cv[26]:
                        y = la - cv[17]
                        x = lo + cv[23] - cv[20]
                        if 0.0 <= y <= cv[19] and 0.0 <= x <= cv[22]:
                            wy = y * cv[18]
                            wx = x * cv[21]
                            wt = cv[27] + (tt - cv[24]) * cv[25]
                            w00 = (1.0 - wy) * (1.0 - wx)
                            w01 = (1.0 - wy) * wx
                            w10 = wy * (1.0 - wx)
                            w11 = wy * wx
                            u = w00 * cv[0] + w01 * cv[1] + w10 * cv[2] + w11 * cv[3]
                            v = w00 * cv[8] + w01 * cv[9] + w10 * cv[10] + w11 * cv[11]
                            if wt != 0.0:
                                u += wt * (w00 * cv[4] + w01 * cv[5] + w10 * cv[6] + w11 * cv[7] - u)
                                v += wt * (w00 * cv[12] + w01 * cv[13] + w10 * cv[14] + w11 * cv[15] - v)
                            st |= ci[5]
                            hit = True
                    if not hit:
                        u, v, s_stage, k = sample_wind_cached(
                            tt, la, lo, hh, times, lats, lons, columns, global_lon, ci, cv, k
                        )
                        st |= s_stage
                    if mode == MODE_ASCENT:
                        rate_h = ascent
                    elif mode == MODE_DESCENT:
                        rate_h = -descent / math.sqrt(density_ratio(hh))
                    else:
                        rate_h = 0.0
                    rr = RADIUS_M + hh
                    rate_a = _DEG * (v + dv) / rr
                    rate_b = _DEG * (u + du) / (rr * math.cos(la / _DEG))
                    weight = 2.0 if stage == 1 or stage == 2 else 1.0
                    sum_a += weight * rate_a
                    sum_b += weight * rate_b
                    sum_h += weight * rate_h
                    if stage == 3:
                        h_n = hh
                    else:
                        f = dt if stage == 2 else half
                        la = lat + f * rate_a
                        lo = lon + f * rate_b
                        hh = h + f * rate_h
                        tt = t + f
                lat_n = lat + sixth * sum_a
                lon_n = lon + sixth * sum_b
                if mode != MODE_FLOAT_PRESSURE:
                    h_n = h + sixth * sum_h
            else:
                lat_n, lon_n, h_n, st, k, _ = _step_vector(
                    lat, lon, h, t, dt, mode, du, dv, ascent, descent, log_p_float,
                    times, lats, lons, log_pressure, columns, global_lon, ci, cv, k,
                )  # fmt: skip
            flags |= st
            stopped = False
            if st & (OUT_LAT | OUT_LON):
                status_out[m] = STATUS_LEFT_FIELD
                end_time[m] = t
                stopped = True
            else:
                if mode == MODE_ASCENT and h_n >= burst_alt[m]:
                    burst_time[m] = t + dt * (burst_alt[m] - h) / (h_n - h)
                    h_n = burst_alt[m]
                    mode = MODE_DESCENT
                elif mode == MODE_DESCENT and h_n <= ground_alt:
                    frac = (h - ground_alt) / (h - h_n) if h > h_n else 1.0
                    dlon = ((lon_n - lon + 180.0) % 360.0) - 180.0
                    lat_n = lat + frac * (lat_n - lat)
                    lon_n = lon + frac * dlon
                    h_n = ground_alt
                    end_time[m] = t + frac * dt
                    status_out[m] = STATUS_LANDED
                    stopped = True
                lat, lon, h = lat_n, lon_n, h_n
                if lon > 540.0 or lon < -540.0:
                    lon = ((lon + 180.0) % 360.0) - 180.0
                t = t0 + (s + 1) * dt
            if stopped:
                j0 = (s + 1 + out_every - 1) // out_every
                for j in range(j0, n_out):
                    if status_out[m] == STATUS_LEFT_FIELD:
                        out_lat[m, j] = np.nan
                        out_lon[m, j] = np.nan
                        out_alt[m, j] = np.nan
                    else:
                        out_lat[m, j] = lat
                        out_lon[m, j] = ((lon + 180.0) % 360.0) - 180.0
                        out_alt[m, j] = h
                break
            if (s + 1) % out_every == 0:
                j = (s + 1) // out_every
                out_lat[m, j] = lat
                out_lon[m, j] = ((lon + 180.0) % 360.0) - 180.0
                out_alt[m, j] = h
        flags_out[m] = flags


def _as_member_array(value: npt.ArrayLike | None, default: float, n: int, name: str) -> FloatArray:
    arr = np.broadcast_to(np.asarray(default if value is None else value, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def integrate(
    grid: WindGrid,
    time_s: float,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    alt_m: npt.ArrayLike,
    hours: float,
    *,
    profile: FlightProfile | None = None,
    dt_s: float = 60.0,
    output_every_s: float = 600.0,
    backward: bool = False,
    wind_error: WindErrorModel | None = None,
    wind_offset_east_mps: npt.ArrayLike | None = None,
    wind_offset_north_mps: npt.ArrayLike | None = None,
    noise_scale: npt.ArrayLike | None = None,
    ascent_rate_mps: npt.ArrayLike | None = None,
    burst_alt_m: npt.ArrayLike | None = None,
    descent_rate_mps: npt.ArrayLike | None = None,
    seed: int = 0,
    member_seed: npt.ArrayLike | None = None,
) -> Prediction:
    """Integrate members (broadcast lat/lon/alt arrays) from ``time_s`` for ``hours``.

    ``noise_scale`` (per member, default 1) multiplies the wind-error sigma: 0 makes a member
    deterministic. Per-member ascent/burst/descent arrays override the profile's values.
    ``member_seed`` (per member) seeds each member's wind error; by default
    ``member_seeds(seed, n)``.
    """
    profile = profile or FlightProfile()
    if not (dt_s > 0 and output_every_s > 0 and hours > 0):
        raise ValueError("dt_s, output_every_s and hours must be positive")
    if backward and profile.kind not in ("float", "float-pressure"):
        raise ValueError("backward integration supports float profiles only")
    out_every = max(1, round(output_every_s / dt_s))
    n_steps = math.ceil(hours * 3600.0 / dt_s / out_every) * out_every
    lat, lon, alt = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (lat_deg, lon_deg, alt_m)))
    lat, lon, alt = (np.ascontiguousarray(a.ravel()) for a in (lat, lon, alt))
    n = lat.size
    if n == 0:
        raise ValueError("no members to integrate")
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon)) and np.all(np.isfinite(alt))):
        raise ValueError("start positions must be finite")
    if np.any(np.abs(lat) > 90.0):
        raise ValueError("latitude must be within [-90, 90]")
    g = pack(grid)
    err = wind_error or WindErrorModel(0.0, 0.0)
    scale = _as_member_array(noise_scale, 1.0, n, "noise_scale")
    if np.any(scale < 0):
        raise ValueError("noise_scale must be >= 0")
    noisy = scale if (err.sigma_mps > 0 or err.growth_mps_per_day > 0) else np.zeros(n)
    n_out = n_steps // out_every + 1
    out_lat = np.full((n, n_out), np.nan)
    out_lon = np.full((n, n_out), np.nan)
    out_alt = np.full((n, n_out), np.nan)
    status = np.zeros(n, dtype=np.int8)
    end_time = np.full(n, np.nan)
    burst_time = np.full(n, np.nan)
    flags = np.zeros(n, dtype=np.int64)
    mode = np.full(n, profile.mode, dtype=np.int64)
    log_p = math.log(profile.float_pressure_hpa) if profile.kind == "float-pressure" else 0.0
    dt = -dt_s if backward else dt_s
    seeds = member_seeds(seed, n) if member_seed is None else np.asarray(member_seed, np.int64).reshape(-1)
    if seeds.shape != (n,) or np.any(seeds < 0) or np.any(seeds >= 2**32):
        raise ValueError(f"member_seed needs {n} values in [0, 2**32)")
    _integrate_kernel(
        float(time_s), dt, n_steps, out_every, lat, lon, alt, mode,
        _as_member_array(ascent_rate_mps, profile.ascent_rate_mps, n, "ascent_rate_mps"),
        _as_member_array(burst_alt_m, profile.burst_alt_m, n, "burst_alt_m"),
        _as_member_array(descent_rate_mps, profile.descent_rate_mps, n, "descent_rate_mps"),
        float(profile.ground_alt_m), log_p,
        _as_member_array(wind_offset_east_mps, 0.0, n, "wind_offset_east_mps") * (scale > 0),
        _as_member_array(wind_offset_north_mps, 0.0, n, "wind_offset_north_mps") * (scale > 0),
        noisy, float(err.sigma_mps), err.growth_mps_per_day / 86400.0, err.decorrelation_s, seeds,
        g.time_s, g.lat_deg, g.lon_deg, g.log_pressure, g.columns, g.global_lon,
        out_lat, out_lon, out_alt, status, end_time, burst_time, flags,
    )  # fmt: skip
    times = np.asarray(float(time_s) + dt * out_every * np.arange(n_out), dtype=np.float64)
    notes = _notes(g.source, g.time_s, flags, status, n)
    for note in notes:
        log.info("%s", note)
    return Prediction(
        time_s=times,
        lat_deg=out_lat,
        lon_deg=out_lon,
        alt_m=out_alt,
        status=status,
        end_time_s=end_time,
        burst_time_s=burst_time,
        backward=backward,
        source=g.source,
        notes=tuple(notes),
        member_flags=flags,
    )


def member_seeds(seed: int, members: int) -> npt.NDArray[np.int64]:
    """The wind-error seed of each of ``members`` members of a run seeded with ``seed``.

    Member m's seed depends only on (seed, m): ``member_seeds(seed, n)[:k]`` equals
    ``member_seeds(seed, k)``, so any split of the members by index draws the same noise.
    """
    return np.random.default_rng([int(seed), 0x5EED]).integers(0, 2**32, size=members, dtype=np.int64)


def _notes(
    source: str, times: FloatArray, flags: npt.NDArray[np.int64], status: npt.NDArray[np.int8], n: int
) -> list[str]:
    notes = []
    if len(times) == 1:
        notes.append(f"{source}: one analysis time; winds held steady over the whole run")
    elif (c := int(np.count_nonzero(flags & OUT_TIME))) > 0:
        notes.append(
            f"{c} of {n} members ran past the wind field's times; the nearest time's winds were used"
        )
    if (c := int(np.count_nonzero(flags & OUT_BELOW))) > 0:
        notes.append(f"{c} of {n} members went below the lowest level; its winds were used")
    if (c := int(np.count_nonzero(flags & OUT_ABOVE))) > 0:
        notes.append(f"{c} of {n} members went above the highest level; its winds were used")
    if (c := int(np.count_nonzero(status == STATUS_LEFT_FIELD))) > 0:
        notes.append(f"{c} of {n} members left the wind field and were stopped there")
    return notes


__all__ = ["MODE_FLOAT", "Prediction", "WindErrorModel", "integrate", "member_seeds"]
