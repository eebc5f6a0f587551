"""Lambert conformal grids: projection, wind rotation, resampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratowatch.weather.lambert import (
    LambertGrid,
    earth_to_grid,
    grid_to_earth,
    largest_valid_rectangle,
    regular_axes,
    resample,
)

# NCEP grid 211 (the NAM file's grid, from its GRIB2 section 3)
GRID_211 = LambertGrid(
    nx=93, ny=65, lat1_deg=12.19, lon1_deg=226.541, lov_deg=265.0, lad_deg=25.0,
    latin1_deg=25.0, latin2_deg=25.0, dx_m=81271.0, dy_m=81271.0, radius_m=6371229.0,
)  # fmt: skip


def _pyproj_211():  # type: ignore[no-untyped-def]
    pyproj = pytest.importorskip("pyproj")
    return pyproj.Proj(proj="lcc", lat_1=25, lat_2=25, lat_0=25, lon_0=265, R=6371229.0)


def test_projection_matches_pyproj() -> None:
    proj = _pyproj_211()
    lat = np.array([12.19, 30.0, 45.0, 60.0, 40.0])
    lon = np.array([226.541, 250.0, 265.0, 300.0, 210.0])
    x, y = GRID_211.project(lat, lon)
    px, py = proj(np.mod(lon + 180, 360) - 180, lat)
    np.testing.assert_allclose(x, px, atol=0.01)
    np.testing.assert_allclose(y, py, atol=0.01)


def test_rotation_angle_is_the_convergence_of_the_meridians_pyproj() -> None:
    # independent: the direction of true north in projected coordinates, from pyproj
    proj = _pyproj_211()
    lat = np.array([20.0, 35.0, 50.0, 55.0, 30.0])
    lon = np.array([-130.0, -110.0, -95.0, -60.0, -95.0])
    x0, y0 = proj(lon, lat)
    x1, y1 = proj(lon, lat + 1e-4)
    north_from_grid_y = np.degrees(np.arctan2(x1 - x0, y1 - y0))  # clockwise from +y
    alpha = np.degrees(GRID_211.rotation_rad(lon))
    np.testing.assert_allclose(alpha, -north_from_grid_y, atol=1e-4)
    assert alpha[2] == 0.0 and alpha[4] == 0.0  # on LoV (265 E = -95)
    assert alpha[0] < -10 and alpha[3] > 10  # west of LoV negative, east positive


def test_wind_along_lov_is_unchanged() -> None:
    u, v = grid_to_earth(np.array([12.0]), np.array([-7.0]), GRID_211.rotation_rad(265.0))
    np.testing.assert_allclose([u[0], v[0]], [12.0, -7.0])


def test_grid_y_wind_east_of_lov_blows_east_of_north() -> None:
    alpha = GRID_211.rotation_rad(-60.0)  # east of LoV: grid +y leans east of north
    u, v = grid_to_earth(0.0, 10.0, alpha)
    assert u > 0 and v > 0
    assert np.degrees(np.arctan2(u, v)) == pytest.approx(np.degrees(alpha))


@given(st.floats(-80, 80), st.floats(-80, 80), st.floats(-179.9, 179.9))
def test_earth_grid_round_trip(u: float, v: float, lon: float) -> None:
    alpha = GRID_211.rotation_rad(lon)
    ug, vg = earth_to_grid(u, v, alpha)
    assert float(np.hypot(ug, vg)) == pytest.approx(float(np.hypot(u, v)), abs=1e-9)
    ue, ve = grid_to_earth(ug, vg, alpha)
    assert float(ue) == pytest.approx(u, abs=1e-9)
    assert float(ve) == pytest.approx(v, abs=1e-9)


def test_grid_points_project_to_integer_indices() -> None:
    j, i = np.meshgrid(np.arange(0, 65, 8), np.arange(0, 93, 8), indexing="ij")
    x1, y1 = GRID_211.project(GRID_211.lat1_deg, GRID_211.lon1_deg)
    # invert analytically with pyproj to get the lat/lon of known grid points
    proj = _pyproj_211()
    lon, lat = proj(x1 + i * GRID_211.dx_m, y1 + j * GRID_211.dy_m, inverse=True)
    fi, fj = GRID_211.fractional_index(lat, lon)
    np.testing.assert_allclose(fi, i, atol=1e-6)
    np.testing.assert_allclose(fj, j, atol=1e-6)


def test_resample_is_exact_for_a_linear_field_and_nan_outside() -> None:
    proj = _pyproj_211()
    jj, ii = np.meshgrid(np.arange(65.0), np.arange(93.0), indexing="ij")
    data = np.stack([3.0 * ii + 2.0 * jj, -ii])  # (2, ny, nx), linear in the grid indices
    x1, y1 = GRID_211.project(GRID_211.lat1_deg, GRID_211.lon1_deg)
    lon2d, lat2d = proj(x1 + ii * GRID_211.dx_m, y1 + jj * GRID_211.dy_m, inverse=True)
    lat, lon = regular_axes(GRID_211, lat2d, lon2d)
    assert lat[1] - lat[0] == pytest.approx(0.75)  # nearest nice step to 81 km
    assert lon[0] > -180 and lon[-1] < -40
    out = resample(GRID_211, data, lat, lon)
    assert out.shape == (2, lat.size, lon.size)
    fi, fj = GRID_211.fractional_index(*np.meshgrid(lat, lon, indexing="ij"))
    inside = np.isfinite(out[0])
    np.testing.assert_allclose(out[0][inside], (3.0 * fi + 2.0 * fj)[inside], atol=1e-6)
    np.testing.assert_allclose(out[1][inside], -fi[inside], atol=1e-6)
    outside = (fi < 0) | (fi > 92) | (fj < 0) | (fj > 64)
    assert outside.any() and np.array_equal(~inside, outside)


def test_largest_valid_rectangle() -> None:
    valid = np.zeros((6, 8), dtype=bool)
    valid[1:5, 2:7] = True  # 4 x 5 block
    valid[0, :] = True  # a 1 x 8 strip on top: it extends the block to 5 x 5
    valid[3, 1] = False
    rows, cols = largest_valid_rectangle(valid)
    assert (rows, cols) == (slice(0, 5), slice(2, 7))
    # a fan-shaped (Lambert-like) mask: the result is all valid and maximal by brute force
    yy, xx = np.mgrid[0:20, 0:30]
    fan = np.abs(xx - 15) < 5 + yy * 0.6
    rows, cols = largest_valid_rectangle(fan)
    assert fan[rows, cols].all()
    best = max(
        (y1 - y0) * (x1 - x0)
        for y0 in range(20)
        for y1 in range(y0 + 1, 21)
        for x0 in range(30)
        for x1 in range(x0 + 1, 31)
        if fan[y0:y1, x0:x1].all()
    )
    assert (rows.stop - rows.start) * (cols.stop - cols.start) == best
