"""The one in-memory form of a wind field that the prediction kernels read.

Every reader (GRIB2, NetCDF, soundings, flight-derived profiles, analytic fields) produces a
:class:`WindGrid`: winds on pressure levels over a regular latitude/longitude grid, with the
geopotential height of each level at each point so that altitude queries need no standard
atmosphere (the standard atmosphere fills ``height_m`` only where the data has no heights).

Conventions (enforced by :meth:`WindGrid.validate`):

* ``time_s``: (nt,) ascending POSIX seconds UTC (nt >= 1).
* ``pressure_hpa``: (nz,) strictly descending (surface first, so heights ascend).
* ``lat_deg``: (ny,) strictly ascending. ``lon_deg``: (nx,) strictly ascending, in [-180, 360);
  ``global_lon`` is True when the grid wraps around the globe (interpolate across the seam).
* ``u_mps``, ``v_mps``, ``height_m``: (nt, nz, ny, nx) float64, earth-relative (east, north).
* A horizontally uniform profile (a sounding) is a grid with ny = nx = 2 spanning the globe.
* ``height_m`` holds *geopotential* heights (gpm); see :mod:`stratowatch.weather.heights` for the
  conversion to the geometric altitudes of positions (``geometric_to_geopotential_m``).
* Readers produce no NaN by default. Only a Lambert grid read with ``lambert_domain="mask"``
  has NaN in ``u_mps``, ``v_mps`` and ``height_m`` at points outside the projected domain.

Optional extensions (readers fill them; kernels may ignore them):

* :meth:`WindGrid.wrap_lon` maps query longitudes into the grid's convention (0-360 or +-180),
  :meth:`WindGrid.column_heights` gives the geopotential heights of the levels above points,
  and :meth:`WindGrid.is_profile` tells a sounding-like field from a gridded one. Queries outside
  the data are the query layer's business (``interp.wind_at`` raises ``WindDomainError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class WindGrid:
    time_s: FloatArray
    pressure_hpa: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    u_mps: FloatArray
    v_mps: FloatArray
    height_m: FloatArray
    global_lon: bool = False
    #: True when ``height_m`` holds geopotential metres (model and sounding heights); the
    #: kernels then convert them to geometric metres above sea level. False: geometric already
    #: (heights measured by GPS, e.g. a flight-derived profile).
    heights_geopotential: bool = False
    w_mps: FloatArray | None = None
    temperature_k: FloatArray | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def validate(self) -> WindGrid:
        nt, nz, ny, nx = (
            len(self.time_s),
            len(self.pressure_hpa),
            len(self.lat_deg),
            len(self.lon_deg),
        )
        shape = (nt, nz, ny, nx)
        for name in ("u_mps", "v_mps", "height_m"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"{self.source}: {name} has shape {arr.shape}, expected {shape}")
        if nt < 1 or nz < 2 or ny < 2 or nx < 2:
            raise ValueError(f"{self.source}: wind grid too small {shape}")
        if np.any(np.diff(self.time_s) <= 0):
            raise ValueError(f"{self.source}: times must be strictly ascending")
        if np.any(np.diff(self.pressure_hpa) >= 0):
            raise ValueError(f"{self.source}: pressure levels must be strictly descending")
        if np.any(np.diff(self.lat_deg) <= 0) or np.any(np.diff(self.lon_deg) <= 0):
            raise ValueError(f"{self.source}: latitudes and longitudes must be strictly ascending")
        return self

    # -- helpers (extensions; the fields above keep their contract meaning) -------------------

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.time_s), len(self.pressure_hpa), len(self.lat_deg), len(self.lon_deg))

    @property
    def is_profile(self) -> bool:
        """True for a horizontally uniform field (a sounding or a flight-derived profile)."""
        return self.lat_deg.shape[0] == 2 and self.lon_deg.shape[0] == 2 and self.global_lon

    def wrap_lon(self, lon_deg: npt.ArrayLike) -> FloatArray:
        """Query longitudes mapped into the grid's convention: [lon0, lon0 + 360)."""
        lon = np.asarray(lon_deg, dtype=np.float64)
        lon0 = float(self.lon_deg[0])
        return np.asarray(lon0 + np.mod(lon - lon0, 360.0), dtype=np.float64)

    def column_heights(
        self, time_s: npt.ArrayLike, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike
    ) -> FloatArray:
        """Geopotential heights (n, nz) of every level above each point, bilinear in lat/lon
        and linear in time (times clamped to the data). NaN outside the horizontal domain."""
        t, lat, lon = np.broadcast_arrays(
            np.asarray(time_s, np.float64), np.asarray(lat_deg, np.float64), self.wrap_lon(lon_deg)
        )
        t, lat, lon = t.ravel(), lat.ravel(), lon.ravel()
        ti0, ti1, tw = _bracket(self.time_s, t)
        yi0, yi1, yw = _bracket(self.lat_deg, lat)
        lons = self.lon_deg
        if self.global_lon:
            lons = np.append(lons, lons[0] + 360.0)
        xi0, xi1, xw = _bracket(lons, lon)
        nx = self.lon_deg.shape[0]
        xi0, xi1 = xi0 % nx, xi1 % nx
        h = self.height_m
        out = np.zeros((t.shape[0], h.shape[1]))
        for ti, wt in ((ti0, 1.0 - tw), (ti1, tw)):
            for yi, wy in ((yi0, 1.0 - yw), (yi1, yw)):
                for xi, wx in ((xi0, 1.0 - xw), (xi1, xw)):
                    w = (wt * wy * wx)[:, None]
                    out += np.where(w > 0, w * h[ti, :, yi, xi], 0.0)
        outside = (lat < self.lat_deg[0]) | (lat > self.lat_deg[-1])
        if not self.global_lon:
            outside |= (lon < self.lon_deg[0]) | (lon > self.lon_deg[-1])
        out[outside] = np.nan
        return out


def _bracket(
    axis: FloatArray, x: FloatArray
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]:
    """Indices (i0, i1) and weight of i1 for linear interpolation on an ascending axis (clamped)."""
    n = axis.shape[0]
    if n == 1:
        z = np.zeros(x.shape, dtype=np.intp)
        return z, z, np.zeros(x.shape)
    i0 = np.clip(np.searchsorted(axis, x, side="right") - 1, 0, n - 2)
    w = np.clip((x - axis[i0]) / (axis[i0 + 1] - axis[i0]), 0.0, 1.0)
    return i0, i0 + 1, w


def assemble_grid(
    *,
    time_s: npt.ArrayLike,
    pressure_hpa: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    u_mps: npt.ArrayLike,
    v_mps: npt.ArrayLike,
    height_m: npt.ArrayLike | None,
    w_mps: npt.ArrayLike | None = None,
    temperature_k: npt.ArrayLike | None = None,
    source: str = "",
    notes: list[str] | None = None,
) -> WindGrid:
    """Build a valid :class:`WindGrid` from arrays (nt, nz, ny, nx) in any axis order.

    What every reader needs once: levels sorted surface-first, latitudes ascending (descending
    rows flipped), longitudes normalised (a regional grid to -180..180 unless it crosses the
    antimeridian, then 0..360; a global grid keeps its convention, duplicate seam column
    dropped, ``global_lon=True``), times sorted. Levels where u or v is missing everywhere are
    dropped (noted). Missing heights are filled per column, linear in ln p between the
    column's known levels; a field without any heights gets standard-atmosphere heights
    (noted). Arrays come back float64 and C-contiguous.
    """
    from stratowatch.weather.heights import isa_height_m

    notes = list(notes or [])
    t = np.atleast_1d(np.asarray(time_s, dtype=np.float64))
    p = np.asarray(pressure_hpa, dtype=np.float64)
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon = np.asarray(lon_deg, dtype=np.float64)
    fields: dict[str, FloatArray] = {
        "u": np.asarray(u_mps, dtype=np.float64),
        "v": np.asarray(v_mps, dtype=np.float64),
    }
    for name, arr in (("h", height_m), ("w", w_mps), ("t", temperature_k)):
        if arr is not None:
            fields[name] = np.asarray(arr, dtype=np.float64)
    # times ascending
    order = np.argsort(t, kind="stable")
    # levels surface first
    zorder = np.argsort(-p, kind="stable")
    p = p[zorder]
    # latitudes ascending
    yorder = np.argsort(lat, kind="stable")
    lat = lat[yorder]
    # longitudes
    lon, xorder, global_lon = _normalise_lon(lon)
    for k, arr in fields.items():
        fields[k] = arr[order][:, zorder][:, :, yorder][:, :, :, xorder]
    t = t[order]
    # drop levels with no wind at all
    present = np.isfinite(fields["u"]).any(axis=(0, 2, 3)) & np.isfinite(fields["v"]).any(axis=(0, 2, 3))
    if not present.all():
        notes.append(f"levels without wind dropped: {', '.join(f'{x:g}' for x in p[~present])} hPa")
        p = p[present]
        for k, arr in fields.items():
            fields[k] = arr[:, present]
    if "h" not in fields or not np.isfinite(fields["h"]).any():
        notes.append("no geopotential heights in the data: standard-atmosphere heights used")
        fields["h"] = np.broadcast_to(isa_height_m(p)[None, :, None, None], fields["u"].shape).copy()
    else:
        fields["h"] = _fill_heights(p, fields["h"], fields["u"], notes)
    grid = WindGrid(
        time_s=t,
        pressure_hpa=p,
        lat_deg=lat,
        lon_deg=lon,
        u_mps=np.ascontiguousarray(fields["u"]),
        v_mps=np.ascontiguousarray(fields["v"]),
        height_m=np.ascontiguousarray(fields["h"]),
        global_lon=global_lon,
        heights_geopotential=True,
        w_mps=np.ascontiguousarray(fields["w"]) if "w" in fields else None,
        temperature_k=np.ascontiguousarray(fields["t"]) if "t" in fields else None,
        source=source,
        notes=notes,
    )
    return grid.validate()


def _normalise_lon(lon: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp], bool]:
    """(sorted longitudes, column order, global?) with the conventions of :func:`assemble_grid`."""
    n = lon.shape[0]
    wrapped = np.mod(lon, 360.0)
    order = np.argsort(wrapped, kind="stable")
    w_sorted = wrapped[order]
    # a duplicate seam column (0 and 360) maps onto the same wrapped value: drop it
    keep = np.concatenate(([True], np.diff(w_sorted) > 1e-9))
    order, w_sorted = order[keep], w_sorted[keep]
    n = w_sorted.shape[0]
    if n >= 2:
        gaps = np.diff(np.concatenate((w_sorted, [w_sorted[0] + 360.0])))
        step = float(np.median(gaps[:-1])) if n > 2 else float(gaps[0])
        is_global = bool(np.max(gaps) < 1.5 * step)
    else:
        is_global = False
    if is_global:
        if np.any(lon < 0):
            signed = np.mod(lon + 180.0, 360.0) - 180.0
            sorder = np.argsort(signed, kind="stable")
            s_sorted = signed[sorder]
            keep = np.concatenate(([True], np.diff(s_sorted) > 1e-9))
            return s_sorted[keep], sorder[keep], True
        return w_sorted, order, True
    signed = np.mod(lon + 180.0, 360.0) - 180.0
    sorder = np.argsort(signed, kind="stable")
    s_sorted = signed[sorder]
    if n < 3:
        return s_sorted, sorder, False
    s_gaps = np.diff(s_sorted)
    w_gaps = np.diff(w_sorted)
    if np.max(s_gaps) <= np.max(w_gaps) + 1e-9:
        return s_sorted, sorder, False  # does not cross the antimeridian: -180..180
    return w_sorted, order, False  # crosses it: 0..360


def _fill_heights(p: FloatArray, h: FloatArray, u: FloatArray, notes: list[str]) -> FloatArray:
    """Fill NaN heights where winds exist, linear in ln p along each column (vectorised)."""
    missing = ~np.isfinite(h) & np.isfinite(u)
    if not missing.any():
        return h
    lnp = -np.log(p)  # ascending
    cols = np.moveaxis(h, 1, -1).reshape(-1, p.shape[0])
    good = np.isfinite(cols)
    filled = cols.copy()
    n_filled = 0
    for k in np.flatnonzero(~good.all(axis=0)):
        # level k is missing in some columns: interpolate from the nearest good levels below/above
        need = ~good[:, k]
        below = np.where(good[:, :k], np.arange(k)[None, :], -1).max(axis=1) if k > 0 else None
        above_idx = np.where(good[:, k + 1 :], np.arange(k + 1, p.shape[0])[None, :], p.shape[0])
        above = above_idx.min(axis=1) if k + 1 < p.shape[0] else None
        if below is None or above is None:
            continue
        ok = need & (below >= 0) & (above < p.shape[0])
        rows = np.flatnonzero(ok)
        b, a = below[rows], above[rows]
        frac = (lnp[k] - lnp[b]) / (lnp[a] - lnp[b])
        filled[rows, k] = cols[rows, b] + frac * (cols[rows, a] - cols[rows, b])
        n_filled += rows.size
    if n_filled:
        notes.append(f"{n_filled} missing heights filled by ln-p interpolation")
    out = filled.reshape(*np.moveaxis(h, 1, -1).shape)
    return np.ascontiguousarray(np.moveaxis(out, -1, 1))
