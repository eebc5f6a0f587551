"""Cone calibration on simulated flights: does the 90% cone hold the truth 90% of the time?

Each trial draws a random smooth wind-error field, adds it to the analytic forecast field
(:func:`stratowatch.weather.analytic.analytic_field`) to make the "true" atmosphere, flies a
balloon at constant altitude through the truth, and predicts it with an ensemble on the forecast
field alone (default :class:`WindErrorModel`, start position known to ``start_sigma_m``). At each
checked lead time it records whether the true position lies inside the 50% and 90% cones.

The error field per component is a sum of ``N_MODES`` travelling plane waves with random
wavelengths (1 500 - 6 000 km), directions, periods (1 - 4 days) and phases, scaled so its
root-mean-square is ``truth_sigma_mps + truth_growth_mps_per_day * lead_days``: a forecast error
that grows with lead time, correlated in space and time, unlike the ensemble's independent
per-member OU offsets (so agreement is not built in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.geo import EARTH_RADIUS_M, haversine_m
from stratowatch.prediction.cones import cones
from stratowatch.prediction.ensemble import TrackState, ensemble
from stratowatch.prediction.integrate import WindErrorModel, integrate
from stratowatch.weather.analytic import analytic_field
from stratowatch.weather.grid import FloatArray, WindGrid

N_MODES = 12


@dataclass(frozen=True, slots=True)
class Calibration:
    """Coverage of the truth by the 50% and 90% cones, per checked lead time and overall."""

    lead_h: FloatArray
    inside_50: npt.NDArray[np.bool_]  # (trials, leads)
    inside_90: npt.NDArray[np.bool_]
    median_error_km: FloatArray  # per lead: truth vs ensemble median distance

    @property
    def coverage_50(self) -> float:
        return float(self.inside_50.mean())

    @property
    def coverage_90(self) -> float:
        return float(self.inside_90.mean())


def perturbed(
    grid: WindGrid, rng: np.random.Generator, sigma_mps: float, growth_mps_per_day: float
) -> WindGrid:
    """``grid`` plus a random smooth error field (see the module docstring)."""
    t = (grid.time_s - grid.time_s[0])[:, None, None]
    lat = np.radians(grid.lat_deg)[None, :, None]
    lon = np.radians(grid.lon_deg)[None, None, :]
    out = []
    for _ in range(2):
        field = np.zeros((len(grid.time_s), len(grid.lat_deg), len(grid.lon_deg)))
        for _ in range(N_MODES):
            wavelength = rng.uniform(1.5e6, 6e6)
            direction = rng.uniform(0, 2 * np.pi)
            k = 2 * np.pi * EARTH_RADIUS_M / wavelength
            omega = 2 * np.pi / (rng.uniform(1.0, 4.0) * 86400.0)
            phase = (
                k * (np.cos(direction) * lat + np.sin(direction) * lon * np.cos(lat))
                - omega * t
                + rng.uniform(0, 2 * np.pi)
            )
            field += np.sin(phase)
        field *= np.sqrt(2.0 / N_MODES)  # unit root-mean-square
        field *= sigma_mps + growth_mps_per_day * t / 86400.0
        out.append(field[:, None, :, :] * np.sqrt(np.cos(lat))[:, None])  # tapered to 0 at the poles
    return WindGrid(
        time_s=grid.time_s,
        pressure_hpa=grid.pressure_hpa,
        lat_deg=grid.lat_deg,
        lon_deg=grid.lon_deg,
        u_mps=grid.u_mps + out[0],
        v_mps=grid.v_mps + out[1],
        height_m=grid.height_m,
        global_lon=grid.global_lon,
        source=grid.source + " + random error field",
    )


def calibrate(
    trials: int = 40,
    members: int = 300,
    hours: float = 72.0,
    seed: int = 0,
    lead_h: tuple[float, ...] = (12.0, 24.0, 36.0, 48.0, 60.0, 72.0),
    wind_error: WindErrorModel | None = None,
    truth_sigma_mps: float = 2.0,
    truth_growth_mps_per_day: float = 1.5,
    start_sigma_m: float = 2000.0,
) -> Calibration:
    rng = np.random.default_rng(seed)
    forecast = analytic_field(t0_s=0.0, hours=hours + 6.0, step_h=6.0)
    leads = np.asarray([h for h in lead_h if h <= hours], dtype=np.float64)
    in50 = np.zeros((trials, leads.size), dtype=bool)
    in90 = np.zeros((trials, leads.size), dtype=bool)
    errs = np.zeros((trials, leads.size))
    for i in range(trials):
        truth_grid = perturbed(forecast, rng, truth_sigma_mps, truth_growth_mps_per_day)
        lat0 = float(rng.uniform(25.0, 60.0) * rng.choice([-1.0, 1.0]))
        lon0 = float(rng.uniform(-180.0, 180.0))
        alt0 = float(rng.uniform(11000.0, 21000.0))
        e, n = rng.normal(0.0, start_sigma_m, 2)
        true_lat = lat0 + np.degrees(n / EARTH_RADIUS_M)
        true_lon = lon0 + np.degrees(e / (EARTH_RADIUS_M * np.cos(np.radians(lat0))))
        truth = integrate(truth_grid, 0.0, true_lat, true_lon, alt0, hours, output_every_s=3600.0)
        pred = ensemble(
            forecast,
            TrackState(0.0, lat0, lon0, alt0),
            hours,
            members,
            covariance=np.diag([start_sigma_m**2, start_sigma_m**2, 0.0]),
            wind_error=wind_error,
            seed=int(rng.integers(1 << 31)),
            output_every_s=3600.0,
        )
        idx = np.searchsorted(pred.lead_s, leads * 3600.0)
        c50, c90 = cones(pred, (0.5, 0.9), time_index=idx)
        tl, to = truth.lat_deg[0, idx], truth.lon_deg[0, idx]
        in50[i] = c50.contains(tl, to)
        in90[i] = c90.contains(tl, to)
        mlat, mlon, _ = pred.median_path()
        errs[i] = haversine_m(mlat[idx], mlon[idx], tl, to) / 1e3
    return Calibration(lead_h=leads, inside_50=in50, inside_90=in90, median_error_km=np.median(errs, axis=0))
