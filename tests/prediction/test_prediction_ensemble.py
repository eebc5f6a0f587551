"""Ensembles from a track state, altitude from drift, back-trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratowatch.geo import haversine_m
from stratowatch.prediction import (
    FlightProfile,
    TrackState,
    WindErrorModel,
    altitude_from_drift,
    back_trajectory,
    cones,
    ground_velocity,
    predict_track,
)
from stratowatch.prediction.integrate import RADIUS_M
from stratowatch.weather.errors import WindDomainError
from stratowatch.weather.grid import WindGrid

HEIGHTS_M = np.array([0.0, 5000.0, 10000.0, 15000.0, 20000.0, 25000.0, 30000.0])
LEVELS_HPA = np.array([1000.0, 550.0, 265.0, 120.0, 55.0, 25.0, 12.0])


def profile_grid(u_of_h, v_of_h=lambda h: 0.0 * h, lat=None, lon=None, global_lon=True) -> WindGrid:
    lat = np.array([-90.0, 90.0]) if lat is None else lat
    lon = np.array([0.0, 180.0]) if lon is None else lon
    shape = (1, len(HEIGHTS_M), len(lat), len(lon))
    h = np.broadcast_to(HEIGHTS_M[None, :, None, None], shape).copy()
    return WindGrid(
        np.array([0.0]),
        LEVELS_HPA.copy(),
        lat,
        lon,
        u_of_h(h),
        v_of_h(h),
        h,
        global_lon=global_lon,
        source="profile",
    )


def test_altitude_from_drift_finds_the_level_where_the_wind_matches() -> None:
    g = profile_grid(lambda h: h / 1000.0)  # u = 1 m/s per km
    like = altitude_from_drift(g, 0.0, 40.0, -100.0, 12.0, 0.0, velocity_sigma_mps=1.0, wind_sigma_mps=0.5)
    assert like.best_alt_m == pytest.approx(12000.0, abs=250.0)
    lo, hi = like.interval(0.9)
    assert lo < 12000.0 < hi and hi - lo < 5000.0
    assert like.likelihood.sum() == pytest.approx(1.0)
    # a wind that is the same at two heights gives two peaks
    g2 = profile_grid(lambda h: 20.0 * np.sin(np.pi * h / 30000.0))
    like2 = altitude_from_drift(g2, 0.0, 40.0, -100.0, 10.0, 0.0, velocity_sigma_mps=0.5, wind_sigma_mps=0.5)
    top = like2.alt_m[np.argsort(-like2.likelihood)[:2]]
    expected = [30000.0 / np.pi * np.arcsin(0.5), 30000.0 - 30000.0 / np.pi * np.arcsin(0.5)]
    assert sorted(top) == pytest.approx(expected, abs=300.0)
    # several sightings sharpen it; direction matters (an east wind cannot explain a west drift)
    sharp = altitude_from_drift(
        g, [0, 600, 1200], 40.0, -100.0, 12.0, 0.0, velocity_sigma_mps=1.0, wind_sigma_mps=0.5
    )
    assert sharp.interval(0.9)[1] - sharp.interval(0.9)[0] < hi - lo
    west = altitude_from_drift(g, 0.0, 40.0, -100.0, -12.0, 0.0)
    assert west.best_alt_m == pytest.approx(HEIGHTS_M[0] + 0.0, abs=1.0)
    assert west.rms_residual_mps.min() >= 12.0


def test_ground_velocity_from_sightings() -> None:
    lat = np.array([40.0, 40.0, 40.0 + math.degrees(3000.0 / RADIUS_M)])
    lon = np.array(
        [-100.0, -100.0 + math.degrees(6000.0 / (RADIUS_M * math.cos(math.radians(40.0)))), -100.0]
    )
    t, mlat, mlon, ve, vn = ground_velocity([0.0, 600.0, 900.0], lat, lon)
    assert mlat[0] == 40.0 and mlon[1] == pytest.approx(lon[1:].mean())
    assert t.tolist() == [300.0, 750.0]
    assert ve[0] == pytest.approx(10.0, rel=1e-3) and vn[0] == pytest.approx(0.0, abs=1e-9)
    assert vn[1] == pytest.approx(10.0, rel=1e-3) and ve[1] == pytest.approx(-20.0, rel=1e-2)
    with pytest.raises(ValueError, match="ascending"):
        ground_velocity([0.0, 0.0], [1.0, 2.0], [1.0, 2.0])


def test_predict_track_member_zero_is_the_deterministic_run_and_spread_follows_the_covariance() -> None:
    g = profile_grid(lambda h: 10.0 + 0.0 * h)
    state = TrackState(0.0, 45.0, -100.0, 18000.0)
    cov = np.diag([5000.0**2, 2000.0**2, 100.0**2])
    pred = predict_track(state, cov, g, hours=1.0, members=4000, seed=3, wind_error=WindErrorModel(0.0, 0.0))
    assert pred.lat_deg[0, 0] == 45.0 and pred.lon_deg[0, 0] == -100.0 and pred.alt_m[0, 0] == 18000.0
    north = np.radians(pred.lat_deg[1:, 0] - 45.0) * RADIUS_M
    east = np.radians(pred.lon_deg[1:, 0] + 100.0) * RADIUS_M * math.cos(math.radians(45.0))
    assert north.std() == pytest.approx(2000.0, rel=0.05)
    assert east.std() == pytest.approx(5000.0, rel=0.05)
    assert pred.alt_m[1:, 0].std() == pytest.approx(100.0, rel=0.05)
    again = predict_track(state, cov, g, hours=1.0, members=4000, seed=3, wind_error=WindErrorModel(0.0, 0.0))
    np.testing.assert_array_equal(pred.lat_deg, again.lat_deg)
    with pytest.raises(ValueError, match="3x3 or 6x6"):
        predict_track(state, np.eye(2), g, 1.0, 10)


def test_unknown_altitude_is_drawn_from_the_drift_match() -> None:
    g = profile_grid(lambda h: h / 1000.0)
    state = TrackState(0.0, 45.0, -100.0, float("nan"), 15.0, 0.0, alt_known=False)
    pred = predict_track(state, np.zeros((6, 6)), g, hours=2.0, members=2000, seed=1)
    alts = pred.alt_m[:, 0]
    assert np.median(alts) == pytest.approx(15000.0, abs=1500.0)
    assert np.quantile(alts, 0.95) - np.quantile(alts, 0.05) > 2000.0  # a distribution, not a guess
    assert any("altitude unknown" in n for n in pred.notes)


def test_velocity_offset_nudges_members_toward_the_observed_drift() -> None:
    g = profile_grid(lambda h: 10.0 + 0.0 * h)
    err = WindErrorModel(sigma_mps=0.0, growth_mps_per_day=0.0, decorrelation_s=1e9)  # offset never decays
    state = TrackState(0.0, 0.0, 0.0, 18000.0, 14.0, 0.0)
    pred = predict_track(state, np.zeros((6, 6)), g, hours=10.0, members=3, seed=0, wind_error=err)
    dist = haversine_m(0.0, 0.0, pred.lat_deg[:, -1], pred.lon_deg[:, -1])
    scale = RADIUS_M / (RADIUS_M + 18000.0)
    assert dist[0] == pytest.approx(10.0 * 36000.0 * scale, rel=1e-6)  # member 0: model wind only
    assert dist[1] == pytest.approx(14.0 * 36000.0 * scale, rel=1e-6)  # others: observed drift


def test_back_trajectory_source_region_is_upwind_and_holds_the_truth() -> None:
    g = profile_grid(lambda h: 15.0 + 0.0 * h, lambda h: 5.0 + 0.0 * h)
    state = TrackState(86400.0, 40.0, -90.0, 18000.0)
    src = back_trajectory(g, state, 24.0, 1000, covariance=np.diag([1e6, 1e6, 0.0]), seed=2)
    assert src.time_s == 0.0 and src.prediction.backward
    true_lat = src.prediction.lat_deg[0, -1]
    true_lon = src.prediction.lon_deg[0, -1]
    assert true_lat < 40.0 and true_lon < -90.0  # it came from the south-west
    inside = src.regions[1].contains(np.array([true_lat]), np.array([true_lon]))
    assert inside.all()
    assert src.probability.probability.sum() == pytest.approx(1.0)


def test_regional_field_start_outside_raises_clearly() -> None:
    g = profile_grid(
        lambda h: 10.0 + 0.0 * h, lat=np.array([20.0, 60.0]), lon=np.array([200.0, 300.0]), global_lon=False
    )
    state = TrackState(0.0, 45.0, 0.0, float("nan"), 5.0, 0.0, alt_known=False)
    with pytest.raises(WindDomainError, match="longitude"):
        predict_track(state, None, g, 1.0, 10)


def test_ensemble_cones_of_an_ascent_flight_land_near_the_deterministic_point() -> None:
    g = profile_grid(lambda h: 5.0 + h / 2000.0)
    prof = FlightProfile(
        "ascent-burst-descent", 5.0, 25000.0, 5.0, ascent_rate_sigma_mps=0.3, burst_alt_sigma_m=1000.0
    )
    pred = predict_track(
        TrackState(0.0, 37.0, -122.0, 0.0), np.zeros((3, 3)), g, 6.0, 300, seed=4, profile=prof
    )
    assert np.all(pred.status == 1)  # all landed
    lat_e, lon_e, _ = pred.end_points()
    c90 = cones(pred, (0.9,), time_index=[len(pred.time_s) - 1])[0]
    assert c90.contains(lat_e[:, None], lon_e[:, None]).mean() == pytest.approx(0.9, abs=0.01)
    assert np.nanstd(pred.burst_time_s) > 0
