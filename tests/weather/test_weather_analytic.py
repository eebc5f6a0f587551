"""The analytic field: a realistic, deterministic WindGrid for tests and the demo."""

from __future__ import annotations

import numpy as np
import pytest

from stratowatch.weather import WindGrid, analytic_field
from stratowatch.weather.analytic import analytic_wind
from stratowatch.weather.heights import isa_height_m


def test_shape_conventions_and_heights() -> None:
    g = analytic_field(hours=24, step_h=6, resolution_deg=5.0)
    assert isinstance(g, WindGrid)
    assert g.shape == (5, 16, 37, 72)
    assert g.global_lon and g.lon_deg[0] == 0.0 and g.lon_deg[-1] == 355.0
    assert np.all(np.diff(g.pressure_hpa) < 0) and np.all(np.diff(g.lat_deg) > 0)
    np.testing.assert_allclose(g.height_m[2, :, 10, 20], isa_height_m(g.pressure_hpa))
    assert g.u_mps.dtype == np.float64 and g.u_mps.flags.c_contiguous


def test_jet_peaks_near_225_hpa_and_40_degrees() -> None:
    g = analytic_field(hours=0, resolution_deg=2.5)
    zonal_mean = g.u_mps[0].mean(axis=2)  # (nz, ny)
    k, j = np.unravel_index(np.argmax(zonal_mean), zonal_mean.shape)
    assert g.pressure_hpa[k] in (250.0, 200.0)
    assert abs(g.lat_deg[j]) == pytest.approx(40.0, abs=2.5)
    assert 45.0 <= zonal_mean.max() <= 52.0  # the 45 m/s jet on a weak tropospheric westerly
    # westerly: wind from the west, u > 0, in both hemispheres' jets
    assert zonal_mean[k, np.argmin(np.abs(g.lat_deg + 40))] > 40.0
    # zero at the poles
    assert np.abs(g.u_mps[:, :, [0, -1]]).max() < 1e-9


def test_stratospheric_wind_turns_with_time_and_is_weaker() -> None:
    g = analytic_field(hours=96, step_h=24, resolution_deg=5.0)
    k = int(np.flatnonzero(g.pressure_hpa == 70.0)[0])
    j = int(np.flatnonzero(g.lat_deg == 0.0)[0])
    direction = np.degrees(np.arctan2(g.v_mps[:, k, j, 0], g.u_mps[:, k, j, 0]))
    np.testing.assert_allclose(np.mod(np.diff(direction), 360.0), 90.0, atol=1.0)
    speed70 = np.hypot(g.u_mps[:, k], g.v_mps[:, k]).max()
    speed250 = np.hypot(g.u_mps[:, 7], g.v_mps[:, 7]).max()
    assert 5.0 < speed70 < speed250 / 2


def test_grid_values_are_the_formula() -> None:
    g = analytic_field(hours=12, step_h=6, resolution_deg=5.0, jet_max_mps=30.0)
    u, v = analytic_wind(g.time_s[1], 250.0, 45.0, 100.0, t0_s=g.time_s[0], jet_max_mps=30.0)
    j = int(np.flatnonzero(g.lat_deg == 45.0)[0])
    i = int(np.flatnonzero(g.lon_deg == 100.0)[0])
    assert g.u_mps[1, 7, j, i] == pytest.approx(float(u))
    assert g.v_mps[1, 7, j, i] == pytest.approx(float(v))
    with pytest.raises(ValueError, match="divide 180"):
        analytic_field(resolution_deg=7.0)
