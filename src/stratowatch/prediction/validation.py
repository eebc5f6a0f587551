"""Checking ascent predictions against real flights, the way balloon launchers do.

:func:`check_ascent` predicts a flight's ascent (deterministic run, 10 s steps) from one of its
timed points with an ascent rate fitted to the points before (or, from the launch, to the
first ``fit_window_s``), bursting at the flight's own highest altitude, on a given wind field;
it then compares, at each observed altitude from there to burst, the predicted and the observed
positions (great-circle distance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stratowatch.geo import haversine_m
from stratowatch.ingest.kml import Flight
from stratowatch.prediction.integrate import integrate
from stratowatch.prediction.profiles import FlightProfile
from stratowatch.weather.grid import FloatArray, WindGrid


@dataclass(frozen=True, slots=True)
class AscentCheck:
    """Horizontal errors (m) at the flight's observed ascent altitudes from ``start_alt_m`` up."""

    alt_m: FloatArray
    error_m: FloatArray
    ascent_rate_mps: float
    start_alt_m: float
    travel_m: float

    @property
    def burst_error_m(self) -> float:
        return float(self.error_m[-1])

    @property
    def mean_error_m(self) -> float:
        return float(self.error_m.mean())


def fitted_ascent_rate(flight: Flight, start_index: int = 0, fit_window_s: float = 600.0) -> float:
    """m/s: slope over the first ``fit_window_s`` (from the launch) or mean rate up to start_index."""
    if start_index > 0:
        return float(
            (flight.alt_m[start_index] - flight.alt_m[0]) / (flight.time_s[start_index] - flight.time_s[0])
        )
    t = flight.time_s - flight.time_s[0]
    n = max(3, int(np.searchsorted(t, fit_window_s, side="right")))
    return float(np.polyfit(t[:n], flight.alt_m[:n], 1)[0])


def check_ascent(grid: WindGrid, flight: Flight, start_index: int = 0) -> AscentCheck:
    top = int(np.argmax(flight.alt_m))
    if not 0 <= start_index < top:
        raise ValueError(f"{flight.source}: start index {start_index} is not on the ascent (burst at {top})")
    rate = fitted_ascent_rate(flight, start_index)
    t0 = float(flight.time_s[start_index])
    hours = 1.5 * (flight.time_s[top] - t0) / 3600.0 + 0.1
    profile = FlightProfile(
        "ascent-burst-descent", ascent_rate_mps=rate, burst_alt_m=float(flight.alt_m[top])
    )
    p = integrate(
        grid, t0, flight.lat_deg[start_index], flight.lon_deg[start_index], flight.alt_m[start_index], hours,
        profile=profile, dt_s=10.0, output_every_s=10.0,
    )  # fmt: skip
    alt = p.alt_m[0]
    up = np.isfinite(alt) & (np.arange(alt.size) <= int(np.nanargmax(alt)))
    obs = slice(start_index, top + 1)
    lat = np.interp(flight.alt_m[obs], alt[up], p.lat_deg[0][up])
    lon_ref = p.lon_deg[0][up]
    lon_ref = lon_ref[0] + np.unwrap(np.radians(lon_ref - lon_ref[0]), discont=np.pi) * 180.0 / np.pi
    lon = np.interp(flight.alt_m[obs], alt[up], lon_ref)
    err = haversine_m(lat, lon, flight.lat_deg[obs], flight.lon_deg[obs])
    travel = haversine_m(
        flight.lat_deg[start_index], flight.lon_deg[start_index], flight.lat_deg[top], flight.lon_deg[top]
    )
    return AscentCheck(
        alt_m=np.asarray(flight.alt_m[obs], dtype=np.float64),
        error_m=np.asarray(err, dtype=np.float64),
        ascent_rate_mps=rate,
        start_alt_m=float(flight.alt_m[start_index]),
        travel_m=float(travel),
    )
