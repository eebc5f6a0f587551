"""NetCDF winds: the real GFS file (checked against netCDF4 directly) and synthetic files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.heights import isa_height_m
from stratowatch.weather.netcdf import read_netcdf

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
GFS = REPO_ROOT.parent / "shared" / "data" / "wind" / "gfs_northamerica_2010102612_1deg.nc"
needs_data = pytest.mark.skipif(not GFS.exists(), reason=f"shared wind data absent ({GFS})")


@needs_data
def test_gfs_golden_values() -> None:
    g = read_netcdf(GFS)
    assert g.shape == (1, 26, 46, 101)
    assert g.time_s[0] == 1288094400.0  # 2010-10-26 12Z
    assert g.pressure_hpa[0] == 1000.0 and g.pressure_hpa[-1] == 10.0  # Pa -> hPa
    assert g.lat_deg[0] == 20.0 and g.lat_deg[-1] == 65.0  # descending rows flipped
    assert g.lon_deg[0] == -150.0 and g.lon_deg[-1] == -50.0 and not g.global_lon
    k70 = int(np.flatnonzero(g.pressure_hpa == 70.0)[0])
    assert g.height_m[0, k70].mean() == pytest.approx(18450, abs=10)
    assert g.u_mps.min() == pytest.approx(-30.36, abs=0.01)
    assert g.u_mps.max() == pytest.approx(83.80, abs=0.01)
    assert g.temperature_k is not None and 180 < np.nanmin(g.temperature_k) < 230


@needs_data
def test_gfs_points_match_netcdf4_directly() -> None:
    netCDF4 = pytest.importorskip("netCDF4")
    g = read_netcdf(GFS)
    with netCDF4.Dataset(GFS) as nc:
        lev_pa = nc["isobaric3"][:]
        lats = nc["lat"][:]
        lons = nc["lon"][:]
        for p_hpa, lat, lon_e in ((70.0, 40.0, 260.0), (250.0, 47.0, 272.0), (10.0, 21.0, 301.0)):
            k = int(np.flatnonzero(lev_pa == p_hpa * 100)[0])
            j = int(np.flatnonzero(lats == lat)[0])
            i = int(np.flatnonzero(lons == lon_e)[0])
            raw_u = float(nc["u-component_of_wind_isobaric"][0, k, j, i])
            raw_v = float(nc["v-component_of_wind_isobaric"][0, k, j, i])
            raw_z = float(nc["Geopotential_height_isobaric"][0, k, j, i])
            kk = int(np.flatnonzero(g.pressure_hpa == p_hpa)[0])
            jj = int(np.flatnonzero(g.lat_deg == lat)[0])
            ii = int(np.flatnonzero(g.lon_deg == lon_e - 360.0)[0])
            assert g.u_mps[0, kk, jj, ii] == pytest.approx(raw_u)
            assert g.v_mps[0, kk, jj, ii] == pytest.approx(raw_v)
            assert g.height_m[0, kk, jj, ii] == pytest.approx(raw_z)


def _write(
    path: Path,
    *,
    lat: np.ndarray,
    lon: np.ndarray,
    levels: np.ndarray,
    units: str,
    with_heights: bool = True,
    geopotential: bool = False,
) -> None:
    times = np.array(["2023-02-01T00", "2023-02-01T06"], dtype="datetime64[ns]")
    shape = (2, levels.size, lat.size, lon.size)
    u = np.broadcast_to(lon[None, None, None, :] / 10.0, shape).copy()
    v = np.broadcast_to(lat[None, None, :, None] / 10.0, shape).copy()
    p_hpa = levels * (0.01 if units == "Pa" else 1.0)
    z = np.broadcast_to(isa_height_m(p_hpa)[None, :, None, None], shape).copy()
    data = {
        "u": (("time", "level", "latitude", "longitude"), u, {"standard_name": "eastward_wind"}),
        "v": (("time", "level", "latitude", "longitude"), v, {"standard_name": "northward_wind"}),
    }
    if with_heights:
        name, values = ("z", z * 9.80665) if geopotential else ("gh", z)
        data[name] = (("time", "level", "latitude", "longitude"), values, {})
    ds = xr.Dataset(
        data,
        coords={
            "time": times,
            "level": ("level", levels, {"units": units}),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
    )
    ds.to_netcdf(path)


def test_global_0_360_descending_lat_pa(tmp_path: Path) -> None:
    path = tmp_path / "global.nc"
    lat = np.arange(90.0, -90.1, -30.0)
    lon = np.arange(0.0, 360.0, 45.0)
    _write(
        path,
        lat=lat,
        lon=lon,
        levels=np.array([100000.0, 25000.0, 5000.0]),
        units="Pa",
        geopotential=True,
    )
    g = read_netcdf(path)
    assert g.global_lon
    np.testing.assert_allclose(g.lon_deg, lon)
    np.testing.assert_allclose(g.lat_deg, lat[::-1])
    np.testing.assert_allclose(g.pressure_hpa, [1000, 250, 50])
    assert g.time_s[1] - g.time_s[0] == 21600
    # values follow their coordinates through the flips
    np.testing.assert_allclose(g.u_mps[0, 0, 0], lon / 10.0)
    np.testing.assert_allclose(g.v_mps[0, 0, :, 0], lat[::-1] / 10.0)
    np.testing.assert_allclose(g.height_m[0, :, 2, 2], isa_height_m(g.pressure_hpa), atol=1e-6)


def test_signed_longitudes_and_no_heights(tmp_path: Path) -> None:
    path = tmp_path / "signed.nc"
    lon = np.arange(-180.0, 180.0, 60.0)
    _write(
        path,
        lat=np.array([0.0, 30.0]),
        lon=lon,
        levels=np.array([850.0, 200.0]),
        units="hPa",
        with_heights=False,
    )
    g = read_netcdf(path)
    assert g.global_lon
    np.testing.assert_allclose(g.lon_deg, lon)
    assert any("standard-atmosphere" in n for n in g.notes)
    np.testing.assert_allclose(g.height_m[0, :, 0, 0], isa_height_m([850.0, 200.0]))


def test_regional_across_the_antimeridian(tmp_path: Path) -> None:
    path = tmp_path / "pacific.nc"
    lon = np.array([170.0, 175.0, 180.0, 185.0, 190.0])
    _write(path, lat=np.array([40.0, 50.0]), lon=lon, levels=np.array([500.0, 250.0]), units="hPa")
    g = read_netcdf(path)
    assert not g.global_lon
    np.testing.assert_allclose(g.lon_deg, lon)  # kept 0-360 so it stays ascending


def test_missing_wind_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nowind.nc"
    xr.Dataset(
        {"t": (("level", "lat", "lon"), np.zeros((2, 2, 2)))},
        coords={"level": ("level", [500.0, 250.0], {"units": "hPa"})},
    ).to_netcdf(path)
    with pytest.raises(WindFormatError, match=r"nowind\.nc: no u and v wind"):
        read_netcdf(path)
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"CDF\x01 not really")
    with pytest.raises(WindFormatError, match=r"junk\.nc: not a readable NetCDF"):
        read_netcdf(junk)
