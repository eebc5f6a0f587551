"""Wind match: a track moving with the wind at its altitude is balloon evidence, with a reason
naming the pressure level; fast or cross-wind movers are not; no field, no evidence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stratowatch.classify import classify_table
from stratowatch.classify.wind import wind_match
from stratowatch.model import MeasurementKind, Observation
from stratowatch.weather import analytic_field
from stratowatch.weather.grid import WindGrid
from stratowatch.weather.interp import wind_at

T0 = 1_675_274_400.0  # 2023-02-01 18Z


@pytest.fixture(scope="module")
def grid() -> WindGrid:
    return analytic_field(t0_s=T0 - 6 * 3600.0, hours=24.0, resolution_deg=2.5)


def _height_of(grid: WindGrid, p_hpa: float, lat: float, lon: float) -> float:
    k = int(np.flatnonzero(grid.pressure_hpa == p_hpa)[0])
    return float(grid.column_heights(T0, lat, lon)[0, k])


def test_velocity_with_the_wind_is_balloon_evidence_naming_the_level(grid: WindGrid) -> None:
    lat = np.array([48.0, 51.0, 47.0])
    lon = np.array([-111.0, -114.0, -105.0])
    alt = np.array([_height_of(grid, 70.0, la, lo) for la, lo in zip(lat, lon, strict=True)])
    u, v = wind_at(grid, T0, lat, lon, alt)
    vel = np.column_stack([u, v])
    vel[0] += (1.0, 1.0)  # 1.4 m/s off
    vel[1] += (3.0, 4.0)  # 5 m/s off
    vel[2] = (230.0, 10.0)  # an airliner
    m = wind_match(grid, T0, lat, lon, alt, vel)
    assert m.usable.all()
    np.testing.assert_allclose(m.mismatch_mps[:2], [np.sqrt(2.0), 5.0], atol=1e-9)
    np.testing.assert_allclose(m.wind_enu_mps[:, 0], u)
    assert list(m.pressure_hpa) == [70.0, 70.0, 70.0]
    np.testing.assert_allclose(m.llr, [1.5, 0.75, -0.5])
    assert m.reason(0) == "drifts with the 70 hPa wind within 2 m/s: balloon-like"
    assert m.reason(1) == "5 m/s off the 70 hPa wind: slightly balloon-like"
    reason = m.reason(2)
    assert reason is not None and reason.startswith("moves ") and "across the 70 hPa wind" in reason


def test_no_evidence_when_velocity_uncertain_or_outside_the_field(grid: WindGrid) -> None:
    # a regional cut of the field: 40..60 N, 240..260 E (120..100 W)
    ys = (grid.lat_deg >= 40) & (grid.lat_deg <= 60)
    xs = (grid.lon_deg >= 240) & (grid.lon_deg <= 260)

    def cut(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[:, :, ys][:, :, :, xs])

    regional = replace(
        grid,
        lat_deg=grid.lat_deg[ys],
        lon_deg=grid.lon_deg[xs],
        u_mps=cut(grid.u_mps),
        v_mps=cut(grid.v_mps),
        height_m=cut(grid.height_m),
        temperature_k=None,
        global_lon=False,
    ).validate()
    lat = np.array([50.0, 50.0, 30.0])
    lon = np.array([-110.0, -150.0, -110.0])  # inside; west of the cut; south of it
    m = wind_match(regional, T0, lat, lon, 18_000.0, np.zeros((3, 2)), velocity_sigma_mps=[1.0, 1.0, 1.0])
    assert list(m.usable) == [True, False, False]
    assert m.llr[1] == 0.0 and m.llr[2] == 0.0 and m.reason(1) is None
    noisy = wind_match(regional, T0, lat[:1], lon[:1], 18_000.0, np.zeros((1, 2)), velocity_sigma_mps=25.0)
    assert not noisy.usable[0] and noisy.reason(0) is None


def test_tracked_balloon_drifting_with_the_wind_gets_the_wind_reason(grid: WindGrid) -> None:
    from stratowatch.tracking import Tracker

    lat, lon = 49.5, -112.0
    alt = _height_of(grid, 50.0, lat, lon)
    tracker = Tracker()
    obs_t = T0 + 60.0 * np.arange(25)
    rng = np.random.default_rng(3)
    for t in obs_t:  # move with the analytic wind at the balloon's point, report every minute
        u, v = wind_at(grid, t, lat, lon, alt)
        e, n = rng.normal(0.0, 20.0, 2)
        ob = Observation(
            float(t),
            "aprs",
            MeasurementKind.GEODETIC,
            (lat + n / 111_200.0, lon + e / (111_200.0 * np.cos(np.radians(lat))), alt),
            (20.0, 30.0),
        )
        tracker.step(float(t), [ob])
        lat += float(v) * 60.0 / 111_200.0
        lon += float(u) * 60.0 / (111_200.0 * np.cos(np.radians(lat)))
    table = tracker.table(float(obs_t[-1]))
    assert len(table) == 1
    names = [m.name for m in tracker.models]
    plain = classify_table(table, names, tracker.identities)[0]
    windy = classify_table(table, names, tracker.identities, winds=grid)[0]
    assert any(r.startswith("drifts with the 50 hPa wind within") for r in windy.reasons), windy.reasons
    assert not any("wind" in r for r in plain.reasons)
    assert windy.probabilities["balloon"] > plain.probabilities["balloon"]
