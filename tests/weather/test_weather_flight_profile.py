"""Wind profiles derived from timed flight tracks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stratowatch.geo import EARTH_RADIUS_M
from stratowatch.ingest.kml import Flight, read_flight
from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.flight_profile import cross_check, flight_wind_profile
from stratowatch.weather.heights import geometric_to_geopotential_m, isa_pressure_hpa

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRACKS = REPO_ROOT.parent / "shared" / "data" / "balloon_tracks"
needs_data = pytest.mark.skipif(not TRACKS.exists(), reason=f"shared flight data absent ({TRACKS})")


def synthetic_flight(wind: tuple[float, float, float, float]) -> Flight:
    """Ascent at 5 m/s, 20 s steps; (u, v) below 10 km = wind[:2], above = wind[2:]."""
    t = np.arange(0.0, 4000.0, 20.0)
    alt = 100.0 + 5.0 * t
    u = np.where(alt < 10000, wind[0], wind[2])
    v = np.where(alt < 10000, wind[1], wind[3])
    lat = np.empty_like(t)
    lon = np.empty_like(t)
    lat[0], lon[0] = 45.0, 10.0
    for i in range(1, t.size):  # exact inverse of the finite-difference formula
        lat[i] = lat[i - 1] + np.degrees(v[i - 1] * 20.0 / EARTH_RADIUS_M)
        mid = np.radians(0.5 * (lat[i] + lat[i - 1]))
        lon[i] = lon[i - 1] + np.degrees(u[i - 1] * 20.0 / (EARTH_RADIUS_M * np.cos(mid)))
    heading = np.degrees(np.arctan2(u, v))
    return Flight(
        "test", "T1", t + 1.7e9, lat, lon, alt, np.full_like(t, 5.0), np.hypot(u, v), heading, "synthetic"
    )


def test_recovers_a_known_wind() -> None:
    flight = synthetic_flight((12.0, -3.0, -4.0, 7.0))
    g = flight_wind_profile(flight, bin_m=1000.0)
    assert g.is_profile and g.time_s[0] == pytest.approx(1.7e9 + 0.5 * 3980.0)
    z = g.height_m[0, :, 0, 0]
    low, high = z < 9000, z > 11000
    np.testing.assert_allclose(g.u_mps[0, low, 0, 0], 12.0, atol=1e-6)
    np.testing.assert_allclose(g.v_mps[0, low, 0, 0], -3.0, atol=1e-6)
    np.testing.assert_allclose(g.u_mps[0, high, 0, 0], -4.0, atol=1e-6)
    np.testing.assert_allclose(g.v_mps[0, high, 0, 0], 7.0, atol=1e-6)
    # pressure from the standard atmosphere at the bins' geopotential heights
    np.testing.assert_allclose(g.pressure_hpa, isa_pressure_hpa(z))
    assert np.all(np.diff(g.pressure_hpa) < 0)
    assert float(np.nanmedian(cross_check(flight))) == pytest.approx(0.0, abs=1e-6)


def test_descent_is_not_used_and_too_short_is_an_error() -> None:
    f = synthetic_flight((10.0, 0.0, 10.0, 0.0))
    n = f.time_s.size
    # append a fast descent drifting the other way: must not change the profile
    down = Flight(
        f.name,
        f.serial,
        np.concatenate([f.time_s, f.time_s[-1] + 20.0 * np.arange(1, 50)]),
        np.concatenate([f.lat_deg, np.full(49, f.lat_deg[-1])]),
        np.concatenate([f.lon_deg, f.lon_deg[-1] - 0.01 * np.arange(1, 50)]),
        np.concatenate([f.alt_m, f.alt_m[-1] - 200.0 * np.arange(1, 50)]),
        *(np.full(n + 49, np.nan) for _ in range(3)),
        source="x",
    )
    np.testing.assert_allclose(flight_wind_profile(down).u_mps, flight_wind_profile(f).u_mps)
    short = Flight(
        "s",
        "",
        f.time_s[:2],
        f.lat_deg[:2],
        f.lon_deg[:2],
        f.alt_m[:2],
        *(np.full(2, np.nan) for _ in range(3)),
        source="short.kml",
    )
    with pytest.raises(WindFormatError, match=r"short\.kml: a flight needs at least 3"):
        flight_wind_profile(short)


@needs_data
def test_real_radiosonde_flights() -> None:
    for path in sorted(TRACKS.glob("*.kmz")):
        flight = read_flight(path)
        g = flight_wind_profile(flight)
        z_top = g.height_m[0, -1, 0, 0]
        assert geometric_to_geopotential_m(28000.0) < z_top < geometric_to_geopotential_m(33600.0)
        speed = np.hypot(g.u_mps[0, :, 0, 0], g.v_mps[0, :, 0, 0])
        assert speed.max() < 60.0 and speed.max() > 15.0  # a January jet over California
        # finite differences agree with the velocities the sonde reported
        checks = cross_check(flight)
        assert np.nanmedian(checks) < 3.0, path.name
