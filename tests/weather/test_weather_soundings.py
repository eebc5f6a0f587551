"""Radiosonde soundings (UWyo CSV, UWyo text, IGRA2) as profile wind fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.heights import isa_height_m
from stratowatch.weather.soundings import read_sounding_file, wind_components

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
SOUNDINGS = REPO_ROOT.parent / "shared" / "data" / "soundings"
needs_data = pytest.mark.skipif(not SOUNDINGS.exists(), reason=f"shared sounding data absent ({SOUNDINGS})")

HEADER = (
    "time,longitude,latitude,pressure_hPa,geopotential height_m,temperature_C,"
    "dew point temperature_C,ice point temperature_C,relative humidity_%,humidity wrt ice_%,"
    "mixing ratio_g/kg,wind direction_degree,wind speed_m/s\n"
)


def _row(p: float, z: str, direction: str, speed: str) -> str:
    return f"2023-02-01 11:00:00,-100.0,40.0,{p},{z},-50.0,-60,-60,10,10,0.1,{direction},{speed}\n"


def test_wind_direction_convention() -> None:
    # wind FROM the west blows east: u > 0; from the north blows south: v < 0
    u, v = wind_components([10.0, 10.0, 10.0], [270.0, 0.0, 90.0])
    np.testing.assert_allclose(u, [10.0, 0.0, -10.0], atol=1e-12)
    np.testing.assert_allclose(v, [0.0, -10.0, 0.0], atol=1e-12)


def test_uwyo_csv_fixture_profile(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        HEADER
        + _row(1000, "100", "270", "5.0")
        + _row(700, "", "180", "10.0")  # height missing: filled in ln p
        + _row(500, "5600", "", "")  # no wind: only used for heights
        + _row(300, "9200", "250", "30.0")
        + _row(300, "9200", "250", "31.0")  # repeated pressure: dropped
        + _row(70, "18500", "90", "4.0")
    )
    g = read_sounding_file(path)
    assert g.is_profile and g.global_lon and g.shape == (1, 4, 2, 2)
    np.testing.assert_allclose(g.pressure_hpa, [1000, 700, 300, 70])
    assert g.time_s[0] == 1675249200.0  # 2023-02-01 11:00Z
    u, v = g.u_mps[0, :, 0, 0], g.v_mps[0, :, 0, 0]
    np.testing.assert_allclose(u, [5.0, 0.0, 30 * np.sin(np.radians(70)), -4.0], atol=1e-9)
    np.testing.assert_allclose(v, [0.0, 10.0, 30 * np.cos(np.radians(70)), 0.0], atol=1e-9)
    frac = np.log(1000 / 700) / np.log(1000 / 500)
    assert g.height_m[0, 1, 0, 0] == pytest.approx(100 + frac * 5500)
    # uniform: every corner of the profile grid carries the same column
    assert np.all(g.u_mps[0, :, :, :] == u[:, None, None])


def test_uwyo_csv_errors_name_file_line_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + _row(1000, "100", "270", "5.0") + _row(900, "abc", "270", "5"))
    with pytest.raises(WindFormatError, match=r"bad\.csv:3: field 'geopotential height_m'"):
        read_sounding_file(path)
    one = tmp_path / "one.csv"
    one.write_text(HEADER + _row(1000, "100", "270", "5.0"))
    with pytest.raises(WindFormatError, match="fewer than 2 levels"):
        read_sounding_file(one)
    other = tmp_path / "other.txt"
    other.write_text("hello\n")
    with pytest.raises(WindFormatError, match="not a University of Wyoming"):
        read_sounding_file(other)


@needs_data
def test_boi_reaches_the_stratosphere() -> None:
    g = read_sounding_file(SOUNDINGS / "uwyo_BOI_2010120912.csv")
    # 132 levels; the top level (7.5 hPa, 32485 gpm) has no wind, winds reach 7.7 hPa
    assert g.pressure_hpa[0] == 919.0 and g.pressure_hpa[-1] == 7.7
    assert g.height_m[0, -1, 0, 0] == 32309.0
    assert g.pressure_hpa.size == 130
    assert g.time_s[0] == 1291892760.0  # 2010-12-09 11:06Z (launch)
    # first level: 240 deg at 1.5 m/s, from the south-west
    assert g.u_mps[0, 0, 0, 0] == pytest.approx(1.2990, abs=1e-4)
    assert g.v_mps[0, 0, 0, 0] == pytest.approx(0.75, abs=1e-9)
    # top: 310 deg at 10.3 m/s (from the north-west: u > 0, v < 0)
    assert g.u_mps[0, -1, 0, 0] == pytest.approx(7.890, abs=1e-3)
    assert g.v_mps[0, -1, 0, 0] == pytest.approx(-6.621, abs=1e-3)
    assert any("43.56, -116.21" in n for n in g.notes)


@needs_data
def test_uwyo_text_in_knots() -> None:
    g = read_sounding_file(SOUNDINGS / "metpy_20110522_OUN_12Z.txt")
    assert g.time_s[0] == 1306065600.0  # 2011-05-22 12Z
    assert g.pressure_hpa[0] == 966.0  # the 1000 hPa row has no wind
    assert g.pressure_hpa[-1] == 100.0 and g.height_m[0, -1, 0, 0] == 16410.0
    # 966 hPa: from 180 deg at 7 kt -> northward 3.60 m/s
    assert g.u_mps[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-9)
    assert g.v_mps[0, 0, 0, 0] == pytest.approx(7 * 0.514444, abs=1e-4)


@needs_data
def test_igra2_soundings_merge_as_times_or_pick_one() -> None:
    path = SOUNDINGS / "igra2_USM00070026-data_subset.txt"
    g = read_sounding_file(path)
    # 3 headers; the third was cut to no levels and is skipped with a note
    assert g.time_s.tolist() == [1275350400.0, 1275393600.0]  # 2010-06-01 00Z and 12Z
    assert any(":318: sounding header without levels skipped" in n for n in g.notes)
    k = int(np.flatnonzero(g.pressure_hpa == 700.0)[0])
    # 00Z 700 hPa: 194 deg, 4.6 m/s (tenths), height 2903 m
    assert g.u_mps[0, k, 0, 0] == pytest.approx(-4.6 * np.sin(np.radians(194)), abs=1e-9)
    assert g.v_mps[0, k, 0, 0] == pytest.approx(-4.6 * np.cos(np.radians(194)), abs=1e-9)
    assert g.height_m[0, k, 0, 0] == 2903.0
    # height-only wind levels above the last pressure get a pressure from the sounding itself
    assert g.pressure_hpa[-1] < 11.0 and g.height_m[0, -1, 0, 0] > 31000.0
    one = read_sounding_file(path, time_s=1275393600.0 + 3600)
    assert one.time_s.tolist() == [1275393600.0]
    assert one.pressure_hpa[-1] == pytest.approx(8.2, abs=0.1)
    assert one.height_m[0, -1, 0, 0] == 33036.0


@needs_data
def test_all_uwyo_csvs_heights_ascend_and_look_standard() -> None:
    for name in ("uwyo_OUN_2023052212.csv", "uwyo_OUN_1999050400.csv"):
        g = read_sounding_file(SOUNDINGS / name)
        z = g.height_m[0, :, 0, 0]
        assert np.all(np.diff(z) > 0)
        assert np.max(np.abs(z - isa_height_m(g.pressure_hpa))) < 600.0


def test_levels_whose_height_does_not_rise_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        HEADER
        + _row(1000, "100", "270", "5.0")
        + _row(900, "990", "270", "6.0")
        + _row(850, "980", "270", "7.0")  # height below the level beneath: dropped
        + _row(800, "1950", "270", "8.0")
    )
    g = read_sounding_file(path)
    np.testing.assert_allclose(g.pressure_hpa, [1000, 900, 800])
    assert np.all(np.diff(g.height_m[0, :, 0, 0]) > 0)
