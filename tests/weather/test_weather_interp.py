"""The numba wind interpolation kernel against fields with exact answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratowatch.weather.errors import WindDomainError
from stratowatch.weather.grid import WindGrid
from stratowatch.weather.interp import wind_at

LEVEL_HEIGHTS_M = np.array([0.0, 5000.0, 11000.0, 16000.0, 21000.0, 31000.0])
LEVELS_HPA = np.array([1000.0, 550.0, 230.0, 100.0, 45.0, 10.0])


def make_grid(
    u_fn,
    v_fn=None,
    *,
    times=(0.0,),
    lat=None,
    lon=None,
    global_lon=True,
    heights=None,
) -> WindGrid:
    t = np.asarray(times, dtype=float)
    lat = np.arange(-90.0, 90.1, 10.0) if lat is None else lat
    lon = np.arange(0.0, 360.0, 10.0) if lon is None else lon
    T, _, Y, X = np.meshgrid(t, LEVELS_HPA, lat, lon, indexing="ij")
    H = (
        np.broadcast_to(LEVEL_HEIGHTS_M[None, :, None, None], T.shape).copy()
        if heights is None
        else heights(T, Y, X)
    )
    u = u_fn(T, Y, X, H)
    v = np.zeros_like(u) if v_fn is None else v_fn(T, Y, X, H)
    return WindGrid(t, LEVELS_HPA.copy(), lat, lon, u, v, H, global_lon=global_lon, source="test-grid")


def linear(T, Y, X, H):
    return 1.0 + T / 3600.0 + 0.1 * Y + 0.01 * X + H / 1000.0


def test_linear_field_is_reproduced_exactly_in_all_four_axes() -> None:
    g = make_grid(linear, lambda T, Y, X, H: -linear(T, Y, X, H), times=(0.0, 3600.0, 7200.0))
    rng = np.random.default_rng(1)
    n = 500
    t = rng.uniform(0, 7200, n)
    lat = rng.uniform(-90, 90, n)
    lon = rng.uniform(0, 350, n)  # inside the columns (the seam cell is tested separately)
    alt = rng.uniform(0, 31000, n)
    u, v = wind_at(g, t, lat, lon, alt)
    expected = linear(t, lat, lon, alt)
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(v, -expected, rtol=0, atol=1e-9)


def test_each_column_is_bracketed_by_its_own_heights() -> None:
    # levels tilt with latitude and longitude; the wind is a function of height only, so linear
    # interpolation in each column's own heights gives the exact value whatever the tilt
    def heights(T, Y, X):
        return LEVEL_HEIGHTS_M[None, :, None, None] * (1.0 + 0.002 * Y + 0.0005 * X) + 0.0 * T

    g = make_grid(
        lambda T, Y, X, H: H / 1000.0, heights=heights, lat=np.arange(0.0, 60.1, 10.0), global_lon=False
    )
    alt = np.array([2000.0, 7500.0, 12345.0, 18000.0])
    u, _ = wind_at(g, 0.0, [12.0, 33.3, 47.0, 55.5], [21.0, 99.0, 140.0, 300.0], alt)
    np.testing.assert_allclose(u, alt / 1000.0, atol=1e-9)


def test_longitudes_are_normalised_and_the_seam_cell_wraps() -> None:
    g = make_grid(lambda T, Y, X, H: np.cos(np.radians(X)) + 0 * H)
    u_a, _ = wind_at(g, 0.0, 10.0, [355.0, -5.0, 715.0], 1000.0)
    # between columns 350 and 0 (=360): linear blend of cos(350) and cos(0)
    expected = 0.5 * (np.cos(np.radians(350.0)) + 1.0)
    np.testing.assert_allclose(u_a, expected, atol=1e-12)
    u_b, _ = wind_at(g, 0.0, 10.0, [-140.0, 220.0], 1000.0)
    assert u_b[0] == pytest.approx(u_b[1])


def test_regional_grid_in_0_360_convention_accepts_negative_longitudes() -> None:
    g = make_grid(linear, lat=np.arange(20.0, 65.1, 1.0), lon=np.arange(210.0, 310.1, 1.0), global_lon=False)
    u1, _ = wind_at(g, 0.0, 45.0, -140.0, 5000.0)
    u2, _ = wind_at(g, 0.0, 45.0, 220.0, 5000.0)
    assert u1[()] == pytest.approx(u2[()]) == pytest.approx(linear(0.0, 45.0, 220.0, 5000.0))


def test_out_of_domain_raises_naming_the_axis_or_clamps() -> None:
    g = make_grid(
        linear,
        times=(0.0, 3600.0),
        lat=np.arange(20.0, 65.1, 5.0),
        lon=np.arange(210.0, 310.1, 5.0),
        global_lon=False,
    )
    with pytest.raises(WindDomainError, match=r"latitude 70 .*20, 65"):
        wind_at(g, 0.0, 70.0, 250.0, 1000.0)
    with pytest.raises(WindDomainError, match="longitude"):
        wind_at(g, 0.0, 30.0, 0.0, 1000.0)
    with pytest.raises(WindDomainError, match="time_s 7200"):
        wind_at(g, 7200.0, 30.0, 250.0, 1000.0)
    with pytest.raises(WindDomainError, match="altitude_m 40000") as info:
        wind_at(g, 0.0, 30.0, 250.0, 40000.0)
    assert info.value.axis == "altitude_m" and info.value.high == 31000.0
    u, _ = wind_at(
        g,
        [7200.0, 0.0, 0.0],
        [70.0, 30.0, 30.0],
        [250.0, 250.0, 250.0],
        [1000.0, 40000.0, -50.0],
        policy="clamp",
    )
    np.testing.assert_allclose(
        u,
        [
            linear(3600.0, 65.0, 250.0, 1000.0),
            linear(0.0, 30.0, 250.0, 31000.0),
            linear(0.0, 30.0, 250.0, 0.0),
        ],
    )


def test_a_single_time_grid_is_steady() -> None:
    g = make_grid(linear)
    u0, _ = wind_at(g, 0.0, 10.0, 20.0, 3000.0)
    u1, _ = wind_at(g, 1e6, 10.0, 20.0, 3000.0)
    assert u0[()] == u1[()]


def test_broadcast_shapes_and_bad_grids() -> None:
    g = make_grid(linear)
    u, v = wind_at(g, 0.0, np.zeros((3, 4)), np.zeros(4), 1000.0)
    assert u.shape == v.shape == (3, 4)
    bad = make_grid(linear)
    bad.height_m[0, 2, 3, 4] = -1.0  # heights no longer ascend in that column
    with pytest.raises(ValueError, match="ascend"):
        wind_at(bad, 0.0, 0.0, 0.0, 0.0)


@given(
    coef=st.tuples(*(st.floats(-5, 5) for _ in range(5))),
    lat_steps=st.lists(st.floats(0.5, 20.0), min_size=2, max_size=8),
    lon_steps=st.lists(st.floats(0.5, 40.0), min_size=2, max_size=8),
    frac=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
)
@settings(max_examples=60, deadline=None)
def test_linear_fields_on_irregular_axes_are_exact(coef, lat_steps, lon_steps, frac) -> None:
    lat = -60.0 + np.concatenate([[0.0], np.cumsum(lat_steps)])
    lon = -170.0 + np.concatenate([[0.0], np.cumsum(lon_steps)])
    a, b, c, d, e = coef

    def field(T, Y, X, H):
        return a + b * T / 3600.0 + c * Y + d * X + e * H / 1000.0

    g = make_grid(field, times=(0.0, 3600.0, 9000.0), lat=lat, lon=lon, global_lon=False)
    t = frac[0] * 9000.0
    y = lat[0] + frac[1] * (lat[-1] - lat[0])
    x = lon[0] + frac[2] * (lon[-1] - lon[0])
    h = frac[3] * 31000.0
    u, _ = wind_at(g, t, y, x, h)
    assert u[()] == pytest.approx(
        field(t, y, x, h), abs=1e-8 * (1 + abs(a) + 200 * (abs(c) + abs(d)) + 31 * abs(e) + 3 * abs(b))
    )
