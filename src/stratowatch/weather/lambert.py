"""Lambert conformal conic grids (NCEP grid 211, RUC 40 km, NAM 12 km ...): wind rotation and
resampling onto a regular latitude/longitude grid.

Projection (GRIB2 template 3.30, spherical Earth of radius R; Snyder 1987, eqs. 15-1..15-5)::

    n   = sin(phi1)                                            if phi1 == phi2 (tangent cone)
        = ln(cos phi1 / cos phi2) / ln(tan(pi/4 + phi2/2) / tan(pi/4 + phi1/2))   (secant)
    F   = cos(phi1) tan^n(pi/4 + phi1/2) / n
    rho = R F / tan^n(pi/4 + phi/2)          rho0 = the same at LaD
    x   = rho sin(n (lambda - LoV))          y = rho0 - rho cos(n (lambda - LoV))

Grid-relative winds (``uvRelativeToGrid = 1``, bit 5 of the resolution-and-component flags)
have u along the grid's x axis and v along its y axis. At longitude lambda the grid's +y axis
points ``alpha = n (lambda - LoV)`` clockwise of true north (east of LoV the meridians lean
toward the pole above the centre). Earth-relative winds are therefore::

    u_east  =  cos(alpha) u_grid + sin(alpha) v_grid
    v_north = -sin(alpha) u_grid + cos(alpha) v_grid

(the inverse, :func:`earth_to_grid`, rotates by -alpha). On LoV alpha = 0: nothing changes.

Resampling: every point of the target regular grid is projected with the forward formulas to
fractional grid indices; values are bilinear between the four surrounding grid points and NaN
where the point lies outside the projected domain. One vectorised gather for all levels/times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Regular-grid steps (deg) the resampler chooses from (the one nearest the native spacing).
NICE_STEPS_DEG = (0.05, 0.1, 0.125, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
METRES_PER_DEG = 111_195.0


@dataclass(frozen=True, slots=True)
class LambertGrid:
    """A Lambert conformal grid as GRIB2 describes it (angles in degrees, lengths in metres)."""

    nx: int
    ny: int
    lat1_deg: float  # first grid point
    lon1_deg: float
    lov_deg: float  # orientation: the meridian parallel to the grid's y axis
    lad_deg: float  # latitude where Dx, Dy are specified
    latin1_deg: float
    latin2_deg: float
    dx_m: float
    dy_m: float
    radius_m: float = 6_371_229.0
    i_scans_negatively: bool = False
    j_scans_positively: bool = True

    @property
    def cone(self) -> float:
        p1, p2 = np.radians(self.latin1_deg), np.radians(self.latin2_deg)
        if abs(self.latin1_deg - self.latin2_deg) < 1e-9:
            return float(np.sin(p1))
        num = np.log(np.cos(p1) / np.cos(p2))
        den = np.log(np.tan(np.pi / 4 + p2 / 2) / np.tan(np.pi / 4 + p1 / 2))
        return float(num / den)

    def project(self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Projected (x, y) in metres of geodetic points (spherical Earth)."""
        n = self.cone
        p1 = np.radians(self.latin1_deg)
        f = np.cos(p1) * np.tan(np.pi / 4 + p1 / 2) ** n / n
        lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
        dlon = np.radians(_wrap180(np.asarray(lon_deg, dtype=np.float64) - self.lov_deg))
        rho = self.radius_m * f / np.tan(np.pi / 4 + lat / 2) ** n
        rho0 = self.radius_m * f / np.tan(np.pi / 4 + np.radians(self.lad_deg) / 2) ** n
        theta = n * dlon
        return rho * np.sin(theta), rho0 - rho * np.cos(theta)

    def fractional_index(
        self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """(i, j) fractional column/row indices of points (row 0 = first grid point's row)."""
        x, y = self.project(lat_deg, lon_deg)
        x1, y1 = self.project(self.lat1_deg, self.lon1_deg)
        i = (x - x1) / self.dx_m
        j = (y - y1) / self.dy_m
        if self.i_scans_negatively:
            i = -i
        if not self.j_scans_positively:
            j = -j
        return i, j

    def rotation_rad(self, lon_deg: npt.ArrayLike) -> FloatArray:
        """Angle alpha (rad) from true north to the grid's +y axis, clockwise positive."""
        return np.asarray(
            self.cone * np.radians(_wrap180(np.asarray(lon_deg, dtype=np.float64) - self.lov_deg)),
            dtype=np.float64,
        )


def grid_to_earth(
    u_grid: npt.ArrayLike, v_grid: npt.ArrayLike, alpha_rad: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Rotate grid-relative (u, v) to earth-relative (east, north); see the module docstring."""
    u, v, a = (np.asarray(x, dtype=np.float64) for x in (u_grid, v_grid, alpha_rad))
    c, s = np.cos(a), np.sin(a)
    return c * u + s * v, -s * u + c * v


def earth_to_grid(
    u_east: npt.ArrayLike, v_north: npt.ArrayLike, alpha_rad: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """The inverse of :func:`grid_to_earth`."""
    u, v, a = (np.asarray(x, dtype=np.float64) for x in (u_east, v_north, alpha_rad))
    c, s = np.cos(a), np.sin(a)
    return c * u - s * v, s * u + c * v


def regular_axes(
    grid: LambertGrid, lat2d: FloatArray, lon2d: FloatArray, step_deg: float | None = None
) -> tuple[FloatArray, FloatArray]:
    """Latitudes and longitudes (-180..180, or 0..360 across the antimeridian) of a regular grid
    covering the projected domain, with a step near the native spacing unless given."""
    if step_deg is None:
        native = min(grid.dx_m, grid.dy_m) / METRES_PER_DEG
        step_deg = min(NICE_STEPS_DEG, key=lambda s: abs(np.log(s / native)))
    lon_signed = _wrap180(lon2d)
    lon_use = lon_signed if np.ptp(lon_signed) < 180.0 else np.mod(lon2d, 360.0)
    lat_lo = np.ceil(np.nanmin(lat2d) / step_deg) * step_deg
    lat_hi = np.floor(np.nanmax(lat2d) / step_deg) * step_deg
    lon_lo = np.ceil(np.nanmin(lon_use) / step_deg) * step_deg
    lon_hi = np.floor(np.nanmax(lon_use) / step_deg) * step_deg
    lat = lat_lo + step_deg * np.arange(round((lat_hi - lat_lo) / step_deg) + 1)
    lon = lon_lo + step_deg * np.arange(round((lon_hi - lon_lo) / step_deg) + 1)
    return lat, lon


def resample(grid: LambertGrid, data: FloatArray, lat_deg: FloatArray, lon_deg: FloatArray) -> FloatArray:
    """Bilinear resampling of ``data`` (..., ny, nx) on the Lambert grid onto the regular
    (lat_deg, lon_deg) grid: returns (..., len(lat), len(lon)), NaN outside the domain."""
    lat2, lon2 = np.meshgrid(lat_deg, lon_deg, indexing="ij")
    fi, fj = grid.fractional_index(lat2.ravel(), lon2.ravel())
    inside = (fi >= 0) & (fi <= grid.nx - 1) & (fj >= 0) & (fj <= grid.ny - 1)
    i0 = np.clip(np.floor(fi).astype(np.intp), 0, grid.nx - 2)
    j0 = np.clip(np.floor(fj).astype(np.intp), 0, grid.ny - 2)
    wi = np.clip(fi - i0, 0.0, 1.0)
    wj = np.clip(fj - j0, 0.0, 1.0)
    lead = data.shape[:-2]
    flat = data.reshape(-1, grid.ny, grid.nx)
    out = (
        flat[:, j0, i0] * ((1 - wi) * (1 - wj))
        + flat[:, j0, i0 + 1] * (wi * (1 - wj))
        + flat[:, j0 + 1, i0] * ((1 - wi) * wj)
        + flat[:, j0 + 1, i0 + 1] * (wi * wj)
    )
    out[:, ~inside] = np.nan
    return out.reshape(*lead, lat_deg.shape[0], lon_deg.shape[0])


def _wrap180(x: FloatArray) -> FloatArray:
    return np.asarray(np.mod(x + 180.0, 360.0) - 180.0, dtype=np.float64)


def largest_valid_rectangle(valid: npt.NDArray[np.bool_]) -> tuple[slice, slice]:
    """(row slice, column slice) of the largest all-True axis-aligned rectangle of ``valid``.

    The histogram-stack method, O(ny * nx); run once per file at load time (not a hot path).
    """
    ny, nx = valid.shape
    heights = np.zeros(nx, dtype=np.int64)
    best = (0, 0, 0, 0, 0)  # area, top row, bottom row, left column, right column
    for y in range(ny):
        heights = np.where(valid[y], heights + 1, 0)
        stack: list[tuple[int, int]] = []
        for x in range(nx + 1):
            h = int(heights[x]) if x < nx else 0
            start = x
            while stack and stack[-1][1] >= h:
                s, sh = stack.pop()
                if sh * (x - s) > best[0]:
                    best = (sh * (x - s), y - sh + 1, y, s, x - 1)
                start = s
            stack.append((start, h))
    _, y0, y1, x0, x1 = best
    return slice(y0, y1 + 1), slice(x0, x1 + 1)
