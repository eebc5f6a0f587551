"""Cones (the regions holding 50% / 90% of members at each lead time) and probability maps.

For each output time the members still in the field are projected onto the tangent plane at
their spherical mean (azimuthal equidistant: bearing and great-circle distance from the centre,
so poles and the antimeridian need no special case). Their 2x2 covariance C gives Mahalanobis
distances d² = (x - x̄)ᵀ C⁻¹ (x - x̄); the region for probability p is the ellipse d² ≤ q_p, with
q_p the empirical p-quantile of the members' d² (so it holds exactly the fraction p of the
members, whatever their distribution's shape). Everything is vectorised over times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.geo import EARTH_RADIUS_M, destination
from stratowatch.prediction.integrate import Prediction
from stratowatch.weather.grid import FloatArray

_MIN_VAR_M2 = 1.0


@dataclass(frozen=True, slots=True)
class Cone:
    """Ellipses holding ``probability`` of the members at each of ``time_s``.

    ``lat_deg``/``lon_deg`` (n_times, n_vertices + 1) are closed counter-clockwise rings
    (longitudes continuous around the centre, so a ring may cross ±180). The projection
    parameters let :meth:`contains` test any point against the same ellipse.
    """

    probability: float
    time_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    centre_lat_deg: FloatArray
    centre_lon_deg: FloatArray
    mean_xy_m: FloatArray
    inverse_covariance: FloatArray
    threshold: FloatArray
    members: npt.NDArray[np.int64]

    def contains(self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether points lie inside; the last axis of ``lat_deg``/``lon_deg`` is this cone's
        times (e.g. (members, n_times) paths, or one truth point per time)."""
        x, y = _project(
            self.centre_lat_deg, self.centre_lon_deg, np.asarray(lat_deg, float), np.asarray(lon_deg, float)
        )
        d = np.stack([x, y], axis=-1) - self.mean_xy_m
        d2 = np.einsum("...i,...ij,...j->...", d, self.inverse_covariance, d)
        return np.asarray(d2 <= self.threshold)

    def semi_axes_m(self) -> tuple[FloatArray, FloatArray]:
        """Major and minor semi-axes (m) of each ellipse."""
        vals = np.linalg.eigvalsh(np.linalg.inv(self.inverse_covariance))
        return np.sqrt(vals[:, 1] * self.threshold), np.sqrt(vals[:, 0] * self.threshold)


def _project(
    lat0: FloatArray, lon0: FloatArray, lat: FloatArray, lon: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Azimuthal-equidistant (x east, y north) metres of points about centres (broadcast)."""
    p0, p = np.radians(lat0), np.radians(lat)
    dl = np.radians(lon - lon0)
    cos_c = np.clip(np.sin(p0) * np.sin(p) + np.cos(p0) * np.cos(p) * np.cos(dl), -1.0, 1.0)
    c = np.arccos(cos_c)
    az = np.arctan2(np.sin(dl) * np.cos(p), np.cos(p0) * np.sin(p) - np.sin(p0) * np.cos(p) * np.cos(dl))
    r = EARTH_RADIUS_M * c
    return r * np.sin(az), r * np.cos(az)


def _centres(lat: FloatArray, lon: FloatArray, ok: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Spherical mean (lat, lon) per column over the rows where ok (members x times)."""
    la, lo = np.radians(np.where(ok, lat, 0.0)), np.radians(np.where(ok, lon, 0.0))
    w = ok.astype(np.float64)
    x = (w * np.cos(la) * np.cos(lo)).sum(axis=0)
    y = (w * np.cos(la) * np.sin(lo)).sum(axis=0)
    z = (w * np.sin(la)).sum(axis=0)
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def cones(
    prediction: Prediction,
    levels: tuple[float, ...] = (0.5, 0.9),
    n_vertices: int = 48,
    time_index: npt.ArrayLike | None = None,
) -> list[Cone]:
    """One :class:`Cone` per probability level over the chosen output times (default all)."""
    idx = np.arange(len(prediction.time_s)) if time_index is None else np.atleast_1d(np.asarray(time_index))
    lat = prediction.lat_deg[:, idx]
    lon = prediction.lon_deg[:, idx]
    ok = np.isfinite(lat) & np.isfinite(lon)
    count = ok.sum(axis=0)
    clat, clon = _centres(lat, lon, ok)
    x, y = _project(clat[None, :], clon[None, :], np.where(ok, lat, clat), np.where(ok, lon, clon))
    w = ok / np.maximum(count, 1)
    mx, my = (w * x).sum(axis=0), (w * y).sum(axis=0)
    dx, dy = np.where(ok, x - mx, 0.0), np.where(ok, y - my, 0.0)
    denom = np.maximum(count - 1, 1)
    cov = np.empty((len(idx), 2, 2))
    cov[:, 0, 0] = (dx * dx).sum(axis=0) / denom + _MIN_VAR_M2
    cov[:, 1, 1] = (dy * dy).sum(axis=0) / denom + _MIN_VAR_M2
    cov[:, 0, 1] = cov[:, 1, 0] = (dx * dy).sum(axis=0) / denom
    inv = np.asarray(np.linalg.inv(cov), dtype=np.float64)
    d2 = inv[None, :, 0, 0] * dx * dx + 2.0 * inv[None, :, 0, 1] * dx * dy + inv[None, :, 1, 1] * dy * dy
    d2 = np.where(ok, d2, np.nan)
    vals, vecs = np.linalg.eigh(cov)
    flip = np.linalg.det(vecs) < 0  # keep a rotation (not a reflection): counter-clockwise rings
    vecs[flip, :, 1] *= -1.0
    theta = np.linspace(0.0, 2.0 * np.pi, n_vertices + 1)
    circle = np.stack([np.cos(theta), np.sin(theta)])  # (2, nv+1), counter-clockwise
    out = []
    for p in levels:
        if not 0.0 < p < 1.0:
            raise ValueError(f"cone probability must be in (0, 1), got {p}")
        with np.errstate(all="ignore"):
            q = np.nanquantile(d2, p, axis=0, method="higher") if ok.any() else np.full(len(idx), np.nan)
        q = np.where(count > 0, q, np.nan)
        axes = vecs * np.sqrt(vals * q[:, None])[:, None, :]  # (nt, 2, 2): columns scaled
        pts = np.einsum("tij,jv->tiv", axes, circle)  # (nt, 2, nv+1)
        ex = pts[:, 0, :] + mx[:, None]
        ny = pts[:, 1, :] + my[:, None]
        vlat, vlon = destination(
            clat[:, None], clon[:, None], np.degrees(np.arctan2(ex, ny)), np.hypot(ex, ny)
        )
        vlon = clon[:, None] + ((vlon - clon[:, None] + 180.0) % 360.0 - 180.0)
        out.append(
            Cone(
                probability=p,
                time_s=prediction.time_s[idx],
                lat_deg=vlat,
                lon_deg=vlon,
                centre_lat_deg=clat,
                centre_lon_deg=clon,
                mean_xy_m=np.stack([mx, my], axis=-1),
                inverse_covariance=inv,
                threshold=q,
                members=count.astype(np.int64),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ProbabilityMap:
    """Probability per lat/lon cell (rows: latitude bins, columns: longitude bins)."""

    lat_edges_deg: FloatArray
    lon_edges_deg: FloatArray
    probability: FloatArray
    description: str


def probability_map(
    prediction: Prediction, cell_deg: float = 0.25, time_index: int | None = None
) -> ProbabilityMap:
    """Fraction of members whose path passes through each cell (``time_index=None``), or
    the distribution of member positions at one output time."""
    if time_index is None:
        lat, lon = prediction.lat_deg, prediction.lon_deg
        what = "probability that the path passes through the cell"
    else:
        lat, lon = prediction.lat_deg[:, [time_index]], prediction.lon_deg[:, [time_index]]
        what = f"probability of being in the cell at time_s={prediction.time_s[time_index]:.0f}"
    ok = np.isfinite(lat) & np.isfinite(lon)
    member = np.broadcast_to(np.arange(prediction.members)[:, None], lat.shape)[ok]
    la, lo = lat[ok], lon[ok]
    ref = float(np.nanmedian(prediction.lon_deg[:, 0]))
    lo = ref + ((lo - ref + 180.0) % 360.0 - 180.0)
    lat0 = np.floor(la.min() / cell_deg) * cell_deg if la.size else 0.0
    lon0 = np.floor(lo.min() / cell_deg) * cell_deg if lo.size else 0.0
    iy = ((la - lat0) / cell_deg).astype(np.int64)
    ix = ((lo - lon0) / cell_deg).astype(np.int64)
    ny = int(iy.max()) + 1 if iy.size else 1
    nx = int(ix.max()) + 1 if ix.size else 1
    cell = iy * nx + ix
    key = np.unique(member.astype(np.int64) * (ny * nx) + cell)
    counts = np.bincount(key % (ny * nx), minlength=ny * nx)
    return ProbabilityMap(
        lat_edges_deg=np.asarray(lat0 + cell_deg * np.arange(ny + 1), dtype=np.float64),
        lon_edges_deg=np.asarray(lon0 + cell_deg * np.arange(nx + 1), dtype=np.float64),
        probability=counts.reshape(ny, nx) / prediction.members,
        description=what,
    )
