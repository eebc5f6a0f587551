"""Geopotential heights in a field are honoured as geometric altitudes by the interpolation."""

import numpy as np

from stratowatch.weather.grid import WindGrid
from stratowatch.weather.heights import geopotential_to_geometric_m
from stratowatch.weather.interp import wind_at


def _grid(geopotential: bool) -> WindGrid:
    p = np.array([100.0, 70.0, 50.0])
    h = np.array([16_000.0, 18_500.0, 20_500.0])
    shape = (1, 3, 2, 2)
    u = np.broadcast_to(np.array([10.0, 20.0, 30.0])[None, :, None, None], shape).copy()
    return WindGrid(
        time_s=np.array([0.0]),
        pressure_hpa=p,
        lat_deg=np.array([-90.0, 90.0]),
        lon_deg=np.array([-180.0, 179.0]),
        u_mps=u,
        v_mps=np.zeros(shape),
        height_m=np.broadcast_to(h[None, :, None, None], shape).copy(),
        global_lon=True,
        heights_geopotential=geopotential,
    )


def test_geopotential_levels_sit_at_their_geometric_altitude():
    g = _grid(True)
    z70 = float(geopotential_to_geometric_m(18_500.0))
    assert 18_550.0 < z70 < 18_560.0  # ~54 m above the geopotential figure at 18.5 km
    u, _ = wind_at(g, np.array([0.0]), np.array([45.0]), np.array([10.0]), np.array([z70]))
    assert np.isclose(u[0], 20.0)
    # the same number read as geometric height lands below the level
    u2, _ = wind_at(g, np.array([0.0]), np.array([45.0]), np.array([10.0]), np.array([18_500.0]))
    assert u2[0] < 20.0
    ug, _ = wind_at(_grid(False), np.array([0.0]), np.array([45.0]), np.array([10.0]), np.array([18_500.0]))
    assert np.isclose(ug[0], 20.0)
