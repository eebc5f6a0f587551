"""Ensembles: members drawn from a track's state covariance, run with a wind-error model.

Member 0 is always the deterministic run (mean state, no wind error). The others draw

* position from the ENU position covariance (east/north/up metres², 3x3 or the top-left of a
  6x6 position+velocity covariance), applied as small offsets on the sphere;
* altitude, when it is unknown, from :func:`altitude_from_drift` (the levels whose wind matches
  the track's velocity) or, with no velocity either, uniformly over ``UNKNOWN_ALT_RANGE_M``;
* velocity (from the 6x6 covariance) and from it an initial wind offset, the drawn ground
  velocity minus the model wind at the member's position (capped at ``MAX_OFFSET_MPS``), which
  then relaxes as the OU wind-error process (see :class:`WindErrorModel`);
* ascent rate, burst altitude and descent rate from the profile's ``*_sigma`` fields.

Every draw is made for all members, and each member's wind error has its own seed
(:func:`~stratowatch.prediction.integrate.member_seeds`), so ``member_range=(a, b)`` runs members
a..b-1 of the ensemble exactly as the whole run would: an ensemble can be split across workers
(:mod:`stratowatch.prediction.executors`) without changing a single number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from stratowatch.geo import EARTH_RADIUS_M
from stratowatch.prediction.altitude_from_drift import altitude_from_drift
from stratowatch.prediction.integrate import Prediction, WindErrorModel, integrate, member_seeds
from stratowatch.prediction.profiles import FlightProfile
from stratowatch.weather.grid import FloatArray, WindGrid
from stratowatch.weather.interp import wind_at

UNKNOWN_ALT_RANGE_M = (8000.0, 30000.0)
MAX_OFFSET_MPS = 10.0


@dataclass(frozen=True, slots=True)
class TrackState:
    """Where a tracked object is: position, ground velocity (NaN when unknown), and time."""

    time_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float = float("nan")
    velocity_east_mps: float = float("nan")
    velocity_north_mps: float = float("nan")
    alt_known: bool = True

    @property
    def has_velocity(self) -> bool:
        return math.isfinite(self.velocity_east_mps) and math.isfinite(self.velocity_north_mps)


def _offsets_to_latlon(
    lat_deg: float, lon_deg: float, east_m: FloatArray, north_m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    lat = np.clip(lat_deg + np.degrees(north_m / EARTH_RADIUS_M), -89.999, 89.999)
    coslat = max(math.cos(math.radians(lat_deg)), 1e-6)
    lon = lon_deg + np.degrees(east_m / (EARTH_RADIUS_M * coslat))
    return lat, (lon + 180.0) % 360.0 - 180.0


def ensemble(
    grid: WindGrid,
    state: TrackState,
    hours: float,
    members: int,
    *,
    covariance: npt.ArrayLike | None = None,
    profile: FlightProfile | None = None,
    wind_error: WindErrorModel | None = None,
    seed: int = 0,
    dt_s: float = 60.0,
    output_every_s: float = 600.0,
    backward: bool = False,
    velocity_sigma_mps: float = 2.0,
    member_range: tuple[int, int] | None = None,
) -> Prediction:
    """Run ``members`` members (member 0 deterministic) from ``state``; see the module docstring.

    ``member_range=(a, b)`` returns only members a..b-1 (the same values as the full run's).
    """
    if members < 1:
        raise ValueError("members must be >= 1")
    first, stop = (0, members) if member_range is None else member_range
    if not 0 <= first < stop <= members:
        raise ValueError(f"member_range {member_range} is not within 0..{members}")
    profile = profile or FlightProfile()
    wind_error = wind_error if wind_error is not None else WindErrorModel()
    rng = np.random.default_rng(seed)
    cov = np.zeros((6, 6)) if covariance is None else np.asarray(covariance, dtype=np.float64)
    if cov.shape not in ((3, 3), (6, 6)):
        raise ValueError(f"covariance must be 3x3 or 6x6 (ENU), got {cov.shape}")
    if cov.shape == (3, 3):
        full = np.zeros((6, 6))
        full[:3, :3] = cov
        cov = full
    cov = 0.5 * (cov + cov.T)
    draws = rng.multivariate_normal(np.zeros(6), cov, size=members, method="eigh")
    draws[0] = 0.0
    lat, lon = _offsets_to_latlon(state.lat_deg, state.lon_deg, draws[:, 0], draws[:, 1])
    notes: list[str] = []
    alt_known = state.alt_known and math.isfinite(state.alt_m)
    if alt_known:
        alt = state.alt_m + draws[:, 2]
    elif state.has_velocity:
        like = altitude_from_drift(
            grid, state.time_s, state.lat_deg, state.lon_deg, state.velocity_east_mps,
            state.velocity_north_mps, velocity_sigma_mps=velocity_sigma_mps,
            wind_sigma_mps=wind_error.sigma_mps,
        )  # fmt: skip
        alt = like.sample(members, rng)
        alt[0] = like.best_alt_m
        lo, hi = like.interval(0.9)
        notes.append(
            f"altitude unknown: drawn from the drift match, best {like.best_alt_m:.0f} m, "
            f"90% in {lo:.0f}-{hi:.0f} m"
        )
    else:
        alt = rng.uniform(*UNKNOWN_ALT_RANGE_M, members)
        alt[0] = 0.5 * sum(UNKNOWN_ALT_RANGE_M)
        notes.append(f"altitude and velocity unknown: altitudes drawn uniformly in {UNKNOWN_ALT_RANGE_M} m")
    if profile.kind in ("float", "descent"):
        alt = np.maximum(alt, profile.ground_alt_m)
    offset_e = np.zeros(members)
    offset_n = np.zeros(members)
    if state.has_velocity and profile.kind in ("float", "float-pressure"):
        ve = state.velocity_east_mps + draws[:, 3]
        vn = state.velocity_north_mps + draws[:, 4]
        u, v = wind_at(grid, state.time_s, lat, lon, alt, policy="clamp")
        offset_e, offset_n = ve - u, vn - v
        mag = np.hypot(offset_e, offset_n)
        cap = np.minimum(1.0, MAX_OFFSET_MPS / np.maximum(mag, 1e-12))
        offset_e, offset_n = offset_e * cap, offset_n * cap
        offset_e[0] = offset_n[0] = 0.0
        if float(np.median(mag)) > MAX_OFFSET_MPS:
            notes.append(
                f"track velocity differs from the wind by {np.median(mag):.1f} m/s (median): is it drifting?"
            )

    def spread(mean: float, sigma: float, low: float) -> FloatArray:
        values = mean + sigma * rng.standard_normal(members)
        values[0] = mean
        return np.maximum(values, low)

    # each member's error scale: log-normal with unit mean square (heavier tails than one sigma)
    s = wind_error.scale_spread
    noise_scale = np.exp(s * rng.standard_normal(members) - s * s)
    noise_scale[0] = 0.0
    ascent = spread(profile.ascent_rate_mps, profile.ascent_rate_sigma_mps, 0.5)
    burst = spread(profile.burst_alt_m, profile.burst_alt_sigma_m, 1000.0)
    descent = spread(profile.descent_rate_mps, profile.descent_rate_sigma_mps, 0.5)
    run = slice(first, stop)
    pred = integrate(
        grid, state.time_s, lat[run], lon[run], alt[run], hours,
        profile=profile, dt_s=dt_s, output_every_s=output_every_s, backward=backward,
        wind_error=wind_error, wind_offset_east_mps=offset_e[run], wind_offset_north_mps=offset_n[run],
        noise_scale=noise_scale[run], ascent_rate_mps=ascent[run], burst_alt_m=burst[run],
        descent_rate_mps=descent[run], member_seed=member_seeds(seed, members)[run],
    )  # fmt: skip
    return replace(pred, notes=tuple(notes) + pred.notes)


def predict_track(
    track_state: TrackState,
    covariance: npt.ArrayLike | None,
    grid: WindGrid,
    hours: float,
    members: int,
    seed: int = 0,
    *,
    profile: FlightProfile | None = None,
    wind_error: WindErrorModel | None = None,
    backward: bool = False,
    member_range: tuple[int, int] | None = None,
) -> Prediction:
    """The live service's entry point: a drift ensemble for one track (float profile by default).

    ``member_range=(a, b)``: only members a..b-1, identical to the full run's (see the module
    docstring); :func:`stratowatch.prediction.executors.predict_tracks` splits with it.
    """
    return ensemble(
        grid, track_state, hours, members, covariance=covariance, profile=profile,
        wind_error=wind_error, seed=seed, backward=backward, member_range=member_range,
    )  # fmt: skip
