"""load_winds: format by content, merging times, clear errors; load times of the real files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from stratowatch.weather import WindFormatError, WindGrid, load_winds
from stratowatch.weather.load import LAST_LOAD_S, sniff_wind_format

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
DATA = REPO_ROOT.parent / "shared" / "data"
RUC = sorted((DATA / "wind").glob("ruc.*.grb2")) if DATA.exists() else []
needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"shared data absent ({DATA})")


def _global_grib(path: Path, hours: tuple[int, ...]) -> None:
    from test_weather_gribfile import write_global_grib2

    write_global_grib2(path, hours=hours)


def test_sniffs_by_content_not_name(tmp_path: Path) -> None:
    g = tmp_path / "winds.dat"
    _global_grib(g, (0,))
    assert sniff_wind_format(g) == "grib"
    kml = tmp_path / "flight.txt"
    kml.write_text('<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"></kml>')
    assert sniff_wind_format(kml) == "flight"
    csv = tmp_path / "f.csv"
    csv.write_text("time_utc,lat,lon,alt_m\n")
    assert sniff_wind_format(csv) == "flight"
    other = tmp_path / "x.bin"
    other.write_bytes(b"\x00\x01junk")
    with pytest.raises(WindFormatError, match=r"x\.bin: not a wind file"):
        load_winds(other)
    with pytest.raises(WindFormatError, match="cannot read"):
        load_winds(tmp_path / "missing.grib2")


def test_merges_times_from_several_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.grib2", tmp_path / "b.grib2"
    _global_grib(a, (6,))
    _global_grib(b, (0,))
    g = load_winds([a, b])
    assert isinstance(g, WindGrid) and g.shape == (2, 3, 19, 12) and g.global_lon
    assert g.time_s[1] - g.time_s[0] == 21600  # sorted by time, whatever the file order
    single = load_winds(a)
    np.testing.assert_array_equal(g.u_mps[1], single.u_mps[0])
    assert set(LAST_LOAD_S) == {str(a)}
    with pytest.raises(WindFormatError, match="same valid time"):
        load_winds([a, a])


def test_refuses_to_merge_different_grids(tmp_path: Path) -> None:
    a = tmp_path / "a.grib2"
    _global_grib(a, (0,))
    s = tmp_path / "s.csv"
    s.write_text(
        "time,longitude,latitude,pressure_hPa,geopotential height_m,temperature_C,"
        "dew point temperature_C,ice point temperature_C,relative humidity_%,humidity wrt ice_%,"
        "mixing ratio_g/kg,wind direction_degree,wind speed_m/s\n"
        "2023-02-01 12:00:00,0,0,1000,100,0,0,0,0,0,0,270,5\n"
        "2023-02-01 12:00:00,0,0,500,5500,0,0,0,0,0,0,270,5\n"
    )
    with pytest.raises(WindFormatError, match="not on the same grid"):
        load_winds([a, s])


@needs_data
def test_real_files_load_and_time(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted((DATA / "wind").iterdir())
    files += sorted(p for p in (DATA / "soundings").iterdir() if "UPA_obs" not in p.name)
    files += sorted((DATA / "balloon_tracks").glob("*.kmz"))
    for f in files:
        t0 = time.perf_counter()
        g = load_winds(f)
        elapsed = time.perf_counter() - t0
        assert g.validate() is g
        assert np.isfinite(g.u_mps).any()
        with capsys.disabled():
            print(f"\nload_s {elapsed:6.3f}  {f.name}  {g.shape}", end="")
    # the multi-station UPA table is not a profile: refused with a clear message
    with pytest.raises(WindFormatError, match=r"UPA_obs_19930314\.csv: not a wind file"):
        load_winds(DATA / "soundings" / "metpy_UPA_obs_19930314.csv")


@needs_data
def test_ruc_two_times_on_one_grid() -> None:
    g = load_winds(RUC)
    assert g.time_s.tolist() == [1304150400.0, 1304161200.0]  # 08Z and 11Z valid
    assert g.shape[:2] == (2, 37)
    # the two analyses differ (it is not the same field twice) but are close (3 h apart)
    k = int(np.flatnonzero(g.pressure_hpa == 250.0)[0])
    diff = np.nanmean(np.abs(g.u_mps[1, k] - g.u_mps[0, k]))
    assert 0.5 < diff < 10.0
