"""GRIB2 winds: synthetic global (0-360) fixtures and the real NAM / RUC Lambert files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.gribfile import read_grib

eccodes = pytest.importorskip("eccodes")

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
WIND = REPO_ROOT.parent / "shared" / "data" / "wind"
NAM = WIND / "nam.t00z.awp21100.tm00.grib2"
RUC07 = WIND / "ruc.fh.0001_tl.press_gr.us40km.07Z.20110430.grb2"
needs_data = pytest.mark.skipif(not NAM.exists(), reason=f"shared wind data absent ({WIND})")

LATS = np.arange(90.0, -90.1, -10.0)  # GFS order: north to south
LONS = np.arange(0.0, 360.0, 30.0)  # 0-360


def _u(lev: float, hour: int) -> np.ndarray:
    return 10.0 + lev / 100.0 + hour + LATS[:, None] / 10.0 + LONS[None, :] / 100.0


def write_global_grib2(
    path: Path,
    hours: tuple[int, ...] = (0,),
    levels: tuple[int, ...] = (500, 250, 100),
    *,
    skip: tuple[str, int] | None = None,
    missing_at: tuple[int, int] | None = None,
) -> None:
    with path.open("wb") as f:
        for hour in hours:
            for lev in levels:
                for short in ("u", "v", "gh", "t"):
                    if skip == (short, lev):
                        continue
                    h = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
                    eccodes.codes_set_key_vals(h, {
                        "Ni": LONS.size, "Nj": LATS.size,
                        "latitudeOfFirstGridPointInDegrees": 90.0,
                        "latitudeOfLastGridPointInDegrees": -90.0,
                        "longitudeOfFirstGridPointInDegrees": 0.0,
                        "longitudeOfLastGridPointInDegrees": 330.0,
                        "iDirectionIncrementInDegrees": 30.0, "jDirectionIncrementInDegrees": 10.0,
                        "jScansPositively": 0, "dataDate": 20230201, "dataTime": 0,
                        "stepUnits": 1, "forecastTime": hour,
                        "typeOfLevel": "isobaricInhPa", "level": lev, "shortName": short,
                    })  # fmt: skip
                    values = {
                        "u": _u(lev, hour),
                        "v": -_u(lev, hour),
                        "gh": 5000.0 + 16000.0 * np.log(500.0 / lev) + 0 * _u(lev, hour),
                        "t": 220.0 + 0 * _u(lev, hour),
                    }[short].ravel()
                    if missing_at is not None and short == "u" and lev == levels[0]:
                        eccodes.codes_set(h, "bitmapPresent", 1)
                        values = values.copy()
                        values[missing_at[0] * LONS.size + missing_at[1]] = 9999.0
                    eccodes.codes_set_values(h, values)
                    eccodes.codes_write(h, f)
                    eccodes.codes_release(h)


def test_global_0_360_grib2(tmp_path: Path) -> None:
    path = tmp_path / "gfs_global.grib2"
    write_global_grib2(path, hours=(0, 6))
    g = read_grib(path)
    assert g.shape == (2, 3, 19, 12)
    assert g.global_lon
    np.testing.assert_allclose(g.lon_deg, LONS)  # 0-360 kept
    np.testing.assert_allclose(g.lat_deg, LATS[::-1])  # flipped to ascending
    np.testing.assert_allclose(g.pressure_hpa, [500, 250, 100])
    assert g.time_s[1] - g.time_s[0] == 6 * 3600
    assert g.time_s[0] == 1675209600.0  # 2023-02-01 00Z
    # row for lat 40 N, column 270 E, level 250 hPa, +6 h
    j = int(np.flatnonzero(g.lat_deg == 40.0)[0])
    assert g.u_mps[1, 1, j, 9] == pytest.approx(10.0 + 2.5 + 6 + 4.0 + 2.7, abs=1e-3)
    assert g.v_mps[1, 1, j, 9] == pytest.approx(-(10.0 + 2.5 + 6 + 4.0 + 2.7), abs=1e-3)
    assert g.height_m[0, 1, j, 9] == pytest.approx(5000 + 16000 * np.log(2.0), abs=0.1)
    assert g.temperature_k is not None and g.w_mps is None


def test_missing_values_and_levels(tmp_path: Path) -> None:
    path = tmp_path / "gaps.grib2"
    write_global_grib2(path, skip=("gh", 250), missing_at=(3, 4))
    g = read_grib(path)
    # the bitmap-missing point is NaN, not 9999
    j = int(np.flatnonzero(g.lat_deg == LATS[3])[0])
    assert np.isnan(g.u_mps[0, 0, j, 4]) and np.isfinite(g.u_mps[0, 0, j, 5])
    # the missing 250 hPa height is filled linearly in ln p (exact for this field)
    assert g.height_m[0, 1, 5, 5] == pytest.approx(5000 + 16000 * np.log(2.0), abs=0.1)
    assert any("filled" in n for n in g.notes)


def test_not_grib_and_no_winds(tmp_path: Path) -> None:
    bad = tmp_path / "x.grib2"
    bad.write_bytes(b"GRIB garbage that is not a message")
    with pytest.raises(WindFormatError, match=r"x\.grib2"):
        read_grib(bad)
    only_t = tmp_path / "t.grib2"
    with only_t.open("wb") as f:
        h = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
        eccodes.codes_set(h, "shortName", "t")
        eccodes.codes_write(h, f)
        eccodes.codes_release(h)
    with pytest.raises(WindFormatError, match="no u and v winds"):
        read_grib(only_t)


# -- real data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nam():  # type: ignore[no-untyped-def]
    return read_grib(NAM, lambert_domain="mask")


@needs_data
def test_nam_grid_and_levels(nam) -> None:  # type: ignore[no-untyped-def]
    assert nam.time_s[0] == 1537142400.0  # 2018-09-17 00Z
    assert nam.pressure_hpa[0] == 1000.0 and nam.pressure_hpa[-1] == 100.0
    assert nam.pressure_hpa.size == 19 and not nam.global_lon
    assert nam.lat_deg[0] >= 12.19 and nam.lat_deg[-1] <= 61.3
    assert nam.lon_deg[0] > -153.5 and nam.lon_deg[-1] < -48.9  # 207-311 E as -180..180
    assert "grid-relative winds rotated to earth-relative" in nam.notes
    # corners of the lat/lon box lie outside the Lambert domain: NaN, the centre is data
    assert np.isnan(nam.u_mps[0, 0, 0, 0]) and np.isnan(nam.u_mps[0, 0, -1, -1])
    assert np.isfinite(nam.u_mps[0, :, nam.lat_deg.size // 2, nam.lon_deg.size // 2]).all()
    assert nam.w_mps is not None and np.nanmax(np.abs(nam.w_mps)) < 5.0


@needs_data
def test_nam_default_crop_has_no_nan_and_the_same_values(nam) -> None:  # type: ignore[no-untyped-def]
    crop = read_grib(NAM)
    assert np.isfinite(crop.u_mps).all() and np.isfinite(crop.height_m).all()
    assert crop.lat_deg[0] == 18.0 and crop.lat_deg[-1] == 57.75  # the conterminous US inside
    assert crop.lon_deg[0] == -135.0 and crop.lon_deg[-1] == -64.5
    j0 = int(np.flatnonzero(nam.lat_deg == 18.0)[0])
    i0 = int(np.flatnonzero(nam.lon_deg == -135.0)[0])
    ny, nx = crop.lat_deg.size, crop.lon_deg.size
    np.testing.assert_array_equal(crop.u_mps, nam.u_mps[..., j0 : j0 + ny, i0 : i0 + nx])
    # the rectangle is most of the domain
    assert ny * nx > 0.75 * np.isfinite(nam.u_mps[0, 0]).sum()


@needs_data
def test_nam_winds_match_cfgrib_with_an_independent_rotation(nam) -> None:  # type: ignore[no-untyped-def]
    xr = pytest.importorskip("xarray")
    pyproj = pytest.importorskip("pyproj")
    from scipy.interpolate import RegularGridInterpolator

    keys = {"typeOfLevel": "isobaricInhPa", "shortName": ["u", "v"]}
    ds = xr.open_dataset(NAM, engine="cfgrib", backend_kwargs={"filter_by_keys": keys, "indexpath": ""})
    assert ds.u.attrs["GRIB_uvRelativeToGrid"] == 1
    lev = 250.0
    ug = ds.u.sel(isobaricInhPa=lev).values
    vg = ds.v.sel(isobaricInhPa=lev).values
    lat = ds.latitude.values
    lon = np.mod(ds.longitude.values + 180, 360) - 180
    # independent rotation: the meridian convergence from pyproj at each native point
    proj = pyproj.Proj(proj="lcc", lat_1=25, lat_2=25, lat_0=25, lon_0=265, R=6371229.0)
    x0, y0 = proj(lon, lat)
    x1, y1 = proj(lon, lat + 1e-4)
    gamma = np.arctan2(x1 - x0, y1 - y0)  # true north, clockwise from grid +y
    ue = np.cos(gamma) * ug - np.sin(gamma) * vg
    ve = np.sin(gamma) * ug + np.cos(gamma) * vg
    # compare at native points well inside the domain, far from LoV (rotation > 10 deg)
    sel = (np.abs(np.degrees(gamma)) > 10) & (lat > 25) & (lat < 55)
    sel[:3], sel[-3:], sel[:, :3], sel[:, -3:] = False, False, False, False
    k = int(np.flatnonzero(nam.pressure_hpa == lev)[0])
    mine_u = RegularGridInterpolator((nam.lat_deg, nam.lon_deg), nam.u_mps[0, k])
    mine_v = RegularGridInterpolator((nam.lat_deg, nam.lon_deg), nam.v_mps[0, k])
    pts = np.column_stack([lat[sel], lon[sel]])
    du = mine_u(pts) - ue[sel]
    dv = mine_v(pts) - ve[sel]
    err = np.hypot(du, dv)
    err_unrotated = np.hypot(mine_u(pts) - ug[sel], mine_v(pts) - vg[sel])
    assert sel.sum() > 300
    assert np.nanmedian(err) < 1.0  # only the resampling error is left
    assert np.nanmedian(err_unrotated) > 3.0 * np.nanmedian(err)


def _geostrophic_direction_error(g, lev: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    radius = 6371229.0
    k = int(np.flatnonzero(g.pressure_hpa == lev)[0])
    z = g.height_m[0, k]
    lat = np.radians(g.lat_deg)[:, None]
    dzdy = np.gradient(z, np.radians(g.lat_deg), axis=0) / radius
    dzdx = np.gradient(z, np.radians(g.lon_deg), axis=1) / (radius * np.cos(lat))
    f = 2 * 7.2921e-5 * np.sin(lat)
    ug, vg = -9.80665 / f * dzdy, 9.80665 / f * dzdx
    u, v = g.u_mps[0, k], g.v_mps[0, k]
    ok = np.isfinite(ug + vg + u + v) & (np.hypot(ug, vg) > 10) & (np.hypot(u, v) > 10)
    ok &= np.degrees(lat) > 25
    diff = np.angle(np.exp(1j * (np.arctan2(v, u) - np.arctan2(vg, ug))))
    return np.asarray(np.abs(np.degrees(diff[ok])))


@needs_data
def test_ruc_rotated_winds_are_geostrophic_aloft(monkeypatch: pytest.MonkeyPatch) -> None:
    """Independent physics: 100-300 hPa winds blow along the height contours."""
    g = read_grib(RUC07, lambert_domain="mask")
    assert g.time_s[0] == 1304150400.0  # 2011-04-30 08Z valid (07Z + 1 h)
    assert g.pressure_hpa.size == 37
    errors = {lev: _geostrophic_direction_error(g, lev) for lev in (300.0, 250.0, 200.0, 150.0)}
    for lev, e in errors.items():
        assert e.size > 5000, lev
        assert (e < 30).mean() > 0.9, lev
        assert np.median(e) < 12, lev
    # the wrong sign of rotation is clearly worse: the check can tell
    from stratowatch.weather import gribfile, lambert

    monkeypatch.setattr(gribfile, "grid_to_earth", lambda u, v, a: lambert.grid_to_earth(u, v, -a))
    wrong = read_grib(RUC07, lambert_domain="mask")
    for lev, e in errors.items():
        assert np.median(_geostrophic_direction_error(wrong, lev)) > np.median(e) + 4, lev


def write_lambert_grib2(path: Path, u_east: float, v_north: float) -> None:
    """A small grid-relative Lambert GRIB2 (LoV 265 E) of a uniform earth-relative wind; the
    grid-relative components use pyproj's meridian convergence (independent of the reader)."""
    pyproj = pytest.importorskip("pyproj")
    nx, ny = 20, 15
    keys = {
        "gridType": "lambert", "Nx": nx, "Ny": ny, "shapeOfTheEarth": 6,
        "latitudeOfFirstGridPointInDegrees": 25.0, "longitudeOfFirstGridPointInDegrees": 250.0,
        "LaDInDegrees": 25.0, "LoVInDegrees": 265.0, "Latin1InDegrees": 25.0,
        "Latin2InDegrees": 25.0, "DxInMetres": 200000.0, "DyInMetres": 200000.0,
        "jScansPositively": 1, "resolutionAndComponentFlags": 8,  # bit 5: grid-relative u/v
        "dataDate": 20230201, "dataTime": 1200, "typeOfLevel": "isobaricInhPa",
    }  # fmt: skip
    proj = pyproj.Proj(proj="lcc", lat_1=25, lat_2=25, lat_0=25, lon_0=265, R=6371229.0)
    with path.open("wb") as f:
        for lev in (500, 250):
            for short in ("u", "v", "gh"):
                h = eccodes.codes_grib_new_from_samples("GRIB2")
                for key, value in keys.items():
                    eccodes.codes_set(h, key, value)
                eccodes.codes_set(h, "level", lev)
                eccodes.codes_set(h, "shortName", short)
                eccodes.codes_set_values(h, np.zeros(nx * ny))  # size the grid first
                lat = np.asarray(eccodes.codes_get_array(h, "latitudes"))
                lon = np.mod(np.asarray(eccodes.codes_get_array(h, "longitudes")) + 180, 360) - 180
                x0, y0 = proj(lon, lat)
                x1, y1 = proj(lon, lat + 1e-4)
                gamma = np.arctan2(x1 - x0, y1 - y0)  # true north, clockwise from grid +y
                values = {
                    "u": np.cos(gamma) * u_east + np.sin(gamma) * v_north,
                    "v": -np.sin(gamma) * u_east + np.cos(gamma) * v_north,
                    "gh": np.full(nx * ny, 5500.0 if lev == 500 else 10400.0),
                }[short]
                eccodes.codes_set_values(h, values)
                eccodes.codes_write(h, f)
                eccodes.codes_release(h)


def test_synthetic_lambert_grid_relative_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lambert.grib2"
    write_lambert_grib2(path, u_east=20.0, v_north=5.0)
    g = read_grib(path)
    assert "grid-relative winds rotated to earth-relative" in g.notes
    assert np.isfinite(g.u_mps).all() and g.lat_deg.size > 5 and g.lon_deg.size > 5
    np.testing.assert_allclose(g.u_mps, 20.0, atol=1e-3)  # 16-bit packing leaves ~1e-4
    np.testing.assert_allclose(g.v_mps, 5.0, atol=1e-3)
    np.testing.assert_allclose(g.height_m[0, :, 3, 3], [5500.0, 10400.0])
    masked = read_grib(path, lambert_domain="mask")
    assert np.isnan(masked.u_mps).any() and masked.lat_deg.size >= g.lat_deg.size
    np.testing.assert_allclose(masked.u_mps[np.isfinite(masked.u_mps)], 20.0, atol=1e-3)
