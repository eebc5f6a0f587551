"""Trajectory integration on the sphere against flows with analytic paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from stratowatch.geo import haversine_m
from stratowatch.prediction import FlightProfile, WindErrorModel, integrate
from stratowatch.prediction.integrate import RADIUS_M
from stratowatch.prediction.profiles import density_ratio, pressure_hpa
from stratowatch.weather.grid import WindGrid

HEIGHTS_M = np.array([0.0, 5000.0, 11000.0, 16000.0, 21000.0, 31000.0])
LEVELS_HPA = np.array([1000.0, 550.0, 230.0, 100.0, 45.0, 10.0])


def grid_from(fn, res_deg: float = 1.0, times=(0.0,), lat=None, lon=None, global_lon=True) -> WindGrid:
    t = np.asarray(times, float)
    lat = np.arange(-90.0, 90.0 + 1e-9, res_deg) if lat is None else lat
    lon = np.arange(0.0, 360.0 - 1e-9, res_deg) if lon is None else lon
    T, _, Y, X = np.meshgrid(t, LEVELS_HPA, lat, lon, indexing="ij")
    H = np.broadcast_to(HEIGHTS_M[None, :, None, None], T.shape).copy()
    u, v = fn(T, Y, X, H)
    return WindGrid(t, LEVELS_HPA.copy(), lat, lon, u, v, H, global_lon=global_lon, source="analytic-test")


def uniform(u0: float, v0: float = 0.0):
    return lambda T, Y, X, H: (np.full(T.shape, u0), np.full(T.shape, v0))


def test_constant_east_wind_follows_the_parallel() -> None:
    g = grid_from(uniform(10.0), res_deg=10.0)
    p = integrate(g, 0.0, 45.0, -170.0, 18000.0, 72.0)
    dlon = math.degrees(10.0 * 72 * 3600 / ((RADIUS_M + 18000.0) * math.cos(math.radians(45.0))))
    assert p.lat_deg[0, -1] == pytest.approx(45.0, abs=1e-9)
    assert p.lon_deg[0, -1] == pytest.approx(((-170.0 + dlon + 180.0) % 360.0) - 180.0, abs=1e-7)
    assert p.time_s[-1] == 72 * 3600 and len(p.time_s) == 72 * 6 + 1


def test_solid_body_rotation_about_the_polar_axis_crosses_the_antimeridian() -> None:
    omega = 2 * math.pi / (5 * 86400)  # one turn in 5 days

    def rot(T, Y, X, H):
        return omega * (RADIUS_M + H) * np.cos(np.radians(Y)), np.zeros(T.shape)

    g = grid_from(rot, res_deg=2.0)
    p = integrate(g, 0.0, [-60.0, 10.0, 70.0], 170.0, 12000.0, 24.0)
    expected = ((170.0 + 360.0 / 5 + 180.0) % 360.0) - 180.0  # 242 -> -118
    np.testing.assert_allclose(p.lon_deg[:, -1], expected, atol=0.02)
    np.testing.assert_allclose(p.lat_deg[:, -1], [-60.0, 10.0, 70.0], atol=1e-6)


def test_rotation_about_an_equatorial_axis_carries_members_over_the_pole() -> None:
    # rigid rotation about the x axis: p(t) = (0, cos wt, sin wt) from (0 N, 90 E), over the
    # North Pole and down the 90 W meridian; u = -w(R+h) sin(lat) cos(lon), v = w(R+h) sin(lon)
    omega = math.pi / (48 * 3600)

    def rot(T, Y, X, H):
        s = omega * (RADIUS_M + H)
        return -s * np.sin(np.radians(Y)) * np.cos(np.radians(X)), s * np.sin(np.radians(X))

    g = grid_from(rot, res_deg=0.5)
    p = integrate(g, 0.0, 0.0, 90.0, 20000.0, 48.0, output_every_s=3600.0)
    assert np.nanmax(p.lat_deg[0]) > 89.0  # it did go over the top
    assert haversine_m(p.lat_deg[0, -1], p.lon_deg[0, -1], 0.0, -90.0) < 20e3
    at_24h = int(np.searchsorted(p.time_s, 24 * 3600))
    assert p.lat_deg[0, at_24h] == pytest.approx(90.0, abs=0.2)


def test_backward_run_retraces_the_forward_run_in_a_changing_field() -> None:
    def wavy(T, Y, X, H):
        return (
            15.0 + 8.0 * np.sin(np.radians(3 * X) - T / 40000.0) * np.cos(np.radians(Y)),
            6.0 * np.cos(np.radians(2 * X + 20 * Y / 10) + T / 30000.0) * np.cos(np.radians(Y)),
        )

    g = grid_from(wavy, res_deg=1.0, times=np.arange(0.0, 49 * 3600.0, 6 * 3600.0))
    fwd = integrate(g, 0.0, 40.0, -100.0, 15000.0, 48.0)
    back = integrate(g, fwd.time_s[-1], fwd.lat_deg[0, -1], fwd.lon_deg[0, -1], 15000.0, 48.0, backward=True)
    assert back.time_s[-1] == 0.0
    assert haversine_m(back.lat_deg[0, -1], back.lon_deg[0, -1], 40.0, -100.0) < 5.0
    np.testing.assert_allclose(back.lat_deg[0, ::-1], fwd.lat_deg[0], atol=1e-3)


def test_rk4_converges_with_the_step() -> None:
    def shear(T, Y, X, H):
        return 20.0 * np.cos(np.radians(2 * Y)) + 5 * np.sin(np.radians(4 * X)), 7.0 * np.sin(
            np.radians(3 * X)
        )

    g = grid_from(shear, res_deg=1.0)
    fine = integrate(g, 0.0, 30.0, 10.0, 8000.0, 24.0, dt_s=30.0)
    coarse = integrate(g, 0.0, 30.0, 10.0, 8000.0, 24.0, dt_s=600.0)
    assert (
        haversine_m(fine.lat_deg[0, -1], fine.lon_deg[0, -1], coarse.lat_deg[0, -1], coarse.lon_deg[0, -1])
        < 100.0
    )


def test_ascent_burst_descent_matches_the_analytic_times_and_drift() -> None:
    g = grid_from(uniform(8.0, -3.0), res_deg=10.0)
    prof = FlightProfile(
        "ascent-burst-descent", ascent_rate_mps=5.0, burst_alt_m=30000.0, descent_rate_mps=6.0
    )
    p = integrate(g, 1000.0, 37.0, -122.0, 0.0, 6.0, profile=prof, dt_s=10.0, output_every_s=60.0)
    fall_s, _ = quad(lambda h: math.sqrt(density_ratio(h)) / 6.0, 0.0, 30000.0, limit=200)
    assert p.burst_time_s[0] == pytest.approx(1000.0 + 6000.0, abs=1e-6)
    assert p.status[0] == 1 and p.end_time_s[0] == pytest.approx(7000.0 + fall_s, abs=2.0)

    # ground distance: speed x time, each second scaled by R / (R + h) (the drift is at altitude)
    def shrink(h: float) -> float:
        return RADIUS_M / (RADIUS_M + h)

    up, _ = quad(lambda h: shrink(h) / 5.0, 0.0, 30000.0)
    down, _ = quad(lambda h: shrink(h) * math.sqrt(density_ratio(h)) / 6.0, 0.0, 30000.0, limit=200)
    dist = haversine_m(37.0, -122.0, p.lat_deg[0, -1], p.lon_deg[0, -1])
    assert dist == pytest.approx(math.hypot(8.0, 3.0) * (up + down), rel=2e-4)
    assert np.all(p.alt_m[0, -5:] == 0.0)  # stays on the ground after landing
    # the descent is faster high up where the air is thin
    # US 1976 table: 11.97 hPa at 30 km geometric = 29 859 m geopotential (the height used here)
    assert density_ratio(30000.0) < 0.02 and pressure_hpa(29859.0) == pytest.approx(11.97, abs=0.02)


def test_float_on_a_pressure_surface_follows_its_height() -> None:
    def tilt_heights(T, Y, X, H):
        return np.full(T.shape, 10.0), np.zeros(T.shape)

    g = grid_from(tilt_heights, res_deg=5.0)
    g.height_m[:] = g.height_m * (1.0 + 0.001 * g.lat_deg[None, None, :, None])  # heights rise northward
    p = integrate(
        g, 0.0, 40.0, 0.0, 0.0, 2.0, profile=FlightProfile("float-pressure", float_pressure_hpa=100.0)
    )
    assert p.alt_m[0, 0] == pytest.approx(16000.0 * 1.04, rel=1e-9)
    assert p.alt_m[0, -1] == pytest.approx(16000.0 * (1.0 + 0.001 * p.lat_deg[0, -1]), rel=1e-9)


def test_members_leaving_a_regional_field_stop_and_are_counted() -> None:
    lat = np.arange(20.0, 60.1, 1.0)
    lon = np.arange(230.0, 300.1, 1.0)
    g = grid_from(uniform(30.0, 0.0), lat=lat, lon=lon, global_lon=False)
    p = integrate(g, 0.0, [40.0, 40.0], [-100.0, -125.0], 10000.0, 48.0)
    assert list(p.status) == [2, 0]
    assert np.isnan(p.lat_deg[0, -1]) and np.isfinite(p.lat_deg[0, 6]) and np.isfinite(p.lat_deg[1, -1])
    t_exit = p.end_time_s[0]
    dist_to_edge = haversine_m(40.0, -100.0, 40.0, -60.0)
    assert t_exit == pytest.approx(dist_to_edge / 30.0, rel=0.02)
    assert any("left the wind field" in n for n in p.notes)


def test_wind_error_spreads_members_reproducibly_and_member_scale_zero_is_deterministic() -> None:
    g = grid_from(uniform(10.0), res_deg=10.0)
    err = WindErrorModel(sigma_mps=3.0, growth_mps_per_day=0.0, decorrelation_s=6 * 3600.0)
    n = 400
    scale = np.ones(n)
    scale[0] = 0.0
    a = integrate(g, 0.0, np.full(n, 0.0), 0.0, 10000.0, 48.0, wind_error=err, noise_scale=scale, seed=7)
    b = integrate(g, 0.0, np.full(n, 0.0), 0.0, 10000.0, 48.0, wind_error=err, noise_scale=scale, seed=7)
    np.testing.assert_array_equal(a.lat_deg, b.lat_deg)
    plain = integrate(g, 0.0, 0.0, 0.0, 10000.0, 48.0)
    np.testing.assert_allclose(a.lat_deg[0], plain.lat_deg[0])
    north_m = np.radians(a.lat_deg[1:]) * RADIUS_M
    sd = north_m.std(axis=0)
    assert np.all(np.diff(sd[6:]) > 0)  # spread grows with lead time
    # OU started at 0: Cov(du(t1), du(t2)) = s²(e^{-|t1-t2|/τ} - e^{-(t1+t2)/τ}); integrated twice:
    tau, s, T = 6 * 3600.0, 3.0, 48 * 3600.0
    decay = 1.0 - math.exp(-T / tau)
    var_exact = s**2 * (2 * tau * T - 2 * tau**2 * decay - tau**2 * decay**2)
    assert sd[-1] == pytest.approx(math.sqrt(var_exact), rel=0.15)


def test_bad_inputs_are_refused() -> None:
    g = grid_from(uniform(10.0), res_deg=10.0)
    with pytest.raises(ValueError, match="latitude"):
        integrate(g, 0.0, 95.0, 0.0, 1000.0, 1.0)
    with pytest.raises(ValueError, match="backward"):
        integrate(g, 0.0, 0.0, 0.0, 0.0, 1.0, profile=FlightProfile("ascent-burst-descent"), backward=True)
    with pytest.raises(ValueError, match="unknown flight profile"):
        FlightProfile("hover")  # type: ignore[arg-type]
