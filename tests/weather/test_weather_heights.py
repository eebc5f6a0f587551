"""Pressure <-> height: the standard atmosphere and per-column conversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratowatch.weather.heights import (
    geometric_to_geopotential_m,
    geopotential_to_geometric_m,
    height_to_pressure,
    isa_height_m,
    isa_pressure_hpa,
    isa_temperature_k,
    pressure_to_height,
)


def test_isa_matches_the_published_table() -> None:
    # US Standard Atmosphere 1976 layer bases (geopotential m -> hPa)
    z = [0.0, 11000.0, 20000.0, 32000.0, 47000.0]
    p = [1013.25, 226.321, 54.7489, 8.68019, 1.10906]
    np.testing.assert_allclose(isa_pressure_hpa(z), p, rtol=2e-4)
    np.testing.assert_allclose(isa_height_m(p), z, atol=3.0)
    assert isa_temperature_k(0.0) == pytest.approx(288.15)
    assert isa_temperature_k(15000.0) == pytest.approx(216.65)
    # balloon float levels
    assert isa_height_m(70.0) == pytest.approx(18442, abs=5)
    assert isa_height_m(50.0) == pytest.approx(20576, abs=5)


@given(st.floats(min_value=-400.0, max_value=80000.0))
def test_isa_round_trip(z: float) -> None:
    assert float(isa_height_m(isa_pressure_hpa(z))) == pytest.approx(z, abs=1e-3)


def test_geopotential_geometric_conversion() -> None:
    assert float(geopotential_to_geometric_m(20000.0)) - 20000.0 == pytest.approx(63.1, abs=0.2)
    assert float(geopotential_to_geometric_m(30000.0)) - 30000.0 == pytest.approx(142.25, abs=0.05)
    h = np.array([0.0, 1e4, 3e4])
    np.testing.assert_allclose(geopotential_to_geometric_m(geometric_to_geopotential_m(h)), h)


def test_column_conversion_is_exact_for_an_isothermal_column() -> None:
    # isothermal: z = z0 - H ln(p/p0) is linear in ln p, so interpolation is exact
    scale_h = 287.05287 * 216.65 / 9.80665
    levels = np.array([200.0, 100.0, 50.0, 20.0])
    cols = 11784.0 - scale_h * np.log(levels / 200.0)
    p = np.array([150.0, 70.0, 30.0])
    expected = geopotential_to_geometric_m(11784.0 - scale_h * np.log(p / 200.0))
    np.testing.assert_allclose(pressure_to_height(p, levels, cols), expected, atol=1e-6)
    np.testing.assert_allclose(height_to_pressure(expected, levels, cols), p, rtol=1e-9)


def test_columns_differ_per_point_and_extrapolate_with_isa_shape() -> None:
    levels = np.array([500.0, 100.0, 50.0])
    warm = isa_height_m(levels) + 200.0  # a column 200 m higher than standard
    cold = isa_height_m(levels) - 300.0
    cols = np.stack([warm, cold])
    z = pressure_to_height(np.array([70.0, 70.0]), levels, cols)
    assert z[0] - z[1] == pytest.approx(500.0 * (1 + 2 * 18500 / 6356766), rel=1e-3)
    # above the top level: ISA shape anchored at the column's top
    top = pressure_to_height(np.array([10.0]), levels, warm[None])
    assert float(top[0]) == pytest.approx(
        float(geopotential_to_geometric_m(isa_height_m(10.0) + 200.0)), abs=1e-6
    )
    back = height_to_pressure(top, levels, warm[None])
    assert float(back[0]) == pytest.approx(10.0, rel=1e-9)


def test_grid_columns_from_the_field_itself() -> None:
    from stratowatch.weather.grid import assemble_grid
    from stratowatch.weather.heights import grid_height_to_pressure, grid_pressure_to_height

    levels = np.array([500.0, 100.0, 50.0])
    lat = np.array([0.0, 10.0])
    lon = np.array([0.0, 10.0])
    base = isa_height_m(levels)[None, :, None, None]
    # heights rise 100 m per degree of latitude
    h = base + 100.0 * lat[None, None, :, None] + 0.0 * lon[None, None, None, :]
    g = assemble_grid(
        time_s=[0.0],
        pressure_hpa=levels,
        lat_deg=lat,
        lon_deg=lon,
        u_mps=np.zeros(h.shape),
        v_mps=np.zeros(h.shape),
        height_m=h,
    )
    z = grid_pressure_to_height(g, 0.0, np.array([0.0, 5.0, 10.0]), 5.0, 100.0)
    expected = geopotential_to_geometric_m(isa_height_m(100.0) + np.array([0.0, 500.0, 1000.0]))
    np.testing.assert_allclose(z, expected, atol=1e-6)
    p = grid_height_to_pressure(g, 0.0, np.array([0.0, 5.0, 10.0]), 5.0, z)
    np.testing.assert_allclose(p, 100.0, rtol=1e-9)
    outside = grid_pressure_to_height(g, 0.0, 20.0, 5.0, 100.0)
    assert np.isnan(outside).all()
