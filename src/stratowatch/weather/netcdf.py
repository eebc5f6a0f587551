"""Winds on pressure levels from NetCDF (classic or NetCDF-4/HDF5), read with xarray.

Variables are found by CF ``standard_name`` first, then by the names common in NWP output
(GFS/THREDDS ``u-component_of_wind_isobaric``, ERA ``u``/``z``, NCEP reanalysis ``uwnd``/``hgt``).
Only variables whose vertical coordinate is a pressure (units Pa, hPa, mb, mbar, millibar, or
``standard_name: air_pressure``) are used; 10 m winds and the like are ignored. Pressure in Pa
is converted to hPa, geopotential (m2/s2) to geopotential height, vertical velocity omega
(Pa/s) to w (m/s) with the hydrostatic relation w = -omega R T / (p g) where T is known.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import xarray as xr

from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.grid import FloatArray, WindGrid, assemble_grid
from stratowatch.weather.heights import G0_MPS2, R_DRY_J_PER_KG_K

log = logging.getLogger(__name__)

_PRESSURE_UNITS = {"pa": 0.01, "hpa": 1.0, "mb": 1.0, "mbar": 1.0, "millibar": 1.0}

# (role, standard names, name patterns)
_ROLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("u", ("eastward_wind",), r"^(u|ua|uwnd|ugrd|u_wind|u-component_of_wind.*)$"),
    ("v", ("northward_wind",), r"^(v|va|vwnd|vgrd|v_wind|v-component_of_wind.*)$"),
    ("h", ("geopotential_height",), r"^(gh|zg|hgt|geopotential_height.*)$"),
    ("z", ("geopotential",), r"^(z|geopotential)$"),
    ("t", ("air_temperature",), r"^(t|ta|air|tmp|temperature_isobaric.*)$"),
    (
        "omega",
        ("lagrangian_tendency_of_air_pressure",),
        r"^(w|omega|vertical_velocity_pressure.*)$",
    ),
)


def read_netcdf(path: str | Path) -> WindGrid:
    """Read u, v (and heights, temperature, vertical velocity where present) on pressure levels."""
    p = Path(path)
    try:
        # engine named: guessing would import every backend (cfgrib -> eccodes) for nothing
        ds = xr.open_dataset(p, engine="netcdf4", decode_times=True)
    except Exception as exc:
        raise WindFormatError(f"{p}: not a readable NetCDF file ({exc})") from exc
    with ds:
        found = _find_variables(ds)
        missing = [r for r in ("u", "v") if r not in found]
        if missing:
            names = ", ".join(sorted(str(k) for k in ds.data_vars))
            raise WindFormatError(
                f"{p}: no {' and '.join(missing)} wind on pressure levels (variables: {names})"
            )
        u_var = found["u"]
        vdim = _pressure_dim(ds[u_var])
        assert vdim is not None
        levels_hpa = np.asarray(ds[vdim].values, dtype=np.float64) * _pressure_scale(ds[vdim])
        tdim, ydim, xdim = _horizontal_dims(ds[u_var], p)
        times = _times(ds, ds[u_var], tdim, p)
        lat = np.asarray(ds[ydim].values, dtype=np.float64)
        lon = np.asarray(ds[xdim].values, dtype=np.float64)
        arrays: dict[str, FloatArray] = {}
        for role, name in found.items():
            arrays[role] = _on_levels(ds, name, vdim, levels_hpa, tdim, ydim, xdim)
        notes: list[str] = []
        height = arrays.get("h")
        if height is None and "z" in arrays:
            height = arrays["z"] / G0_MPS2
            notes.append("geopotential divided by g0 = 9.80665 m/s2")
        w = None
        if "omega" in arrays and "t" in arrays:
            pressure_pa = levels_hpa[None, :, None, None] * 100.0
            w = -arrays["omega"] * R_DRY_J_PER_KG_K * arrays["t"] / (pressure_pa * G0_MPS2)
        log.info("%s: %s levels, %s times, vars %s", p, len(levels_hpa), len(times), found)
        return assemble_grid(
            time_s=times,
            pressure_hpa=levels_hpa,
            lat_deg=lat,
            lon_deg=lon,
            u_mps=arrays["u"],
            v_mps=arrays["v"],
            height_m=height,
            w_mps=w,
            temperature_k=arrays.get("t"),
            source=str(p),
            notes=notes,
        )


def _find_variables(ds: xr.Dataset) -> dict[str, str]:
    found: dict[str, str] = {}
    for role, std_names, pattern in _ROLES:
        candidates = []
        for name, var in ds.data_vars.items():
            if _pressure_dim(var) is None or var.ndim < 3:
                continue
            std = str(var.attrs.get("standard_name", ""))
            if std in std_names or re.match(pattern, str(name), re.IGNORECASE):
                candidates.append(str(name))
        if candidates:
            found[role] = candidates[0]
    return found


def _pressure_scale(coord: xr.DataArray) -> float:
    units = str(coord.attrs.get("units", "")).strip().lower()
    if units in _PRESSURE_UNITS:
        return _PRESSURE_UNITS[units]
    values = np.asarray(coord.values, dtype=np.float64)
    return 0.01 if np.nanmax(values) > 2000.0 else 1.0  # no units: Pa if values look like Pa


def _pressure_dim(var: xr.DataArray) -> str | None:
    for dim in var.dims:
        if dim not in var.coords:
            continue
        c = var.coords[dim]
        units = str(c.attrs.get("units", "")).strip().lower()
        if units in _PRESSURE_UNITS or c.attrs.get("standard_name") == "air_pressure":
            return str(dim)
        if re.match(r"^(isobaric\w*|level|lev|plev|pressure|isobaricInhPa)$", str(dim)):
            return str(dim)
    return None


def _horizontal_dims(var: xr.DataArray, path: Path) -> tuple[str | None, str, str]:
    tdim = ydim = xdim = None
    for dim in var.dims:
        c = var.coords.get(dim)
        units = str(c.attrs.get("units", "")).lower() if c is not None else ""
        name = str(dim).lower()
        if c is not None and np.issubdtype(c.dtype, np.datetime64):
            tdim = str(dim)
        elif units.startswith("degree") and ("north" in units or units.endswith("_n")):
            ydim = str(dim)
        elif units.startswith("degree") and ("east" in units or units.endswith("_e")):
            xdim = str(dim)
        elif name in ("lat", "latitude", "y") and ydim is None:
            ydim = str(dim)
        elif name in ("lon", "longitude", "x") and xdim is None:
            xdim = str(dim)
    if ydim is None or xdim is None:
        raise WindFormatError(
            f"{path}: variable {var.name!r} has no latitude/longitude axes (dims {var.dims}); "
            "only regular lat/lon NetCDF grids are supported"
        )
    return tdim, ydim, xdim


def _times(ds: xr.Dataset, var: xr.DataArray, tdim: str | None, path: Path) -> FloatArray:
    if tdim is not None:
        values = var.coords[tdim].values
    else:
        for name in ("valid_time", "time", "reftime"):
            if name in ds.coords or name in ds.variables:
                values = np.atleast_1d(ds[name].values)
                break
        else:
            raise WindFormatError(f"{path}: no time coordinate (time, valid_time) found")
    values = np.atleast_1d(values)
    if not np.issubdtype(values.dtype, np.datetime64):
        raise WindFormatError(f"{path}: time coordinate could not be decoded as dates")
    return values.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9


def _on_levels(
    ds: xr.Dataset,
    name: str,
    vdim: str,
    levels_hpa: npt.NDArray[np.float64],
    tdim: str | None,
    ydim: str,
    xdim: str,
) -> FloatArray:
    """Variable as (nt, nz, ny, nx) on the u levels; levels it lacks are NaN (filled later)."""
    var = ds[name]
    own = _pressure_dim(var)
    assert own is not None
    var_levels = np.asarray(ds[own].values, dtype=np.float64) * _pressure_scale(ds[own])
    dims = [d for d in (tdim, own, ydim, xdim) if d is not None]
    extra = [d for d in var.dims if d not in dims]
    if extra:
        var = var.isel({d: 0 for d in extra})
    data = np.asarray(var.transpose(*dims).values, dtype=np.float64)
    if tdim is None:
        data = data[None]
    fill = var.attrs.get("_FillValue", var.attrs.get("missing_value"))
    if fill is not None:
        data[data == float(fill)] = np.nan
    out = np.full((data.shape[0], levels_hpa.shape[0], *data.shape[2:]), np.nan)
    for k, level in enumerate(levels_hpa):
        match = np.flatnonzero(np.isclose(var_levels, level, rtol=1e-6, atol=1e-6))
        if match.size:
            out[:, k] = data[:, match[0]]
    return out
