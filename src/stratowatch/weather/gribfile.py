"""Winds on pressure levels from GRIB2 (and GRIB1) files, read message by message with ecCodes.

Used: messages on ``isobaricInhPa`` / ``isobaricInPa`` levels with shortName u, v (required),
gh or z (heights), t and w (omega, Pa/s, turned into m/s where t is known). Everything else
(surface fields, tropopause, max-wind levels) is skipped and counted in the grid's notes.
All times in the file (validity date/time) become the time axis.

Grids: regular lat/lon (``regular_ll``; 0-360 longitudes of global GFS are kept and flagged
``global_lon``) and Lambert conformal (``lambert``; NAM, RUC, HRRR), which is resampled onto a
regular lat/lon grid covering the domain (NaN outside it) after grid-relative winds are
rotated to earth-relative (see :mod:`stratowatch.weather.lambert`). ``lambert_domain="crop"``
(the default) keeps the largest lat/lon rectangle that lies wholly inside the projected domain
(about 78 % of the NAM and RUC domains: all of the conterminous US), so the grid holds no NaN;
``"mask"`` keeps the whole bounding box with NaN outside the domain, for query layers that
treat NaN columns as out-of-domain. A message on a different
grid from the first one is skipped (and counted in the notes).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from stratowatch._native import before_eccodes

before_eccodes()  # pyproj and libpq before the eccodes wheel's bundled copies (see _native)
import eccodes

from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.grid import FloatArray, WindGrid, assemble_grid
from stratowatch.weather.heights import G0_MPS2, R_DRY_J_PER_KG_K
from stratowatch.weather.lambert import (
    LambertGrid,
    grid_to_earth,
    largest_valid_rectangle,
    regular_axes,
    resample,
)

log = logging.getLogger(__name__)

_WANTED = {"u", "v", "gh", "z", "t", "w"}
_MISSING = 1.0e30


def read_grib(
    path: str | Path,
    *,
    step_deg: float | None = None,
    lambert_domain: Literal["crop", "mask"] = "crop",
) -> WindGrid:
    """Read a GRIB file into a :class:`WindGrid` (``step_deg``: Lambert resampling step;
    ``lambert_domain``: crop to the inscribed rectangle or mask outside with NaN)."""
    p = Path(path)
    fields: dict[tuple[float, float, str], FloatArray] = {}
    grid_key: tuple[object, ...] | None = None
    lat2d = lon2d = None
    lambert: LambertGrid | None = None
    relative = {"u": False, "v": False}
    skipped: Counter[str] = Counter()
    n = 0
    # NCEP packs u and v as two fields of one GRIB2 message: iterate fields, not messages
    eccodes.codes_grib_multi_support_on()
    try:
        with p.open("rb") as f:
            try:
                while True:
                    h = eccodes.codes_grib_new_from_file(f)
                    if h is None:
                        break
                    n += 1
                    try:
                        level_type = eccodes.codes_get(h, "typeOfLevel")
                        short = eccodes.codes_get(h, "shortName")
                        if level_type not in ("isobaricInhPa", "isobaricInPa") or short not in _WANTED:
                            skipped[f"{short}@{level_type}"] += 1
                            continue
                        key = _grid_key(h)
                        if grid_key is None:
                            grid_key = key
                            lat2d, lon2d = _latlon(h)
                            if key[0] == "lambert":
                                lambert = _lambert(h, p)
                            elif key[0] != "regular_ll":
                                raise WindFormatError(
                                    f"{p}: message {n}: grid type {key[0]!r} is not supported "
                                    "(regular_ll and lambert are)"
                                )
                        elif key != grid_key:
                            skipped[f"{short} on another grid"] += 1
                            continue
                        level = float(eccodes.codes_get(h, "level"))
                        if level_type == "isobaricInPa":
                            level /= 100.0
                        valid = _valid_time(h, p, n)
                        if short in relative:
                            relative[short] = bool(eccodes.codes_get(h, "uvRelativeToGrid"))
                        eccodes.codes_set(h, "missingValue", _MISSING)
                        values = np.asarray(eccodes.codes_get_values(h), dtype=np.float64)
                        values[values >= _MISSING * 0.999] = np.nan
                        assert lat2d is not None
                        fields[(valid, level, short)] = values.reshape(lat2d.shape)
                    finally:
                        eccodes.codes_release(h)
            finally:
                # forget the multi-field state of this file (else a double free at exit)
                eccodes.codes_grib_multi_support_reset_file(f)
    except WindFormatError:
        raise
    except (eccodes.CodesInternalError, OSError) as exc:
        raise WindFormatError(f"{p}: not a readable GRIB file ({exc})") from exc
    if n == 0:
        raise WindFormatError(f"{p}: no GRIB messages")
    shorts = {k[2] for k in fields}
    if not {"u", "v"} <= shorts:
        raise WindFormatError(f"{p}: no u and v winds on pressure levels ({n} messages read)")
    assert lat2d is not None and lon2d is not None
    times = np.array(sorted({k[0] for k in fields}))
    levels = np.array(sorted({k[1] for k in fields if k[2] in ("u", "v")}, reverse=True))
    shape = (len(times), len(levels), *lat2d.shape)

    def stack(name: str) -> FloatArray | None:
        if not any(k[2] == name for k in fields):
            return None
        out = np.full(shape, np.nan)
        for (t, lev, s), vals in fields.items():
            if s == name and lev in levels:
                out[np.searchsorted(times, t), np.flatnonzero(levels == lev)[0]] = vals
        return out

    u, v = stack("u"), stack("v")
    assert u is not None and v is not None
    height = stack("gh")
    notes = [f"{sum(skipped.values())} messages of other fields/levels skipped"]
    if height is None and (z := stack("z")) is not None:
        height = z / G0_MPS2
        notes.append("geopotential divided by g0 = 9.80665 m/s2")
    temp = stack("t")
    omega = stack("w")
    w = None
    if omega is not None and temp is not None:
        pressure_pa = levels[None, :, None, None] * 100.0
        w = -omega * R_DRY_J_PER_KG_K * temp / (pressure_pa * G0_MPS2)
    if lambert is not None:
        if relative["u"] or relative["v"]:
            u, v = grid_to_earth(u, v, lambert.rotation_rad(lon2d)[None, None])
            notes.append("grid-relative winds rotated to earth-relative")
        lat, lon = regular_axes(lambert, lat2d, lon2d, step_deg)
        u, v = resample(lambert, u, lat, lon), resample(lambert, v, lat, lon)
        height = None if height is None else resample(lambert, height, lat, lon)
        temp = None if temp is None else resample(lambert, temp, lat, lon)
        w = None if w is None else resample(lambert, w, lat, lon)
        notes.append(f"Lambert {lambert.nx}x{lambert.ny} grid resampled to {lat[1] - lat[0]:g} deg lat/lon")
        if lambert_domain == "crop":
            inside = np.isfinite(u).all(axis=(0, 1)) & np.isfinite(v).all(axis=(0, 1))
            if height is not None:
                inside &= np.isfinite(height).all(axis=(0, 1))
            rows, cols = largest_valid_rectangle(np.asarray(inside, dtype=bool))
            lat, lon = lat[rows], lon[cols]
            u, v = u[..., rows, cols], v[..., rows, cols]
            height = None if height is None else height[..., rows, cols]
            temp = None if temp is None else temp[..., rows, cols]
            w = None if w is None else w[..., rows, cols]
            notes.append(
                f"cropped to the rectangle inside the Lambert domain: lat {lat[0]:g}..{lat[-1]:g}, "
                f"lon {lon[0]:g}..{lon[-1]:g}"
            )
    else:
        lat, lon = lat2d[:, 0], lon2d[0, :]
    log.info("%s: %d messages, %d times, %d levels", p, n, len(times), len(levels))
    return assemble_grid(
        time_s=times,
        pressure_hpa=levels,
        lat_deg=lat,
        lon_deg=lon,
        u_mps=u,
        v_mps=v,
        height_m=height,
        w_mps=w,
        temperature_k=temp,
        source=str(p),
        notes=notes,
    )


def _grid_key(h: int) -> tuple[object, ...]:
    grid_type = eccodes.codes_get(h, "gridType")
    if grid_type == "lambert":
        keys = (
            "Nx",
            "Ny",
            "latitudeOfFirstGridPointInDegrees",
            "longitudeOfFirstGridPointInDegrees",
        )
    else:
        keys = (
            "Ni",
            "Nj",
            "latitudeOfFirstGridPointInDegrees",
            "longitudeOfFirstGridPointInDegrees",
        )
    return (grid_type, *(eccodes.codes_get(h, k) for k in keys))


def _latlon(h: int) -> tuple[FloatArray, FloatArray]:
    if eccodes.codes_get(h, "jPointsAreConsecutive"):
        raise WindFormatError("GRIB grids with j points consecutive are not supported")
    grid_type = eccodes.codes_get(h, "gridType")
    if grid_type == "lambert":
        ni, nj = eccodes.codes_get(h, "Nx"), eccodes.codes_get(h, "Ny")
    else:
        ni, nj = eccodes.codes_get(h, "Ni"), eccodes.codes_get(h, "Nj")
    lat = np.asarray(eccodes.codes_get_array(h, "latitudes"), dtype=np.float64).reshape(nj, ni)
    lon = np.asarray(eccodes.codes_get_array(h, "longitudes"), dtype=np.float64).reshape(nj, ni)
    return lat, lon


def _lambert(h: int, path: Path) -> LambertGrid:
    if eccodes.codes_get(h, "earthIsOblate"):
        log.warning("%s: oblate Earth in a Lambert grid; projecting on a sphere", path)
        radius = 6_371_229.0
    else:
        radius = float(eccodes.codes_get(h, "radius"))
    if eccodes.codes_get(h, "projectionCentreFlag") & 128:
        raise WindFormatError(f"{path}: southern-hemisphere Lambert grids are not supported")
    return LambertGrid(
        nx=int(eccodes.codes_get(h, "Nx")),
        ny=int(eccodes.codes_get(h, "Ny")),
        lat1_deg=float(eccodes.codes_get(h, "latitudeOfFirstGridPointInDegrees")),
        lon1_deg=float(eccodes.codes_get(h, "longitudeOfFirstGridPointInDegrees")),
        lov_deg=float(eccodes.codes_get(h, "LoVInDegrees")),
        lad_deg=float(eccodes.codes_get(h, "LaDInDegrees")),
        latin1_deg=float(eccodes.codes_get(h, "Latin1InDegrees")),
        latin2_deg=float(eccodes.codes_get(h, "Latin2InDegrees")),
        dx_m=float(eccodes.codes_get(h, "DxInMetres")),
        dy_m=float(eccodes.codes_get(h, "DyInMetres")),
        radius_m=radius,
        i_scans_negatively=bool(eccodes.codes_get(h, "iScansNegatively")),
        j_scans_positively=bool(eccodes.codes_get(h, "jScansPositively")),
    )


def _valid_time(h: int, path: Path, n: int) -> float:
    date = int(eccodes.codes_get(h, "validityDate"))
    hhmm = int(eccodes.codes_get(h, "validityTime"))
    try:
        dt = datetime(date // 10000, date // 100 % 100, date % 100, hhmm // 100, hhmm % 100, tzinfo=UTC)
    except ValueError as exc:
        raise WindFormatError(f"{path}: message {n}: bad validity time {date} {hhmm:04d}") from exc
    return dt.timestamp()
