"""A wind profile from a timed flight track (a radiosonde, a free balloon on ascent).

A balloon drifts with the air, so its horizontal velocity while ascending *is* the wind at
its altitude (to within the sonde's pendulum motion and the balloon's lag, well under 1 m/s
for a radiosonde). Velocities come from finite differences of successive timed positions::

    east  = R cos(lat_mid) d(lon) / dt        north = R d(lat) / dt       (R = 6 371 008.8 m)

taken at the segment's mid altitude, then averaged per altitude bin of ``bin_m`` metres as
total displacement over total time (a time-weighted mean). Only the ascent (up to the highest
point) is used; the descent under a parachute is not. Bin altitudes (GPS, geometric) become
geopotential heights, and their pressure comes from the **standard atmosphere** (the flight
has no pressure sensor data here): that is the one assumption of this field. The profile's
single time is the middle of the ascent.

:func:`cross_check` compares the finite-difference velocities with the velocities the file
states (sonde2kml: horizontal speed and heading), as a check on both.
"""

from __future__ import annotations

import numpy as np

from stratowatch.geo import EARTH_RADIUS_M
from stratowatch.ingest.kml import Flight
from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.grid import FloatArray, WindGrid
from stratowatch.weather.heights import geometric_to_geopotential_m, isa_pressure_hpa
from stratowatch.weather.soundings import PROFILE_LAT_DEG, PROFILE_LON_DEG


def segment_velocities(flight: Flight) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(mid altitude m, dt s, east m/s, north m/s) of each ascent segment with dt > 0."""
    top = int(np.argmax(flight.alt_m))
    t = flight.time_s[: top + 1]
    lat = np.radians(flight.lat_deg[: top + 1])
    lon = np.radians(flight.lon_deg[: top + 1])
    alt = flight.alt_m[: top + 1]
    dt = np.diff(t)
    dlon = np.mod(np.diff(lon) + np.pi, 2 * np.pi) - np.pi
    east = EARTH_RADIUS_M * np.cos(0.5 * (lat[1:] + lat[:-1])) * dlon
    north = EARTH_RADIUS_M * np.diff(lat)
    ok = dt > 0
    mid = 0.5 * (alt[1:] + alt[:-1])
    return mid[ok], dt[ok], east[ok] / dt[ok], north[ok] / dt[ok]


def cross_check(flight: Flight) -> FloatArray:
    """Per ascent segment: |finite-difference velocity - mean stated velocity| (m/s), NaN where
    the file states no velocity. Stated heading is the direction of travel."""
    top = int(np.argmax(flight.alt_m))
    sl = slice(0, top + 1)
    hdg = np.radians(flight.stated_heading_deg[sl])
    spd = flight.stated_horizontal_mps[sl]
    se, sn = spd * np.sin(hdg), spd * np.cos(hdg)
    dt = np.diff(flight.time_s[sl])
    ok = dt > 0
    _, _, e, n = segment_velocities(flight)
    mean_e = (0.5 * (se[1:] + se[:-1]))[ok]
    mean_n = (0.5 * (sn[1:] + sn[:-1]))[ok]
    return np.asarray(np.hypot(e - mean_e, n - mean_n), dtype=np.float64)


def flight_wind_profile(flight: Flight, bin_m: float = 500.0) -> WindGrid:
    """A profile :class:`WindGrid` (ny = nx = 2, global) from the ascent of ``flight``."""
    if len(flight) < 3:
        raise WindFormatError(f"{flight.source}: a flight needs at least 3 timed points for winds")
    mid, dt, east, north = segment_velocities(flight)
    if mid.shape[0] < 2:
        raise WindFormatError(f"{flight.source}: fewer than 2 ascent segments with time steps")
    b = np.floor(mid / bin_m).astype(np.int64)
    bins, inverse = np.unique(b, return_inverse=True)
    total_t = np.bincount(inverse, weights=dt)
    u = np.bincount(inverse, weights=east * dt) / total_t
    v = np.bincount(inverse, weights=north * dt) / total_t
    alt = np.bincount(inverse, weights=mid * dt) / total_t
    if bins.shape[0] < 2:
        raise WindFormatError(f"{flight.source}: the ascent spans fewer than 2 altitude bins")
    height = geometric_to_geopotential_m(alt)
    pressure = isa_pressure_hpa(height)
    top = int(np.argmax(flight.alt_m))
    t_mid = 0.5 * (flight.time_s[0] + flight.time_s[top])
    shape = (1, bins.shape[0], 2, 2)

    def spread(a: FloatArray) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(a[None, :, None, None], shape))

    checks = cross_check(flight)
    notes = [
        f"flight {flight.serial or flight.name}: {mid.shape[0]} ascent segments in "
        f"{bins.shape[0]} bins of {bin_m:g} m, {alt[0]:.0f}..{alt[-1]:.0f} m",
        "pressure of each level from the standard atmosphere (the flight carries no pressure)",
    ]
    if np.isfinite(checks).any():
        notes.append(
            f"finite-difference vs stated velocity: median difference {float(np.nanmedian(checks)):.1f} m/s"
        )
    return WindGrid(
        time_s=np.array([t_mid]),
        pressure_hpa=np.asarray(pressure, dtype=np.float64),
        lat_deg=PROFILE_LAT_DEG.copy(),
        lon_deg=PROFILE_LON_DEG.copy(),
        u_mps=spread(u),
        v_mps=spread(v),
        height_m=spread(height),
        global_lon=True,
        source=flight.source,
        notes=notes,
    ).validate()
