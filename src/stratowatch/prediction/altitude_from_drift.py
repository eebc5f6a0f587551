"""Altitude from drift: at which altitudes does the wind match an object's ground velocity?

A free balloon moves with the wind, so for a track whose altitude is unknown (visual sightings,
a 2-D radar) the observed ground velocity v_obs picks out the levels where the wind w(h) agrees.
With observation error σ_v and wind-field error σ_w per component, each observation i gives

    log L_i(h) = -|v_obs,i - w(t_i, φ_i, λ_i, h)|² / (2 (σ_v² + σ_w²))

and the likelihood of altitude h is exp(Σ_i log L_i(h)), normalised over the candidate
altitudes (a discrete distribution, often with several peaks where winds repeat with height).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.geo import EARTH_RADIUS_M
from stratowatch.weather.grid import FloatArray, WindGrid
from stratowatch.weather.interp import pack, wind_at


@dataclass(frozen=True, slots=True)
class AltitudeLikelihood:
    """Candidate altitudes with normalised likelihoods and the winds they were scored against."""

    alt_m: FloatArray
    likelihood: FloatArray
    rms_residual_mps: FloatArray
    wind_east_mps: FloatArray
    wind_north_mps: FloatArray

    @property
    def best_alt_m(self) -> float:
        return float(self.alt_m[int(np.argmax(self.likelihood))])

    def interval(self, probability: float = 0.9) -> tuple[float, float]:
        """Smallest and largest altitude of the highest-likelihood levels holding ``probability``."""
        order = np.argsort(-self.likelihood)
        keep = order[: int(np.searchsorted(np.cumsum(self.likelihood[order]), probability) + 1)]
        return float(self.alt_m[keep].min()), float(self.alt_m[keep].max())

    def sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        """Altitudes drawn from the distribution, spread uniformly within each level's bin."""
        idx = rng.choice(len(self.alt_m), size=n, p=self.likelihood)
        step = float(np.median(np.diff(self.alt_m))) if len(self.alt_m) > 1 else 0.0
        return np.asarray(self.alt_m[idx] + rng.uniform(-0.5, 0.5, n) * step, dtype=np.float64)


def ground_velocity(
    time_s: npt.ArrayLike, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Velocities (east, north m/s) between consecutive sightings, at the segment midpoints.

    Returns (time_s, lat_deg, lon_deg, v_east, v_north) of the n-1 midpoints.
    """
    t = np.asarray(time_s, dtype=np.float64)
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon = np.asarray(lon_deg, dtype=np.float64)
    if t.size < 2:
        raise ValueError("need at least two timed positions to measure a drift velocity")
    dt = np.diff(t)
    if np.any(dt <= 0):
        raise ValueError("sighting times must be strictly ascending")
    dlon = (np.diff(lon) + 180.0) % 360.0 - 180.0
    mid_lat = lat[:-1] + 0.5 * np.diff(lat)
    ve = np.radians(dlon) * EARTH_RADIUS_M * np.cos(np.radians(mid_lat)) / dt
    vn = np.radians(np.diff(lat)) * EARTH_RADIUS_M / dt
    mid_lon = (lon[:-1] + 0.5 * dlon + 180.0) % 360.0 - 180.0
    return t[:-1] + 0.5 * dt, mid_lat, mid_lon, ve, vn


def altitude_from_drift(
    grid: WindGrid,
    time_s: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    velocity_east_mps: npt.ArrayLike,
    velocity_north_mps: npt.ArrayLike,
    *,
    velocity_sigma_mps: float = 2.0,
    wind_sigma_mps: float = 2.5,
    alt_m: npt.ArrayLike | None = None,
) -> AltitudeLikelihood:
    """Likelihood of each candidate altitude given one or more observed ground velocities.

    Candidate altitudes default to every 250 m from the field's lowest to its highest common
    level height. Points outside the field raise :class:`WindDomainError`.
    """
    t, lat, lon, ve, vn = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in
                           (time_s, lat_deg, lon_deg, velocity_east_mps, velocity_north_mps))  # fmt: skip
    t, lat, lon, ve, vn = np.broadcast_arrays(t, lat, lon, ve, vn)
    ok = np.isfinite(ve) & np.isfinite(vn)
    if not ok.any():
        raise ValueError("no finite ground velocity to match against the wind")
    t, lat, lon, ve, vn = t[ok], lat[ok], lon[ok], ve[ok], vn[ok]
    if alt_m is None:
        heights = pack(grid).columns[..., 0]
        low = max(float(heights[..., 0].max()), 0.0)
        high = float(heights[..., -1].min())
        alts = np.arange(np.ceil(low / 250.0) * 250.0, high + 1.0, 250.0)
    else:
        alts = np.atleast_1d(np.asarray(alt_m, dtype=np.float64))
    if alts.size == 0:
        raise ValueError("no candidate altitudes")
    u, v = wind_at(grid, t[:, None], lat[:, None], lon[:, None], alts[None, :], policy="raise")
    sq = (ve[:, None] - u) ** 2 + (vn[:, None] - v) ** 2
    var = velocity_sigma_mps**2 + wind_sigma_mps**2
    loglik = -0.5 * sq.sum(axis=0) / var
    lik = np.exp(loglik - loglik.max())
    return AltitudeLikelihood(
        alt_m=alts,
        likelihood=lik / lik.sum(),
        rms_residual_mps=np.sqrt(sq.mean(axis=0)),
        wind_east_mps=u,
        wind_north_mps=v,
    )
